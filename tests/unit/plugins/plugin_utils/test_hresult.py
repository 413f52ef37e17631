# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.wuacache.wua.plugins.plugin_utils._hresult import describe


@pytest.mark.parametrize(
    ("hresult", "code", "name"),
    [
        pytest.param(-2147024891, "0x80070005", "E_ACCESSDENIED", id="signed-as-dotnet-reports-it"),
        pytest.param(0x80070005, "0x80070005", "E_ACCESSDENIED", id="unsigned"),
        pytest.param(-2145095679, "0x80247001", "WU_E_OL_INVALID_SCANFILE", id="offline-scan"),
        pytest.param(0x00240005, "0x00240005", "WU_S_REBOOT_REQUIRED", id="success-code"),
        pytest.param(0x00041306, "0x00041306", "SCHED_S_TASK_TERMINATED", id="last-task-result"),
    ],
)
def test_known_codes(hresult: int, code: str, name: str) -> None:
    info = describe(hresult)

    assert (info.code, info.name) == (code, name)
    assert info.description


def test_unknown_code_keeps_its_hexadecimal_form() -> None:
    assert describe(-1) == ("0xFFFFFFFF", None, None)
