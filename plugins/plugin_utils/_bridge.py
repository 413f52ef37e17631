# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller side of the host bridge (docs/bridge-protocol.md).

Action plugins call :func:`run_bridge` with one operation; it runs the bridge
script on the host over the task's connection and returns the operation's raw
result, or raises :class:`BridgeError`. The host keeps the bridge, checked by
its SHA-256: a command sends the digest, and the whole script only when the host
lacks it. :func:`run_elevated` does the same for the operations Windows refuses
to a network logon, through a transient scheduled task that runs as SYSTEM,
whose end the host waits for (a long poll) rather than the controller.
"""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import pathlib
import re
import time
import uuid
from typing import Any

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.wuacache.wua.plugins.plugin_utils._hresult import (
    HResultInfo,
    describe,
)

PROTOCOL = 1

_SCRIPT_DIR = pathlib.Path(__file__).parent
_POWERSHELL_ARGUMENTS = "-NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand"
_EXCERPT_CHARS = 1000

# An elevated run's name becomes a folder and a task name on the host.
_RUN_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
# IRegisteredTask.State of a task whose instance has not ended: TASK_STATE_QUEUED, TASK_STATE_RUNNING.
_TASK_STATES_NOT_ENDED = frozenset({2, 4})
# IRegisteredTask.LastTaskResult of a task whose instance has not started yet (SCHED_S_TASK_HAS_NOT_RUN):
# right after Run(), the task may still read as ready, for this many seconds at most.
_TASK_HAS_NOT_RUN = 0x00041303
_TASK_START_GRACE = 60.0
# How long one poll may wait on the host for the run to end or move on. WinRM answers a
# long-running command's Receive with an OperationTimeout fault, which the connection retries.
LONG_POLL_SECONDS = 300.0
# How long past the controller's time budget a run's task may run, and the run hold the host: the
# controller stops the task itself when its budget is spent, unless it died.
_TASK_TIME_MARGIN = 600
# HRESULT_FROM_WIN32(ERROR_BUSY): another run holds the host, as task_start, ensure_cab and clean_staging answer.
HRESULT_BUSY = 0x800700AA
# What a connection raises when the host drops it: Ansible's own failure, or the
# transport's (the errors of requests, which pywinrm uses, are OSErrors).
CONNECTION_ERRORS = (AnsibleConnectionFailure, OSError)

display = Display()


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

    @property
    def host_busy(self) -> bool:
        """Whether another run held the host: the operation did nothing, and trying again at once would not help."""
        return self.hresult is not None and int(self.hresult.code, 16) == HRESULT_BUSY

    def _describe(self, message: str) -> str:
        if self.hresult is not None:
            # The form Microsoft's documentation and search engines know: "0x80070005 E_ACCESSDENIED: ...".
            code = self.hresult.code if self.hresult.name is None else f"{self.hresult.code} {self.hresult.name}"
            text = message.strip() or self.hresult.description or "no message"
            call = "" if self.call is None else f", call {self.call}"
            return f"{code}: {text} (bridge operation '{self.operation}'{call})"
        if self.rc is None:
            return f"bridge operation '{self.operation}' {message}"
        return (
            f"bridge operation '{self.operation}' {message} (rc {self.rc}); "
            f"stdout: {_excerpt(self.stdout)}; stderr: {_excerpt(self.stderr)}"
        )


def failure_result(error: Exception) -> dict[str, Any]:
    """A failed task's result: the message, and the host's HRESULT when it gave one."""
    result: dict[str, Any] = {"failed": True, "msg": str(error)}
    if isinstance(error, BridgeError) and error.hresult is not None:
        result["hresult"] = error.hresult.code
    return result


def run_bridge(action: ActionBase, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one bridge operation on the task's host and return its result.

    The command goes through ``_low_level_execute_command``, which hands it
    unchanged to the winrm, psrp and ssh connections (none of them wraps it for
    Windows), and keeps become out of it. It sends the bridge's digest; a host
    that does not keep that bridge says so, and gets it whole.
    """
    response = _execute(action, bridge_input(operation, params))
    if _bridge_missing(response["stdout"]):
        display.vvv(f"The host does not keep bridge {bridge_sha256()}, sending it whole")
        response = _execute(action, bridge_input(operation, params, whole=True))
    return parse_response(operation, response["rc"], response["stdout"], response["stderr"])


def _execute(action: ActionBase, stdin: bytes) -> dict[str, Any]:
    return action._low_level_execute_command(bridge_command(), in_data=stdin, sudoable=False)


def _bridge_missing(stdout: str) -> bool:
    """Whether the bootstrap answered that the host keeps no bridge with the digest sent."""
    try:
        return json.loads(stdout.lstrip("\ufeff")) == {"bridge_missing": True}
    except ValueError:
        return False


def run_elevated(
    action: ActionBase,
    operation: str,
    params: dict[str, Any] | None = None,
    *,
    timeout: float = 3600.0,
    poll_interval: float = 1.0,
    name: str | None = None,
) -> dict[str, Any]:
    """Run one bridge operation as SYSTEM on the task's host and return its result.

    The Windows Update Agent refuses downloads, installs and ``ISystemInformation``
    to a network logon, which is what every Ansible connection to Windows gets.
    The bridge therefore starts a transient scheduled task for the operation and
    waits on the host, looking every ``poll_interval`` seconds, until the task
    ends or says where it stands, within ``timeout`` seconds: a command per step
    of the operation, not per interval. The ended run is collected by the same
    command; after a failure its task and folder are collected all the same.
    The run holds the host from start to collection: while another run holds
    it, the start fails with ERROR_BUSY (:attr:`BridgeError.host_busy`), which
    nothing retries. A collection that got the response but could not clean up
    is a warning of the task.
    """
    if name is None:
        name = f"run-{uuid.uuid4().hex}"
    elif not _RUN_NAME.fullmatch(name):
        raise ValueError(f"an elevated run's name must be 1 to 64 letters, digits or dashes, not {name!r}")
    run = {"name": name}

    waiting = {"interval_milliseconds": round(poll_interval * 1000), "collect": True}
    begun = time.monotonic()
    status = None
    try:
        started = run_bridge(
            action,
            "task_start",
            dict(
                run,
                envelope={"request": bridge_request(operation, params)},
                task_arguments=task_arguments(),
                time_limit=task_time_limit(timeout),
                # Long enough for a short operation to end, and for a task to start.
                wait_seconds=round(min(timeout, _TASK_START_GRACE)),
                **waiting,
            ),
        )
        status = _wait_for_task(action, operation, run, started["status"], begun, timeout, waiting)
        if not status["response_ready"]:
            # The task's process failed before the bridge could answer: its exit code is all there is.
            raise BridgeError(
                operation,
                "the elevated run's task ended without writing a response",
                hresult=status["last_task_result"],
                call=f"scheduled task {started['task']}",
            )
    except BaseException:
        # Collecting must not hide why the run failed.
        if status is None or status["collected"] is None:
            _collect_after_failure(action, run)
        raise

    collected = status["collected"] or run_bridge(action, "task_collect", run)
    if collected["cleanup_error"] is not None:
        # The run's work is done: what is left behind goes with a later run.
        error = collected["cleanup_error"]
        cleanup = BridgeError("task_collect", str(error["message"]), hresult=error["hresult"], call=error["call"])
        warn(action, f"The elevated run {name} left its scheduled task or folder on the host: {cleanup}")
    # The task's exit code is the bridge's, as the command's would be.
    return parse_response(operation, status["last_task_result"], collected["response"] or "", "")


def task_time_limit(timeout: float) -> int:
    """The seconds an elevated run's task may run (its ``ExecutionTimeLimit``) and the run hold the host."""
    return math.ceil(max(timeout, 0)) + _TASK_TIME_MARGIN


def warn(action: ActionBase, message: str) -> None:
    """A warning of the task: in its result for an action that keeps them (``task_warnings``), shown at once otherwise."""
    warnings = getattr(action, "task_warnings", None)
    if warnings is None:
        display.warning(message)
    else:
        warnings.append(message)


def bridge_command() -> str:
    """The command line that starts the bootstrap; it does not depend on the request."""
    return f"PowerShell {_encoded_command('_wua_bootstrap.ps1')}"


def task_arguments() -> str:
    """The arguments of ``PowerShell.exe`` in an elevated run's task: the task bootstrap."""
    return _encoded_command("_wua_task.ps1")


def bridge_request(operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One operation, as the bridge reads it."""
    return {"protocol": PROTOCOL, "operation": operation, "params": params or {}}


def bridge_envelope(operation: str, params: dict[str, Any] | None = None, *, whole: bool = False) -> dict[str, Any]:
    """What the bootstrap runs: the bridge, by its SHA-256 (and ``whole``, its text), and the request."""
    envelope: dict[str, Any] = {"bridge_sha256": bridge_sha256(), "request": bridge_request(operation, params)}
    if whole:
        envelope["bridge"] = _read_script("_wua_bridge.ps1")
    return envelope


def bridge_input(operation: str, params: dict[str, Any] | None = None, *, whole: bool = False) -> bytes:
    """The standard input of the bootstrap: the envelope as one JSON document.

    The document is kept ASCII (JSON escapes the rest) so that no console code
    page on the host can alter it.
    """
    envelope = bridge_envelope(operation, params, whole=whole)
    return json.dumps(envelope, ensure_ascii=True, separators=(",", ":")).encode("ascii")


@functools.cache
def bridge_sha256() -> str:
    """The SHA-256 of the bridge's UTF-8 text, by which the host keeps it."""
    return hashlib.sha256(_read_script("_wua_bridge.ps1").encode("utf-8")).hexdigest()


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


def _wait_for_task(
    action: ActionBase,
    operation: str,
    run: dict[str, str],
    status: dict[str, Any] | None,
    begun: float,
    timeout: float,
    waiting: dict[str, Any],
) -> dict[str, Any]:
    """Poll the run's task, from the ``status`` task_start answered, until its instance ends, within ``timeout``
    seconds of ``begun``; return its last status.

    An ended task has written its response, if it could: waiting for the end
    rather than for the response also lets its process release the run's folder.
    A task still reading as never run is given a short while to start.
    """
    deadline = begun + timeout
    grace_ends = begun + _TASK_START_GRACE
    shown = None
    starting = False
    while True:
        if status is not None:
            progress = status["progress"]
            if progress and progress != shown:
                # Long work shows where it stands, at the default verbosity.
                display.display(f"<{host_label(action)}> {describe_progress(progress)}")
                shown = progress
            starting = status["last_task_result"] == _TASK_HAS_NOT_RUN and time.monotonic() < grace_ends
            if status["collected"] is not None or (status["state"] not in _TASK_STATES_NOT_ENDED and not starting):
                return status
        now = time.monotonic()
        if now >= deadline:
            raise BridgeError(operation, f"did not end within {timeout:g} seconds in the elevated run {run['name']}")
        # A task that has not started yet is waited for until the grace ends, then taken as ended.
        wait = min(deadline, grace_ends if starting else deadline, now + LONG_POLL_SECONDS) - now
        poll = dict(run, wait_seconds=max(1, round(wait)), progress_sequence=(shown or {}).get("sequence", 0), **waiting)
        try:
            status = run_bridge(action, "task_poll", poll)
        except CONNECTION_ERRORS as error:
            # The task runs on without the connection (an install can take the network down for a while):
            # reconnect and poll again, within the same budget.
            display.vvv(f"Polling the elevated run {run['name']} lost the connection, reconnecting: {error}")
            reset_connection(action)
            status = None
            time.sleep(waiting["interval_milliseconds"] / 1000)


def describe_progress(progress: dict[str, Any]) -> str:
    """Where an elevated run stands, from the progress its task wrote."""
    step, done, total, item = progress["step"], progress["done"], progress["total"], progress.get("item")
    if step == "search":
        return "searching the catalog"
    if step == "download":
        return f"downloading file {done + 1} of {total}: {item}"
    if step == "install":
        return f"installing {total} update{'' if total == 1 else 's'}"
    return f"{step} ({done} of {total})"


def host_label(action: ActionBase) -> str:
    """The host's inventory name where the action knows it (a patching action does), else its address."""
    return getattr(action, "inventory_hostname", None) or action._play_context.remote_addr


def reset_connection(action: ActionBase) -> None:
    """Drop the task's connection so that the next command opens a new one; a host still unreachable is no error here."""
    try:
        action._connection.reset()
    except (AnsibleError, OSError) as error:
        display.vvv(f"Reconnecting to the host failed, trying again later: {error}")


def _collect_after_failure(action: ActionBase, run: dict[str, str]) -> None:
    try:
        run_bridge(action, "task_collect", run)
    except AnsibleError as error:
        warn(action, f"The elevated run {run['name']} may have left its scheduled task or folder on the host: {error}")


def _encoded_command(script_name: str) -> str:
    """PowerShell's arguments that run one of the collection's scripts, encoded as ``-EncodedCommand`` expects."""
    script = _read_script(script_name)
    return f"{_POWERSHELL_ARGUMENTS} {base64.b64encode(script.encode('utf-16-le')).decode('ascii')}"


@functools.cache
def _read_script(name: str) -> str:
    # Read once per controller process: an elevated run sends the bridge at every poll.
    return (_SCRIPT_DIR / name).read_text(encoding="utf-8")


def _excerpt(text: str) -> str:
    text = text.strip()
    if not text:
        return "(empty)"
    if len(text) > _EXCERPT_CHARS:
        return f"{text[:_EXCERPT_CHARS]}... ({len(text)} characters)"
    return text
