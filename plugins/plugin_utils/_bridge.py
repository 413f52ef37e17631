# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller side of the host bridge (docs/bridge-protocol.md).

Action plugins call :func:`run_bridge` with one operation; it runs the bridge
script on the host over the task's connection and returns the operation's raw
result, or raises :class:`BridgeError`.
"""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.wuacache.wua.plugins.plugin_utils._hresult import HResultInfo, describe

PROTOCOL = 1

_SCRIPT_DIR = pathlib.Path(__file__).parent
_POWERSHELL = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand"
_EXCERPT_CHARS = 1000


class BridgeError(AnsibleError):
    """A bridge operation failed on the host, or its answer broke the protocol."""

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        rc: int | None = None,
        hresult: int | None = None,
        call: str | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        self.operation = operation
        self.rc = rc
        self.hresult: HResultInfo | None = None if hresult is None else describe(hresult)
        self.call = call
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(self._describe(message))

    def _describe(self, message: str) -> str:
        if self.hresult is not None:
            # The form Microsoft's documentation and search engines know: "0x80070005 E_ACCESSDENIED: ...".
            code = self.hresult.code if self.hresult.name is None else f"{self.hresult.code} {self.hresult.name}"
            text = message.strip() or self.hresult.description or "no message"
            call = "" if self.call is None else f", call {self.call}"
            return f"{code}: {text} (bridge operation '{self.operation}'{call})"
        return (
            f"bridge operation '{self.operation}' {message} (rc {self.rc}); "
            f"stdout: {_excerpt(self.stdout)}; stderr: {_excerpt(self.stderr)}"
        )


def run_bridge(action: ActionBase, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one bridge operation on the task's host and return its result.

    The command goes through ``_low_level_execute_command``, which hands it
    unchanged to the winrm, psrp and ssh connections (none of them wraps it for
    Windows), and keeps become out of it.
    """
    response = action._low_level_execute_command(
        bridge_command(),
        in_data=bridge_input(operation, params),
        sudoable=False,
    )
    return parse_response(operation, response["rc"], response["stdout"], response["stderr"])


def bridge_command() -> str:
    """The command line that starts the bootstrap; it does not depend on the request."""
    bootstrap = _read_script("_wua_bootstrap.ps1")
    return f"{_POWERSHELL} {base64.b64encode(bootstrap.encode('utf-16-le')).decode('ascii')}"


def bridge_input(operation: str, params: dict[str, Any] | None = None) -> bytes:
    """The standard input of the bootstrap: the bridge script and the request.

    The document is kept ASCII (JSON escapes the rest) so that no console code
    page on the host can alter it.
    """
    envelope = {
        "bridge": _read_script("_wua_bridge.ps1"),
        "request": {"protocol": PROTOCOL, "operation": operation, "params": params or {}},
    }
    return json.dumps(envelope, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def parse_response(operation: str, rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    """Check the bridge's answer against the protocol and return the operation's result."""
    failure = {"rc": rc, "stdout": stdout, "stderr": stderr}
    try:
        # PowerShell may put a byte order mark before the document.
        document = json.loads(stdout.lstrip("\ufeff"))
    except ValueError:
        raise BridgeError(operation, "did not answer with one JSON document", **failure) from None
    if not isinstance(document, dict):
        raise BridgeError(operation, "answered with JSON that is not an object", **failure)

    if "error" in document:
        error = document["error"]
        if not isinstance(error, dict) or not isinstance(error.get("hresult"), int):
            raise BridgeError(operation, "answered with a malformed error object", **failure)
        raise BridgeError(
            operation,
            str(error.get("message") or ""),
            hresult=error["hresult"],
            call=error.get("call"),
            **failure,
        )
    if document.get("protocol") != PROTOCOL or document.get("operation") != operation:
        raise BridgeError(
            operation,
            f"answered for protocol {document.get('protocol')!r} and operation {document.get('operation')!r}",
            **failure,
        )
    if rc != 0:
        raise BridgeError(operation, "exited with an error but without an error object", **failure)
    result = document.get("result")
    if not isinstance(result, dict):
        raise BridgeError(operation, "answered without a result object", **failure)
    return result


def _read_script(name: str) -> str:
    return (_SCRIPT_DIR / name).read_text(encoding="utf-8")


def _excerpt(text: str) -> str:
    text = text.strip()
    if not text:
        return "(empty)"
    if len(text) > _EXCERPT_CHARS:
        return f"{text[:_EXCERPT_CHARS]}... ({len(text)} characters)"
    return text
