# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The PowerShell syntax gate: the repository passes it, and it catches broken scripts."""

from __future__ import annotations

import pathlib
import re

import pytest
import ps_syntax


def write(directory: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_scripts_parse() -> None:
    scripts = list(ps_syntax.find_scripts([ps_syntax.REPO_ROOT]))

    assert ps_syntax.REPO_ROOT / "plugins" / "plugin_utils" / "_wua_bridge.ps1" in scripts
    assert [problem for script in scripts for problem in ps_syntax.check_script(script)] == []


def test_unclosed_brace_is_reported_where_the_block_ends(tmp_path: pathlib.Path) -> None:
    script = write(tmp_path, "unclosed.ps1", "function Get-Thing {\n    if ($true) {\n        'thing'\n    }\n")

    [problem] = ps_syntax.check_script(script)

    assert (problem.line, problem.problem) == (4, "missing '}'")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("param(\n    [string]$Name\n\n'hello'\n", id="unclosed"),
        pytest.param("param([string]$Name,)\n'hello'\n", id="trailing-comma"),
    ],
)
def test_bad_param_block_is_reported(tmp_path: pathlib.Path, text: str) -> None:
    script = write(tmp_path, "param.ps1", text)

    assert [problem.line for problem in ps_syntax.check_script(script)] == [1]


def test_valid_script_with_byte_order_mark_parses(tmp_path: pathlib.Path) -> None:
    script = write(tmp_path, "bom.psm1", "\ufeffparam($Request)\nSet-StrictMode -Version 3.0\n$Request | ConvertTo-Json -Compress\n")

    assert ps_syntax.check_script(script) == []


def test_main_reports_file_line_column_and_fails(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "good.ps1", "'fine'\n")
    broken = write(tmp_path, "sub/broken.psm1", "function Get-Thing {\n")

    assert ps_syntax.main([str(tmp_path)]) == 1

    [report] = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"{re.escape(str(broken))}:1:\d+: .+", report)


def test_skipped_directories_are_not_searched(tmp_path: pathlib.Path) -> None:
    write(tmp_path, ".venv/lib/broken.ps1", "function {\n")
    write(tmp_path, "tools/ok.ps1", "'fine'\n")

    assert [path.name for path in ps_syntax.find_scripts([tmp_path])] == ["ok.ps1"]
    assert ps_syntax.main([str(tmp_path)]) == 0
