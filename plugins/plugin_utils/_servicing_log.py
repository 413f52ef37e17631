# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The lines of the servicing log (CBS.log) that tell why an install failed.

The host answers the end of the log (the bridge's ``servicing_log``); the
controller keeps the lines that name a failing HRESULT, or else those of
servicing's errors and failures, each with a few lines around it, at most
:data:`MAX_LINES` of the most recent. Servicing writes an HRESULT as
``[HRESULT = 0x800f0922 - CBS_E_INSTALLERS_FAILED]``, in lower case.
"""

# FOR INTERNAL COLLECTION USE ONLY: may change in any release.

from __future__ import annotations

import re
from collections.abc import Iterable

# How much of the log's end the host sends, and how many of its lines the task returns.
MAX_BYTES = 64 * 1024
MAX_LINES = 200
# Lines kept before and after each line that tells of the failure.
CONTEXT_LINES = 5
# Between two parts of the log that are not next to each other.
GAP = "..."
# The level field of a line that reports an error, or a message that says something failed.
_FAILURE = re.compile(r"^[^,]*,\s+Error\s|Failed")


def excerpt(text: str | None, offset: int | None, hresults: Iterable[str]) -> list[str]:
    """The lines of ``text`` (the log from byte ``offset`` on) around the failure of ``hresults`` (``0x80070643``)."""
    lines = (text or "").splitlines()
    if offset:
        # The end of the log began inside a line.
        lines = lines[1:]
    # S_OK marks the sessions that went well.
    codes = {code.lower() for code in hresults if int(code, 16)}
    marked = [index for index, line in enumerate(lines) if any(code in line.lower() for code in codes)]
    if not marked:
        marked = [index for index, line in enumerate(lines) if _FAILURE.search(line)]
    kept = sorted({
        near
        for index in marked
        for near in range(max(0, index - CONTEXT_LINES), min(len(lines), index + CONTEXT_LINES + 1))
    })
    selected: list[str] = []
    for position, index in enumerate(kept):
        if position and index != kept[position - 1] + 1:
            selected.append(GAP)
        selected.append(lines[index])
    return selected[-MAX_LINES:]
