"""Windows Setup (``setup.exe`` of an installation ISO), for an unattended in-place upgrade.

``setup.exe /auto upgrade /quiet ... [/noreboot] [/compat scanonly]
[/copylogs <folder>]`` reads the images of ``sources\\install.wim`` beside it
(:mod:`wuacache_lab.windows.wim`), picks the one of the host's edition and
checks, as Microsoft's "Windows Setup Command-Line Options" and "Windows
upgrade error codes" describe, in this order:

- an earlier upgrade that waits for its restart: 0xC1900107
  (MOSETUP_E_CLEANUP_PENDING);
- the ``upgrade_blocked`` fault, an incompatible application:
  0xC1900208 (MOSETUP_E_COMPAT_INSTALLREQ_BLOCK);
- no image of the host's edition, an image whose build is not newer than the
  host's, or of another display language, so that applications and data
  cannot be kept: 0xC1900204 (MOSETUP_E_COMPAT_MIGCHOICE_BLOCK);
- an image of another processor architecture: 0xC1900200
  (MOSETUP_E_COMPAT_SYSREQ_BLOCK);
- less than 20 GiB free on the system drive: 0xC190020E
  (MOSETUP_E_INSTALLDISKSPACE_BLOCK);
- with ``/compat scanonly``, nothing blocks: 0xC1900210
  (MOSETUP_E_COMPAT_SCANONLY), and nothing changes.

Otherwise the down-level phase is done: Setup exits with 3
(CONX_SETUP_EXITCODE_CONTINUE_REBOOT), restarting the host at once unless
``/noreboot`` is given, and the upgrade completes at the next restart, which
takes several restarts' time: the host then runs the image's OS profile. The
``upgrade_rollback`` fault rolls it back during that restart instead: the
host keeps its OS and Setup logs the rollback. Setup writes its log to
``C:\\$WINDOWS.~BT\\Sources\\Panther\\setupact.log`` (``Rollback\\`` for a
rollback) and, when it fails, copies it to the ``/copylogs`` folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wuacache_lab.windows.errors import ERROR_FILE_NOT_FOUND, HResultError, signed
from wuacache_lab.windows.process import LogonSession, ProcessResult
from wuacache_lab.windows.profiles import PROFILES, GiB, OsProfile
from wuacache_lab.windows.state import HostState, PendingUpgrade
from wuacache_lab.windows.wim import WimImage, read_wim_images

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

CONTINUE_REBOOT = 0x3
MOSETUP_E_CLEANUP_PENDING = 0xC1900107
MOSETUP_E_COMPAT_SYSREQ_BLOCK = 0xC1900200
MOSETUP_E_COMPAT_MIGCHOICE_BLOCK = 0xC1900204
MOSETUP_E_COMPAT_INSTALLREQ_BLOCK = 0xC1900208
MOSETUP_E_INSTALLDISKSPACE_BLOCK = 0xC190020E
MOSETUP_E_COMPAT_SCANONLY = 0xC1900210
# What an in-place upgrade needs free on the system drive.
REQUIRED_FREE_BYTES = 20 * GiB
# A restart that completes (or rolls back) an upgrade is several restarts.
UPGRADE_RESTARTS = 3

WORKING_FOLDER = "C:\\$WINDOWS.~BT\\Sources"
PANTHER = "Panther"
ROLLBACK = "Rollback"
LOG_FILE = "setupact.log"


def run_setup(host: WindowsHost, program: str, arguments: list[str], logon: LogonSession) -> ProcessResult:
    """setup.exe has no console output: its result is its exit code. A
    program that is not on the host's disk cannot start (ERROR_FILE_NOT_FOUND)."""
    if not host.disk.exists(program):
        raise HResultError(ERROR_FILE_NOT_FOUND, f"The system cannot find the file {program}.")
    switches = _switches(arguments)
    if switches.get("/auto") != ["upgrade"] or "/quiet" not in switches:
        raise NotImplementedError("the emulated setup.exe only upgrades in place, quietly (/auto upgrade /quiet)")
    copy_logs = (switches.get("/copylogs") or [None])[0]
    media = program.replace("/", "\\").rsplit("\\", 1)[0]
    try:
        images = read_wim_images(b"".join(host.disk.read(f"{media}\\sources\\install.wim")))
    except HResultError as error:
        return _failed(host, error.hresult, f"cannot read the image file: {error.message}", copy_logs)
    profile = host.profile
    image = next((image for image in images if image.edition_id.casefold() == profile.edition_id.casefold()), None)
    blocked = _compatibility_block(host, profile, image)
    if blocked is not None:
        return _failed(host, *blocked, copy_logs)
    assert image is not None  # a missing image blocks the upgrade
    target = _target_profile(image)
    if switches.get("/compat") == ["scanonly"]:
        _log(host, PANTHER, [f"Compatibility scan for {image.name} {_release(image)}: no blocking issue."])
        return ProcessResult(b"", b"", signed(MOSETUP_E_COMPAT_SCANONLY))
    with host.store.update() as state:
        state.pending_upgrade = PendingUpgrade(target.name, copy_logs)
    _log(host, PANTHER, [f"Down-level phase done: {image.name} {_release(image)} is installed at the next restart."])
    host.log.info("setup: upgrade to %s at the next restart", target.name)
    if "/noreboot" not in switches:
        host.restart_for_installer()
    return ProcessResult(b"", b"", CONTINUE_REBOOT)


def finish_upgrade(host: WindowsHost, state: HostState) -> None:
    """During a restart: the pending upgrade completes, or rolls back under
    the ``upgrade_rollback`` fault; either way the next one may start."""
    upgrade = state.pending_upgrade
    if upgrade is None:
        return
    state.pending_upgrade = None
    if host.faults.upgrade_rollback():
        _log(
            host,
            ROLLBACK,
            [f"The upgrade to {upgrade.target} failed during the restart; the previous version is restored."],
            upgrade.copy_logs,
        )
        host.log.info("setup: the upgrade to %s rolled back", upgrade.target)
        return
    state.os_profile = upgrade.target
    host.log.info("setup: upgraded to %s", upgrade.target)


def _switches(arguments: list[str]) -> dict[str, list[str]]:
    """Each switch, case-folded, with the words that follow it."""
    switches: dict[str, list[str]] = {}
    name = ""
    for argument in arguments:
        if argument.startswith("/"):
            name = argument.casefold()
            switches[name] = []
        else:
            # Values are keywords, except the folder of /copylogs.
            switches.setdefault(name, []).append(argument if name == "/copylogs" else argument.casefold())
    return switches


def _compatibility_block(host: WindowsHost, profile: OsProfile, image: WimImage | None) -> tuple[int, str] | None:
    """The exit code and reason of what keeps Setup from upgrading, if anything."""
    if host.store.peek(lambda state: state.pending_upgrade is not None):
        return MOSETUP_E_CLEANUP_PENDING, "an earlier upgrade waits for a restart"
    if host.faults.upgrade_blocked():
        return MOSETUP_E_COMPAT_INSTALLREQ_BLOCK, "an incompatible application blocks the upgrade"
    if image is None:
        return MOSETUP_E_COMPAT_MIGCHOICE_BLOCK, f"the image file has no {profile.edition_id} edition"
    host_release = (profile.major_version, profile.minor_version, profile.build)
    if image.release <= host_release:
        return MOSETUP_E_COMPAT_MIGCHOICE_BLOCK, f"{_release(image)} is not newer than {profile.version}"
    if image.default_language.casefold() != profile.display_languages[0].casefold():
        return MOSETUP_E_COMPAT_MIGCHOICE_BLOCK, f"the image's language is {image.default_language}"
    if image.architecture != profile.processor_architecture:
        return MOSETUP_E_COMPAT_SYSREQ_BLOCK, "the image is for another processor architecture"
    if host.disk.free_bytes() < REQUIRED_FREE_BYTES:
        return MOSETUP_E_INSTALLDISKSPACE_BLOCK, "not enough free disk space"
    return None


def _target_profile(image: WimImage) -> OsProfile:
    """The OS profile a host runs once upgraded to ``image``."""
    for profile in PROFILES.values():
        if (
            (profile.major_version, profile.minor_version, profile.build) == image.release
            and profile.edition_id == image.edition_id
            and profile.processor_architecture == image.architecture
            and profile.display_languages[0] == image.default_language
        ):
            return profile
    raise NotImplementedError(f"the lab has no OS profile for {image.name} {_release(image)}")


def _release(image: WimImage) -> str:
    return f"{image.major}.{image.minor}.{image.build}.{image.sp_build}"


def _failed(host: WindowsHost, exit_code: int, reason: str, copy_logs: str | None) -> ProcessResult:
    _log(host, PANTHER, [f"Setup failed with 0x{exit_code:08X}: {reason}."], copy_logs)
    host.log.info("setup: 0x%08X, %s", exit_code, reason)
    return ProcessResult(b"", b"", signed(exit_code))


def _log(host: WindowsHost, phase: str, lines: list[str], copy_logs: str | None = None) -> None:
    """Setup's log of a phase, copied to the /copylogs folder if given; a
    log that cannot be written is skipped, as Setup does."""
    text = "".join(f"{line}\r\n" for line in lines).encode("utf-8")
    folders = [f"{WORKING_FOLDER}\\{phase}"]
    if copy_logs is not None:
        folders.append(f"{copy_logs}\\{phase}")
    for folder in folders:
        try:
            host.disk.make_dirs(folder)
            host.disk.write(f"{folder}\\{LOG_FILE}", [text], append=True)
        except HResultError:
            pass
