# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Elevated runs outlive a connection the host drops while their task runs."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.wuacache.wua.plugins.plugin_utils._bridge import (
    BridgeError,
    run_elevated,
)

from ..conftest import FakeClock
from .test_elevated import (
    ENDED,
    REBOOT_REQUIRED,
    RUNNING,
    RecordedHost,
    collected,
    polled,
    started,
)


class DroppingHost(RecordedHost):
    """A recorded host whose connection fails at the polls numbered in ``failing_polls`` (from 1)."""

    def __init__(self, answers: dict[str, list[tuple[int, str]]], failing_polls: set[int], error: Exception) -> None:
        super().__init__(answers)
        self.failing_polls = failing_polls
        self.error = error
        self.polls = 0
        self._connection = MagicMock()

    def _low_level_execute_command(self, cmd: str, sudoable: bool = True, in_data: bytes | None = None) -> dict[str, Any]:
        if b'"operation":"task_poll"' in (in_data or b""):
            self.polls += 1
            if self.polls in self.failing_polls:
                raise self.error
        return super()._low_level_execute_command(cmd, sudoable=sudoable, in_data=in_data)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(AnsibleConnectionFailure("winrm connection error: Read timed out"), id="ansible"),
        pytest.param(ConnectionResetError(104, "Connection reset by peer"), id="transport"),
    ],
)
def test_a_dropped_connection_while_polling_reconnects_and_polls_again(clock: FakeClock, error: Exception) -> None:
    host = DroppingHost(
        {
            "task_start": [started("run-1")],
            "task_poll": [polled(RUNNING, False), polled(ENDED, True)],
            "task_collect": [collected(REBOOT_REQUIRED)],
        },
        failing_polls={2, 3},
        error=error,
    )

    assert run_elevated(host, "reboot_required", name="run-1") == {"reboot_required": True}

    assert host._connection.reset.call_count == 2
    assert host.operations == ["task_start", "task_poll", "task_poll", "task_collect"]
    # A poll interval after each dropped connection; the polls themselves wait on the host.
    assert clock.sleeps == [1.0, 1.0]


def test_a_reconnection_that_fails_too_is_retried(clock: FakeClock) -> None:
    host = DroppingHost(
        {"task_start": [started("run-1")], "task_poll": [polled(ENDED, True)], "task_collect": [collected(REBOOT_REQUIRED)]},
        failing_polls={1},
        error=AnsibleConnectionFailure("winrm connection error"),
    )
    host._connection.reset.side_effect = AnsibleConnectionFailure("the connection attempt timed out")

    assert run_elevated(host, "reboot_required", name="run-1") == {"reboot_required": True}
    assert clock.sleeps == [1.0]


@pytest.mark.usefixtures("clock")
def test_a_host_that_stays_unreachable_fails_at_the_deadline_and_is_still_collected() -> None:
    host = DroppingHost(
        {"task_start": [started("run-1")], "task_collect": [collected(None)]},
        failing_polls=set(range(1, 100)),
        error=AnsibleConnectionFailure("winrm connection error"),
    )

    with pytest.raises(BridgeError, match="did not end within 100 seconds in the elevated run run-1"):
        run_elevated(host, "reboot_required", name="run-1", timeout=100, poll_interval=4)

    # task_start waited 60 seconds; then a poll every 4 seconds, each cut, until the deadline.
    assert host.polls == 10
    assert host.operations == ["task_start", "task_collect"]


def test_other_failures_while_polling_are_not_retried(clock: FakeClock) -> None:
    host = DroppingHost(
        {"task_start": [started("run-1")], "task_collect": [collected(None)]},
        failing_polls={1},
        error=ValueError("not a connection failure"),
    )

    with pytest.raises(ValueError):
        run_elevated(host, "reboot_required", name="run-1")

    host._connection.reset.assert_not_called()
    assert clock.sleeps == []
