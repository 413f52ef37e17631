"""The servicing log, ``%windir%\\Logs\\CBS\\CBS.log``, as the Windows Modules Installer (TrustedInstaller) writes it.

Microsoft names the file as the log of servicing (the System File Checker's
article, support.microsoft.com KB 929833, "Use the System File Checker tool
to repair missing or corrupted system files") but documents no format. The
lines here are a plausible model of those Windows writes and users publish:
``<local time>, <level><component> <message>``, the level padded to 22
characters and the component to 7, and an HRESULT at the end of a line as
``[HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]`` (in lower case, named
``Unknown Error`` when servicing has no name for it). Lab hosts run on UTC.

TrustedInstaller keeps the log open for writing while it runs, and it runs
after every install; the lab's keeps it open whenever it exists, so that only
a reader that shares write access opens it (``FileShare``).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.state import utc_now

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

CBS_LOG = "C:\\Windows\\Logs\\CBS\\CBS.log"
# Names servicing gives the HRESULTs the lab's installs end with.
_NAMES = {
    0x00000000: "S_OK",
    0x80070643: "ERROR_INSTALL_FAILURE",
    0x800F0922: "CBS_E_INSTALLERS_FAILED",
}


def is_held_open(path: str) -> bool:
    """Whether TrustedInstaller holds the file at ``path`` open for writing."""
    return path.casefold() == CBS_LOG.casefold()


def hresult_suffix(hresult: int) -> str:
    code = hresult & 0xFFFFFFFF
    return f"[HRESULT = 0x{code:08x} - {_NAMES.get(code, 'Unknown Error')}]"


def log_install(host: WindowsHost, package: str, hresult: int, *, reboot: bool) -> None:
    """The lines of one install session of the Update Agent's: started, failed (when it did), finalized."""
    session = f"{random.randint(30_000_000, 31_999_999)}_{random.randint(1_000_000_000, 4_294_967_295)}"
    outcome = hresult_suffix(hresult)
    lines = [
        ("Info", f"Session: {session} initialized by client WindowsUpdateAgent."),
        ("Info", f"Exec: Processing started.  Client: WindowsUpdateAgent, Session: {session}, Package: {package}"),
    ]
    if hresult:
        lines.append(("Error", f"Exec: Failed to install {package}. {outcome}"))
    lines += [
        ("Info", f"Exec: Processing complete.  Session: {session}, Package: {package} {outcome}"),
        ("Info", f"Session: {session} finalized. Reboot required: {'yes' if reboot else 'no'} {outcome}"),
    ]
    stamp = utc_now().strftime("%Y-%m-%d %H:%M:%S")
    text = "".join(f"{stamp}, {level:<22}{'CBS':<7}{message}\r\n" for level, message in lines)
    try:
        host.disk.make_dirs(CBS_LOG.rsplit("\\", 1)[0])
        host.disk.write(CBS_LOG, [text.encode("ascii")], append=True)
    except HResultError:
        # A full disk loses the lines, not the install.
        return
