# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The excerpt of the servicing log (CBS.log) an install failure returns."""

from __future__ import annotations

from ansible_collections.wuacache.wua.plugins.plugin_utils._servicing_log import CONTEXT_LINES, GAP, MAX_LINES, excerpt


def info(number: int) -> str:
    return f"2024-05-14 07:46:{number % 60:02d}, Info                  CBS    Line {number} of a session that went well"


def test_the_lines_of_the_failing_hresult_come_with_their_context_and_a_gap_between_parts() -> None:
    lines = [info(number) for number in range(40)]
    lines[10] = "2024-05-14 07:46:10, Error                 CBS    Exec: Failed. [HRESULT = 0x80070643 - ERROR_INSTALL_FAILURE]"
    lines[30] = "2024-05-14 07:46:30, Info                  CBS    Session finalized. [HRESULT = 0x80070643 - ERROR_INSTALL_FAILURE]"

    result = excerpt("\r\n".join(lines), 0, ["0x80070643"])

    first = lines[10 - CONTEXT_LINES : 10 + CONTEXT_LINES + 1]
    second = lines[30 - CONTEXT_LINES : 30 + CONTEXT_LINES + 1]
    assert result == [*first, GAP, *second]


def test_without_the_hresult_in_the_log_its_errors_and_failures_are_kept() -> None:
    lines = [info(number) for number in range(20)]
    lines[5] = "2024-05-14 07:46:05, Error                 CBS    Failed to resolve package [HRESULT = 0x800f0831 - CBS_E_STORE_CORRUPTION]"
    lines[16] = "2024-05-14 07:46:16, Info                  CBS    Session finalized. [HRESULT = 0x00000000 - S_OK]"
    lines[19] = "2024-05-14 07:46:19, Info                  CBS    Failed to get next element"

    # The install's own result, S_OK, marks nothing.
    result = excerpt("\n".join(lines), 0, ["0x80240022", "0x00000000"])

    assert lines[5] in result and lines[19] in result
    assert lines[0] in result and lines[12] not in result


def test_a_line_cut_by_the_start_of_the_tail_is_left_out() -> None:
    text = "HRESULT = 0x80070643 - ERROR_INSTALL_FAILURE]\n" + info(1)

    assert excerpt(text, 4096, ["0x80070643"]) == []
    assert excerpt(text, 0, ["0x80070643"]) == text.splitlines()


def test_the_excerpt_keeps_the_most_recent_lines_within_its_bound() -> None:
    lines = [f"2024-05-14 07:46:00, Error                 CBS    Failed {number}" for number in range(MAX_LINES * 2)]

    result = excerpt("\n".join(lines), 0, [])

    assert result == lines[-MAX_LINES:]


def test_a_log_without_failures_or_text_gives_no_lines() -> None:
    assert excerpt("\n".join(info(number) for number in range(10)), 0, ["0x80070643"]) == []
    assert excerpt(None, None, ["0x80070643"]) == []
