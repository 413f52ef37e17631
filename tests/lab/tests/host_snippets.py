"""PowerShell snippets run as processes of an emulated host, for the tests of its cmdlets and .NET types."""

from __future__ import annotations

import base64
import importlib
from pathlib import Path

from wuacache_lab.powershell.errors import PowerShellError
from wuacache_lab.powershell.evaluate import Interpreter
from wuacache_lab.powershell.lower import parse
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession
from wuacache_lab.windows.runtime import HostRuntime
from wuacache_lab.windows.taskscheduler import RegisteredTask

ADMINISTRATOR = LogonSession(user="Administrator", logon_type="network")
STANDARD_USER = LogonSession(user="alice", logon_type="network", administrator=False)
SYSTEM = LogonSession(user="SYSTEM", logon_type="service")
WORKING_DIRECTORY = "C:\\Windows\\System32"
# The modules that register what these tests run (the host's own list may not name them all yet).
MODULES = (
    "wuacache_lab.windows.services",
    "wuacache_lab.windows.programs",
    "wuacache_lab.windows.versioninfo",
    "wuacache_lab.windows.net",
    "wuacache_lab.windows.dism",
)
for _module in MODULES:
    importlib.import_module(_module)


def new_host(tmp_path: Path, *, profile: str = "win10-22h2", proxy: str | None = None, trusted_ca: Path | None = None) -> WindowsHost:
    return WindowsHost("win10-01", tmp_path / "hosts", profile=profile, trusted_ca=trusted_ca or tmp_path / "ca.pem", proxy=proxy)


def runtime_of(host: WindowsHost, logon: LogonSession = ADMINISTRATOR, working_directory: str = WORKING_DIRECTORY) -> HostRuntime:
    return HostRuntime(host, logon, working_directory)


def output(runtime: HostRuntime, script: str) -> list[object]:
    """What the script writes to its output, run in the process ``runtime`` stands for."""
    written: list[object] = []
    Interpreter(runtime).run(parse(script, "snippet.ps1"), written)
    return written


def failure(runtime: HostRuntime, script: str) -> PowerShellError:
    """The terminating error the script ends with."""
    try:
        output(runtime, script)
    except PowerShellError as error:
        return error
    raise AssertionError("the script ended without error")


def chain(error: PowerShellError) -> list[str]:
    """The exception's type, then each InnerException's, as ``$_.Exception`` shows them."""
    names = []
    exception = error.reported_exception
    while exception is not None:
        names.append(exception.type_name)
        exception = exception.inner
    return names


def run_system_task(host: WindowsHost, name: str, script: str) -> RegisteredTask:
    """A SYSTEM task of the root folder that runs ``script`` in powershell.exe, registered and started."""
    service = host.wua(ADMINISTRATOR).create_object("Schedule.Service")
    service.Connect()
    definition = service.NewTask(0)
    definition.Principal.UserId = "SYSTEM"
    definition.Principal.LogonType = 5  # TASK_LOGON_SERVICE_ACCOUNT
    action = definition.Actions.Create(0)  # TASK_ACTION_EXEC
    action.Path = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    action.Arguments = "-NoProfile -EncodedCommand " + base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    task = service.GetFolder("\\").RegisterTaskDefinition(name, definition, 6, None, None, 5)
    task.Run(None)
    return task
