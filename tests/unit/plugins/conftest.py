# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A clock for the plugins' polls, time budgets and reboots, that never waits."""

from __future__ import annotations

import pytest


class FakeClock:
    """time.monotonic and time.sleep, without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(name="clock")
def fixture_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    from ansible_collections.wuacache.wua.plugins.plugin_utils import (  # pylint: disable=import-outside-toplevel
        _bridge,
        _patching,
        _reboot,
    )

    clock = FakeClock()
    for module in (_bridge, _patching, _reboot):
        monkeypatch.setattr(module, "time", clock)
    return clock
