# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Upgrade Windows in place with the setup.exe of an installation ISO (module documentation in plugins/modules/os_upgrade.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.wuacache.wua.plugins.plugin_utils._action import PatchingAction
from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import BridgeError, run_bridge, run_elevated
from ansible_collections.wuacache.wua.plugins.plugin_utils._hresult import describe
from ansible_collections.wuacache.wua.plugins.plugin_utils._patching import (
    Patching,
    PatchingError,
    hresult_text,
    plan_result,
)
from ansible_collections.wuacache.wua.plugins.plugin_utils._reboot import reboot_host

# Microsoft's "Windows Setup Command-Line Options" for an unattended in-place upgrade, one token per element.
# /noreboot hands the first restart to the controller, which collects the exit code first; the bridge adds /copylogs.
SETUP_ARGUMENTS = (
    "/auto", "upgrade",
    "/quiet",
    "/eula", "accept",
    "/noreboot",
    "/dynamicupdate", "disable",
    "/compat", "ignorewarning",
    "/showoobe", "none",
    "/telemetry", "disable",
)
# CONX_SETUP_EXITCODE_CONTINUE_REBOOT: the down-level phase succeeded and the upgrade goes on at the next restart.
# 0 is taken the same way: the build after the restart decides whether the upgrade happened.
_FIRST_PHASE_DONE = frozenset({0x3, 0})
# MOSETUP_E_COMPAT_SCANONLY: a /compat scanonly run (from extra_arguments) found no issue and installed nothing.
_COMPATIBLE = 0xC1900210
# What Microsoft documents of Setup's other exit codes ("Setup.exe exit codes", "Windows upgrade error codes").
_SETUP_FAILURES = {
    0x5: ("CONX_SETUP_EXITCODE_RESUME_AT_COMPAT_REPORT", "compatibility issues must be resolved before the upgrade"),
    0x7: ("CONX_SETUP_EXITCODE_AUTO_INSTALL_FAIL", "the upgrade option is not available"),
    0xC1900101: ("MOSETUP_E_SETUP_PLATFORM", "Windows Setup failed, most often because of a driver"),
    0xC1900107: ("MOSETUP_E_CLEANUP_PENDING", "the cleanup of an earlier upgrade attempt waits for a restart"),
    0xC1900200: ("MOSETUP_E_COMPAT_SYSREQ_BLOCK", "the host does not meet the new version's minimum requirements"),
    0xC1900204: ("MOSETUP_E_COMPAT_MIGCHOICE_BLOCK", "this edition cannot be upgraded keeping applications and data"),
    0xC1900208: ("MOSETUP_E_COMPAT_INSTALLREQ_BLOCK", "an incompatible application or driver blocks the upgrade"),
    0xC190020E: ("MOSETUP_E_INSTALLDISKSPACE_BLOCK", "the host has not enough free disk space for the upgrade"),
}
_SETUP_NOT_FOUND_CALL = "Test-Path setup_path"


class ActionModule(PatchingAction):
    """Run setup.exe's down-level phase, restart until the upgrade ends, and check that the build changed."""

    OWN_OPTIONS: ClassVar[dict[str, dict[str, Any]]] = {
        "setup_path": {"type": "str", "required": True},
        "extra_arguments": {"type": "list", "elements": "str", "default": []},
        # An upgrade only completes through restarts, several of them.
        "reboot": {"type": "bool", "default": True},
        "reboot_timeout": {"type": "int", "default": 7200},
    }

    def patch(self, patching: Patching, options: dict[str, Any], result: dict[str, Any]) -> None:
        before = run_bridge(self, "info")
        arguments = [*SETUP_ARGUMENTS, *options["extra_arguments"]]
        result.update(setup_path=options["setup_path"], arguments=arguments, build_before=os_build(before), os=before["os"]["caption"])
        if self._task.check_mode:
            result["changed"] = True
            return

        answer = self._run_setup(options, arguments)
        exit_code = answer["exit_code"]
        result.update(exit_code=exit_code, logs=answer["logs"])
        code = exit_code & 0xFFFFFFFF
        if code == _COMPATIBLE:
            result.update(changed=False, rebooted=False, msg="Windows Setup found no compatibility issue and upgraded nothing")
            return
        if code not in _FIRST_PHASE_DONE:
            result.update(changed=False, rebooted=False, hresult=describe(exit_code).code)
            raise PatchingError(f"Windows Setup did not upgrade the host: {_setup_text(code)}; its logs are in {answer['logs']} on the host")
        if not options["reboot"]:
            result.update(changed=True, reboot_required=True, rebooted=False)
            return

        after = reboot_host(self, timeout=options["reboot_timeout"])
        result.update(changed=True, rebooted=True, build_after=os_build(after), os=after["os"]["caption"])
        # The catalog's applicable updates change with the OS: the server learns them at once.
        result.update(plan_result(patching.scan()))
        if result["build_after"] == result["build_before"]:
            raise PatchingError(
                f"Windows Setup rolled back: the host came back with the build it had before, {result['build_before']}; "
                f"its logs are in {answer['logs']} on the host"
            )

    def _run_setup(self, options: dict[str, Any], arguments: list[str]) -> dict[str, Any]:
        try:
            return run_elevated(self, "os_upgrade", {"setup_path": options["setup_path"], "arguments": arguments}, timeout=options["timeout"])
        except BridgeError as error:
            if error.call != _SETUP_NOT_FOUND_CALL:
                raise
            raise PatchingError(
                f"{options['setup_path']} is not a file the host's SYSTEM account can read: the setup.exe of a Windows installation "
                "ISO's content is needed, on a local drive or on a share that grants read access to the host's computer account"
            ) from None


def os_build(info: dict[str, Any]) -> str:
    """The OS build ``info`` read, with its update revision: ``20348.2227``."""
    os_info = info["os"]
    return os_info["build_number"] if os_info["ubr"] is None else f"{os_info['build_number']}.{os_info['ubr']}"


def _setup_text(code: int) -> str:
    if code in _SETUP_FAILURES:
        name, description = _SETUP_FAILURES[code]
        return f"exit code 0x{code:X} {name}: {description}"
    return f"exit code {hresult_text(code)}"
