# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The options every patching action shares (doc fragment ``wuacache.wua._options``).

Each shared option falls back to the inventory variable ``wua_<option>``, so
that an inventory describes its hosts once; the task's own argument, or a
``module_defaults`` entry, wins over the variable.
"""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

DEFAULT_CRITERIA = "IsInstalled=0 or IsInstalled=1"

# wuauserv_after: the state the bridge leaves the Windows Update service in, as its parameter says it.
WUAUSERV_AFTER = {
    "disabled": {"start_mode": "Disabled", "running": False},
    "manual": {"start_mode": "Manual", "running": False},
    "automatic": {"start_mode": "Automatic", "running": True},
}
# Win32_Service.StartMode as info reads it, in Set-Service's words (Boot and System are for drivers only).
_START_MODES = {"Auto": "Automatic", "Manual": "Manual", "Disabled": "Disabled"}

# The options the server decides with: they travel in each report as the host's assignment.
ASSIGNMENT_OPTIONS = ("rule_sets", "default_allow", "allowed_severities", "install_delay", "maturities")

SHARED_OPTIONS: dict[str, dict[str, Any]] = {
    "server_url": {"type": "str", "required": True},
    "server_token": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "enabled": {"type": "bool", "default": True},
    "direct_download": {"type": "bool", "default": False},
    "default_allow": {"type": "bool", "default": False},
    "allowed_severities": {"type": "list", "elements": "str", "default": []},
    # A number of days, or the server's duration syntax ("12h", "7d", "2w").
    "install_delay": {"type": "raw"},
    "maturities": {"type": "list", "elements": "str", "default": ["PROD"]},
    "rule_sets": {"type": "list", "elements": "str", "default": []},
    "criteria": {"type": "str", "default": DEFAULT_CRITERIA},
    "wuauserv_after": {"type": "str", "default": "disabled", "choices": [*WUAUSERV_AFTER, "unchanged"]},
    "timeout": {"type": "int", "default": 7200},
    "host_name": {"type": "str"},
}


def argument_spec(**own_options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shared options plus an action's own."""
    return {**SHARED_OPTIONS, **own_options}


def task_options(action: ActionBase, task_vars: dict[str, Any], spec: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Validate the task's arguments against ``spec``, with the ``wua_<option>`` fallbacks, and return them.

    Raises:
        AnsibleActionFail: an unknown option, or a value of the wrong type (as ``validate_argument_spec``).
    """
    arguments = dict(action._task.args)
    for option in SHARED_OPTIONS:
        variable = f"wua_{option}"
        if option not in arguments and variable in task_vars:
            arguments[option] = action._templar.template(task_vars[variable])

    validation = ArgumentSpecValidator(spec).validate(arguments)
    if validation.error_messages:
        raise AnsibleActionFail(f"{action._task.action}: {validation.errors.msg}")
    options = validation.validated_parameters
    if options["host_name"] is None:
        # The server knows hosts by lowercase names.
        options["host_name"] = task_vars["inventory_hostname"].lower()
    return options


def assignment(options: dict[str, Any]) -> dict[str, Any]:
    """The host's assignment, as the report carries it to the server."""
    return {option: options[option] for option in ASSIGNMENT_OPTIONS}


def wuauserv_after(options: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """The bridge's ``wuauserv_after`` parameter; ``unchanged`` keeps the state ``info`` read before the run.

    That is the state a run recorded before it started the service, when ``info`` finds one: the run
    holding the host, or one that died before it could put the service back, changed what ``info`` reads.
    """
    if options["wuauserv_after"] != "unchanged":
        return dict(WUAUSERV_AFTER[options["wuauserv_after"]])
    service = info["wuauserv"]
    if service["recorded"] is not None:
        return {"start_mode": service["recorded"]["start_mode"], "running": service["recorded"]["running"]}
    return {"start_mode": _START_MODES[service["start_mode"]], "running": service["state"] == "Running"}
