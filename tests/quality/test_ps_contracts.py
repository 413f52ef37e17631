# Copyright: Contributors to the wuacache project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The PowerShell contract gate: the repository passes it, and it catches names Windows PowerShell 5.1 lacks."""

from __future__ import annotations

import pathlib

import ps_contracts
import ps_syntax
import pytest


def problems_of(directory: pathlib.Path, text: str) -> list[str]:
    path = directory / "script.ps1"
    path.write_text(text, encoding="utf-8")
    return [f"{problem.line}: {problem.problem}" for problem in ps_contracts.check_script(path)]


def test_repository_scripts_name_only_documented_commands_types_and_members() -> None:
    scripts = list(ps_syntax.find_scripts([ps_syntax.REPO_ROOT]))

    assert ps_syntax.REPO_ROOT / "plugins" / "plugin_utils" / "_wua_bridge.ps1" in scripts
    assert [str(problem) for script in scripts for problem in ps_contracts.check_script(script)] == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("Start-Service -Name wuauserv -NoWait\n", "1: Start-Service has no parameter '-NoWait'", id="parameter"),
        pytest.param(
            "Get-ChildItem -LiteralPath 'C:\\' -Fi '*.cab'\n",
            "1: '-Fi' is ambiguous for Get-ChildItem: File, Filter",
            id="ambiguous-prefix",
        ),
        pytest.param(
            "Get-ChildItem -LiteralPath 'C:\\' -FollowSymlink\n",
            "1: Get-ChildItem has no parameter '-FollowSymlink'",
            id="parameter-of-a-later-powershell",
        ),
        pytest.param("Get-Itemz -Path 'C:\\'\n", "1: the command 'Get-Itemz' is not in the contract tables", id="command"),
        pytest.param("$x = [System.IO.Fil]::Exists('x')\n", "1: the type [System.IO.Fil] is not in the contract tables", id="type"),
        pytest.param(
            "$x = [System.IO.File]::ReadAllTextAsync('x')\n",
            "1: [System.IO.File] has no static member 'ReadAllTextAsync'",
            id="core-only-member",
        ),
        pytest.param(
            "$x = [System.IO.File]::Length\n",
            "1: [System.IO.File] has no static member 'Length'",
            id="instance-member-read-statically",
        ),
        pytest.param(
            "try { 1 }\ncatch [System.Management.Automation.MethodInvocationExceptionz] { 2 }\n",
            "2: the type [System.Management.Automation.MethodInvocationExceptionz] is not in the contract tables",
            id="catch-type",
        ),
        pytest.param(
            "$x = New-Object -ComObject Microsoft.Update.Sesion\n",
            "1: the ProgID 'Microsoft.Update.Sesion' is not in the contract tables",
            id="progid",
        ),
        pytest.param(
            "function Get-Thing {\n    param([Parameter(Mandatory = $true)] [string]$Name)\n    $Name\n}\nGet-Thing -Nam 'a' -Other 1\n",
            "5: the function Get-Thing has no parameter '-Other'",
            id="function-parameter",
        ),
    ],
)
def test_an_undocumented_name_is_reported_where_it_is_used(tmp_path: pathlib.Path, text: str, problem: str) -> None:
    assert problems_of(tmp_path, text) == [problem]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Start-Service -Name wuauserv\nStop-Service -Name wuauserv -Force -NoWait\n", id="documented"),
        pytest.param("get-item -literalpath 'C:\\' -ea Stop\n", id="lower-case-and-alias"),
        pytest.param("Get-Item -LiteralPath:'C:\\' -ErrorAction:Stop\n", id="colon-arguments"),
        pytest.param("Get-ChildItem -LiteralPath 'C:\\' -Rec -Fo\n", id="prefixes"),
        pytest.param("$list = [System.Collections.Generic.List[object]]::new()\n", id="generic-constructor"),
        pytest.param("$kind = [System.DateTimeKind]::Utc\n$time = [datetime]::SpecifyKind([datetime]::Now, $kind)\n", id="accelerator"),
        pytest.param("$h = [ordered]@{ a = 1 }\n", id="ordered"),
        pytest.param("$x = [IO.Path]::GetFileName('C:\\a')\n", id="implicit-system-namespace"),
        pytest.param(
            "function Get-Thing {\n    param([Parameter(Mandatory = $true)] [Alias('thing_name')] [string]$Name)\n    $Name\n}\n"
            "Get-Thing -thing_name 'a' -EA Stop\n& $command -Anything 1\n",
            id="function-alias-common-and-dynamic",
        ),
    ],
)
def test_documented_names_pass(tmp_path: pathlib.Path, text: str) -> None:
    assert problems_of(tmp_path, text) == []


def test_a_script_outside_the_interpreted_subset_is_reported(tmp_path: pathlib.Path) -> None:
    [problem] = problems_of(tmp_path, "$a = 1\nGet-Item -LiteralPath 'C:\\' && $a\n")

    assert problem.startswith("2: ")


def test_main_prints_each_problem_and_fails(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.ps1").write_text("Get-Item -LiteralPath 'C:\\'\n", encoding="utf-8")
    (tmp_path / "bad.ps1").write_text("Get-Item -LiteralPath 'C:\\' -Bogus\n", encoding="utf-8")

    assert ps_contracts.main([str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"{tmp_path / 'bad.ps1'}:1:29: Get-Item has no parameter '-Bogus'\n"
    assert ps_contracts.main([str(tmp_path / "good.ps1")]) == 0
