"""powershell.exe: its command line, streams and exit codes, and the shipped bootstrap and task scripts run as they arrive."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from powershell_snippets import ENVIRONMENT, run, text
from wuacache_lab.powershell import commands
from wuacache_lab.powershell.commands import CmdletCall, cmdlet
from wuacache_lab.powershell.process import PowerShellProcess, resolve_parameter
from wuacache_lab.powershell.runtime import Runtime

PLUGIN_UTILS = Path(__file__).resolve().parents[4] / "plugins" / "plugin_utils"
BOOTSTRAP = (PLUGIN_UTILS / "_wua_bootstrap.ps1").read_text(encoding="utf-8")
TASK = (PLUGIN_UTILS / "_wua_task.ps1").read_text(encoding="utf-8")

# A bridge of this test's own: the real one needs the emulated Windows.
BRIDGE = """param($Request, $ResponsePath, $BridgeText, $KeepAs)
Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$script:BridgeCall = 'bridge request'

function Get-Greeting {
    param([Parameter(Mandatory = $true)] [string]$Name)
    $script:BridgeCall = 'Get-Greeting'
    [ordered]@{ greeting = "hello $Name"; host = $env:COMPUTERNAME; response_path = $ResponsePath }
}

$response = [ordered]@{ protocol = 1; operation = [string]$Request.operation }
try {
    $parameters = @{}
    foreach ($property in $Request.params.PSObject.Properties) {
        $parameters[$property.Name] = $property.Value
    }
    $response.result = Get-Greeting @parameters
    $exitCode = 0
}
catch {
    $response.error = [ordered]@{ hresult = $_.Exception.HResult; message = $_.Exception.Message; call = $script:BridgeCall }
    $exitCode = 1
}
ConvertTo-Json -InputObject $response -Depth 10 -Compress
exit $exitCode
"""


def encoded(script: str) -> str:
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def envelope(bridge: str, params: dict[str, object]) -> bytes:
    return json.dumps({"bridge": bridge, "request": {"protocol": 1, "operation": "greet", "params": params}}).encode("ascii")


def powershell(arguments: list[str], stdin: bytes = b"", runtime: Runtime | None = None):  # type: ignore[no-untyped-def]
    return PowerShellProcess(runtime or Runtime(ENVIRONMENT)).run(arguments, stdin)


@pytest.mark.parametrize(("written", "parameter"), [("e", "encodedcommand"), ("ec", "encodedcommand"), ("ex", "executionpolicy"), ("NoP", "noprofile"), ("nonI", "noninteractive")])
def test_powershell_exe_parameters_abbreviate_in_its_order(written: str, parameter: str) -> None:
    assert resolve_parameter(written) == parameter


def test_the_bootstrap_runs_the_bridge_of_the_envelope_with_its_request() -> None:
    completed = powershell(
        ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Unrestricted", "-EncodedCommand", encoded(BOOTSTRAP)],
        envelope(BRIDGE, {"name": "world"}),
    )
    assert completed.exit_code == 0 and completed.stderr == b""
    assert json.loads(completed.stdout) == {
        "protocol": 1,
        "operation": "greet",
        "result": {"greeting": "hello world", "host": "WIN10-01", "response_path": None},
    }
    assert completed.stdout.endswith(b"}\r\n")


def test_a_bridge_failure_is_its_json_error_and_exit_code_one() -> None:
    completed = powershell(["-e", encoded(BOOTSTRAP)], envelope(BRIDGE, {"nam": "x", "extra": 1}))
    assert completed.exit_code == 1
    error = json.loads(completed.stdout)["error"]
    assert error == {
        "hresult": -2146233087,
        "message": "A parameter cannot be found that matches parameter name 'extra'.",
        "call": "bridge request",
    }


def test_a_bridge_that_throws_at_once_fails_the_process_on_standard_error() -> None:
    completed = powershell(["-EncodedCommand", encoded(BOOTSTRAP)], envelope("throw 'x'\n" + BRIDGE, {"name": "w"}))
    assert completed.exit_code == 1 and completed.stdout == b""
    assert completed.stderr.decode().startswith("x\r\nAt line:1 char:1\r\n+ throw 'x'\r\n+ ~~~~~~~~~\r\n")
    assert "    + CategoryInfo          : OperationStopped: (x:String) [], RuntimeException\r\n" in completed.stderr.decode()
    assert "    + FullyQualifiedErrorId : x\r\n" in completed.stderr.decode()


def test_a_bridge_outside_51_is_refused_by_script_block_create_naming_the_line() -> None:
    completed = powershell(["-EncodedCommand", encoded(BOOTSTRAP)], envelope("$a = 1\nGet-A && Get-B\n", {}))
    assert completed.exit_code == 1
    message = completed.stderr.decode()
    assert message.startswith('Exception calling "Create" with "1" argument(s): "At line:2 char:7')
    assert "The token '&&' is not a valid statement separator in this version." in message


def test_the_task_script_runs_the_envelope_of_its_folder_and_passes_the_response_path(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"C:\\ProgramData\\wuacache\\runs\\r1\\envelope.json": envelope(BRIDGE, {"name": "task"}).decode()}
    # Get-Content belongs to the emulated Windows; this test gives it a folder of its own.
    monkeypatch.setattr(commands, "_CMDLETS", dict(commands._CMDLETS))

    @cmdlet("Get-Content")
    def get_content(call: CmdletCall) -> Iterable[object]:
        for parameters in call.records:
            for path in parameters["LiteralPath"]:  # type: ignore[attr-defined]
                yield files[path if ":" in path else f"{call.runtime.working_directory}\\{path}"]

    runtime = Runtime(ENVIRONMENT, working_directory="C:\\ProgramData\\wuacache\\runs\\r1")
    completed = powershell(["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded(TASK)], b"", runtime)
    assert completed.exit_code == 0
    result = json.loads(completed.stdout)["result"]
    assert result["greeting"] == "hello task"
    assert result["response_path"] == "C:\\ProgramData\\wuacache\\runs\\r1\\response.json"


def test_input_is_standard_input_line_by_line() -> None:
    completed = powershell(["-Command", "@($input).Count; @($input).Count"], b"one\r\ntwo\nthree\n")
    assert text(completed) == "3\r\n0\r\n"


@pytest.mark.parametrize(
    ("script", "exit_code"),
    [("'fine'", 0), ("exit 3", 3), ("throw 'x'", 1), ("Write-Error 'late'", 1), ("Write-Error 'early'; 'then fine'", 0), ("exit -1", 0xFFFFFFFF)],
)
def test_the_exit_code(script: str, exit_code: int) -> None:
    assert run(script).exit_code == exit_code


def test_output_is_written_as_the_default_formatter_writes_strings_and_numbers() -> None:
    assert text(run("'a'; 1; 2.5; $true; $null; [System.DateTimeKind]::Utc")) == "a\r\n1\r\n2.5\r\nTrue\r\nUtc\r\n"


def test_a_bad_encoded_command_and_an_interactive_shell() -> None:
    completed = powershell(["-EncodedCommand", "not base64!"])
    assert completed.exit_code == 1 and completed.stderr.startswith(b"Cannot process the command because the value specified with -EncodedCommand")
    assert powershell(["-NoProfile"]).lab_limitation == "interactive shell"


def test_a_process_ended_from_outside_is_reported_as_killed() -> None:
    runtime = Runtime(ENVIRONMENT)
    runtime.end()
    completed = powershell(["-Command", "'never'"], b"", runtime)
    assert completed.killed and completed.stdout == b""
