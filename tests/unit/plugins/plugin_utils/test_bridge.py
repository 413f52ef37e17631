# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The controller side of the bridge, against recorded host answers."""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
from typing import Any

import pytest

from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import BridgeError, bridge_command, bridge_input, run_bridge

PLUGIN_UTILS = pathlib.Path(__file__).resolve().parents[4] / "plugins" / "plugin_utils"
POWERSHELL = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand "
# cmd.exe rejects command lines longer than this many characters.
CMD_EXE_LIMIT = 8191

SUCCESS = '{"protocol":1,"operation":"info","result":{"computer_name":"WS2022-01"}}'
ACCESS_DENIED = (
    '{"protocol":1,"operation":"info","error":{"hresult":-2147024891,'
    '"message":"Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))",'
    '"call":"Microsoft.Update.Session.CreateUpdateInstaller"}}'
)
# A progress record serialised by powershell.exe on standard error.
CLIXML_PROGRESS = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T></TN></Obj></Objs>'
)


class RecordedAction:
    """Stands in for an action plugin: replays recorded answers (the last one again and again) and keeps what it was sent."""

    def __init__(self, rc: int, stdout: str, stderr: str = "", *, earlier: tuple[tuple[int, str], ...] = ()) -> None:
        self.answers = [{"rc": code, "stdout": out, "stderr": ""} for code, out in earlier] + [{"rc": rc, "stdout": stdout, "stderr": stderr}]
        self.calls: list[dict[str, Any]] = []

    def _low_level_execute_command(self, cmd: str, sudoable: bool = True, in_data: bytes | None = None) -> dict[str, Any]:
        self.calls.append({"cmd": cmd, "sudoable": sudoable, "in_data": in_data})
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return dict(answer, stdout_lines=answer["stdout"].splitlines(), stderr_lines=answer["stderr"].splitlines())


def test_success_returns_the_result_and_sends_one_bridge_command() -> None:
    action = RecordedAction(0, SUCCESS)

    assert run_bridge(action, "info") == {"computer_name": "WS2022-01"}

    [call] = action.calls
    assert call["sudoable"] is False
    assert call["cmd"].startswith(POWERSHELL)
    bootstrap = base64.b64decode(call["cmd"][len(POWERSHELL):]).decode("utf-16-le")
    assert bootstrap == (PLUGIN_UTILS / "_wua_bootstrap.ps1").read_text(encoding="utf-8")
    # The bridge goes by its digest: the host keeps it.
    envelope = json.loads(call["in_data"])
    assert envelope == {
        "bridge_sha256": hashlib.sha256((PLUGIN_UTILS / "_wua_bridge.ps1").read_bytes()).hexdigest(),
        "request": {"protocol": 1, "operation": "info", "params": {}},
    }


def test_a_host_without_the_bridge_gets_it_whole_once() -> None:
    action = RecordedAction(0, SUCCESS, earlier=((1, '{"bridge_missing":true}'),))

    assert run_bridge(action, "info") == {"computer_name": "WS2022-01"}

    first, second = (json.loads(call["in_data"]) for call in action.calls)
    assert "bridge" not in first
    assert second["bridge"] == (PLUGIN_UTILS / "_wua_bridge.ps1").read_text(encoding="utf-8")
    assert second["bridge_sha256"] == first["bridge_sha256"] == hashlib.sha256(second["bridge"].encode("utf-8")).hexdigest()
    assert first["request"] == second["request"]


def test_bootstrap_carries_the_marker_on_its_first_line() -> None:
    bootstrap = base64.b64decode(bridge_command()[len(POWERSHELL):]).decode("utf-16-le")

    assert "wuacache.wua bridge" in bootstrap.splitlines()[0]


def test_command_line_stays_far_below_the_cmd_exe_limit() -> None:
    # Half of it at most: room for a shell that wraps the command in its own.
    assert len(bridge_command()) < CMD_EXE_LIMIT // 2


def test_request_is_ascii_whatever_the_parameters() -> None:
    params = {"title": "Mise à jour cumulative – 2024-05", "kb": [5037782]}

    in_data = bridge_input("info", params)

    in_data.decode("ascii")
    assert json.loads(in_data)["request"]["params"] == params


def test_bridge_and_bootstrap_are_ascii() -> None:
    # The request keeps them ASCII-only on the wire; a non-ASCII character would be escaped, not sent raw.
    for name in ("_wua_bridge.ps1", "_wua_bootstrap.ps1", "_wua_task.ps1"):
        (PLUGIN_UTILS / name).read_bytes().decode("ascii")


def test_byte_order_mark_whitespace_and_stderr_noise_are_tolerated() -> None:
    action = RecordedAction(0, f"\ufeff\r\n{SUCCESS}\r\n", CLIXML_PROGRESS)

    assert run_bridge(action, "info") == {"computer_name": "WS2022-01"}


def test_error_object_names_the_hresult_and_the_call() -> None:
    action = RecordedAction(1, ACCESS_DENIED)

    with pytest.raises(BridgeError) as raised:
        run_bridge(action, "info")

    error = raised.value
    assert error.hresult is not None
    assert (error.hresult.code, error.hresult.name) == ("0x80070005", "E_ACCESSDENIED")
    assert error.call == "Microsoft.Update.Session.CreateUpdateInstaller"
    assert error.rc == 1
    assert str(error).startswith("0x80070005 E_ACCESSDENIED: Access is denied.")
    assert "Microsoft.Update.Session.CreateUpdateInstaller" in str(error)


def test_error_object_with_an_unknown_hresult_keeps_the_code() -> None:
    document = {"protocol": 1, "operation": "info", "error": {"hresult": 0x0BADF00D, "message": "odd", "call": "X.Y"}}

    with pytest.raises(BridgeError) as raised:
        run_bridge(RecordedAction(1, json.dumps(document)), "info")

    assert str(raised.value).startswith("0x0BADF00D: odd")


def test_error_object_without_a_message_falls_back_to_the_description() -> None:
    document = {"protocol": 1, "operation": "info", "error": {"hresult": -2145124322, "message": "", "call": "X.Y"}}

    with pytest.raises(BridgeError) as raised:
        run_bridge(RecordedAction(1, json.dumps(document)), "info")

    assert str(raised.value).startswith("0x8024001E WU_E_SERVICE_STOP: Operation did not complete because the service")


def test_garbage_on_stdout_is_reported_with_the_raw_output() -> None:
    action = RecordedAction(0, "Windows PowerShell\r\nCopyright (C) Microsoft Corporation.\r\n")

    with pytest.raises(BridgeError) as raised:
        run_bridge(action, "info")

    assert raised.value.hresult is None
    assert "did not answer with one JSON document" in str(raised.value)
    assert "Copyright (C) Microsoft Corporation." in str(raised.value)


def test_nonzero_rc_without_json_reports_rc_and_stderr() -> None:
    action = RecordedAction(1, "", "ConvertFrom-Json : Invalid JSON primitive: .")

    with pytest.raises(BridgeError) as raised:
        run_bridge(action, "info")

    assert "(rc 1)" in str(raised.value)
    assert "stdout: (empty)" in str(raised.value)
    assert "Invalid JSON primitive" in str(raised.value)


def test_cmd_exe_command_line_too_long() -> None:
    action = RecordedAction(1, "", "The command line is too long.\r\n")

    with pytest.raises(BridgeError) as raised:
        run_bridge(action, "info")

    assert raised.value.rc == 1
    assert "The command line is too long." in str(raised.value)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param('{"protocol":2,"operation":"info","result":{}}', "for protocol 2", id="other-protocol"),
        pytest.param('{"protocol":1,"operation":"scan","result":{}}', "operation 'scan'", id="other-operation"),
        pytest.param('{"protocol":1,"operation":"info"}', "without a result object", id="no-result"),
        pytest.param('{"protocol":1,"operation":"info","error":"denied"}', "malformed error object", id="malformed-error"),
        pytest.param('["protocol", 1]', "not an object", id="not-an-object"),
    ],
)
def test_documents_outside_the_protocol_are_refused(document: str, reason: str) -> None:
    with pytest.raises(BridgeError, match=reason):
        run_bridge(RecordedAction(0, document), "info")


def test_result_with_nonzero_rc_is_refused() -> None:
    with pytest.raises(BridgeError, match="exited with an error"):
        run_bridge(RecordedAction(1, SUCCESS), "info")


def test_long_output_is_cut_in_the_message() -> None:
    action = RecordedAction(0, "x" * 50_000)

    with pytest.raises(BridgeError) as raised:
        run_bridge(action, "info")

    assert "(50000 characters)" in str(raised.value)
    assert len(str(raised.value)) < 5_000
    assert raised.value.stdout == "x" * 50_000
