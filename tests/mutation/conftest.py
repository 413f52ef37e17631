# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Options of the mutation tests: a deterministic sample of the systematic mutants, or all of them."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all-mutants",
        action="store_true",
        default=False,
        help="run every systematic mutant of the bridge, not a sample",
    )
