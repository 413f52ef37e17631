# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The state the Windows Update service is left in, as the bridge's parameter."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.wuacache.wua.plugins.plugin_utils._options import (
    wuauserv_after,
)


@pytest.mark.parametrize(
    ("option", "found", "expected"),
    [
        ("disabled", ("Auto", "Running"), {"start_mode": "Disabled", "running": False}),
        ("manual", ("Auto", "Running"), {"start_mode": "Manual", "running": False}),
        ("automatic", ("Disabled", "Stopped"), {"start_mode": "Automatic", "running": True}),
        ("unchanged", ("Auto", "Running"), {"start_mode": "Automatic", "running": True}),
        ("unchanged", ("Disabled", "Stopped"), {"start_mode": "Disabled", "running": False}),
        ("unchanged", ("Manual", "Start Pending"), {"start_mode": "Manual", "running": False}),
    ],
)
def test_wuauserv_after(option: str, found: tuple[str, str], expected: dict[str, Any]) -> None:
    info = {"wuauserv": {"start_mode": found[0], "state": found[1], "recorded": None}}

    assert wuauserv_after({"wuauserv_after": option}, info) == expected


@pytest.mark.parametrize("option", ["unchanged", "manual"])
def test_unchanged_keeps_the_state_from_before_a_run_that_changed_it(option: str) -> None:
    # A run that died left the service started; it had found it disabled.
    info = {"wuauserv": {"start_mode": "Manual", "state": "Running", "recorded": {"start_mode": "Disabled", "running": False}}}

    expected = {"unchanged": {"start_mode": "Disabled", "running": False}, "manual": {"start_mode": "Manual", "running": False}}[option]
    assert wuauserv_after({"wuauserv_after": option}, info) == expected
