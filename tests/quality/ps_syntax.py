# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Syntax gate for the repository's PowerShell scripts.

Parses every ``*.ps1`` and ``*.psm1`` file with tree-sitter's PowerShell grammar,
so that a script that would not even parse on Windows is caught without a
PowerShell at hand, and reports each syntax error as ``file:line:column``.

Usage: ``python tests/quality/ps_syntax.py [path ...]`` (default: the whole
repository). Exits with 1 when any script has a syntax error.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
from collections.abc import Iterable, Iterator

import tree_sitter
import tree_sitter_powershell

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT_SUFFIXES = (".ps1", ".psm1")
# Virtual environments, build and lab output, and version control are not the project's scripts.
SKIPPED_DIRS = frozenset({".git", ".venv", ".build", ".lab"})

_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


@dataclasses.dataclass(frozen=True)
class SyntaxProblem:
    """One problem of a script and where it stands (1-based line and column): one the grammar
    could not make sense of, or (ps_contracts.py) a name Windows PowerShell 5.1 does not document."""

    path: pathlib.Path
    line: int
    column: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.problem}"


def find_scripts(paths: Iterable[pathlib.Path]) -> Iterator[pathlib.Path]:
    """Yield the PowerShell scripts among ``paths``, searching directories recursively."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(name for name in dirnames if name not in SKIPPED_DIRS)
            yield from (pathlib.Path(dirpath, name) for name in sorted(filenames) if name.endswith(SCRIPT_SUFFIXES))


def check_script(path: pathlib.Path) -> list[SyntaxProblem]:
    """Return the syntax errors of one script, in source order."""
    # PowerShell accepts a UTF-8 byte order mark; the grammar does not.
    source = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    lines = source.split(b"\n")
    problems = []
    pending = [_PARSER.parse(source).root_node]
    while pending:
        node = pending.pop()
        if node.is_error or node.is_missing:
            row, byte_column = node.start_point
            column = len(lines[row][:byte_column].decode("utf-8", errors="replace")) + 1
            problem = "syntax error" if node.is_error else f"missing {node.type!r}"
            problems.append(SyntaxProblem(path, row + 1, column, problem))
            # The errors nested in an error node are the same error.
            continue
        if node.has_error:
            pending.extend(reversed(node.children))
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [pathlib.Path(arg) for arg in args] or [REPO_ROOT]
    problems = [problem for script in find_scripts(paths) for problem in check_script(script)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
