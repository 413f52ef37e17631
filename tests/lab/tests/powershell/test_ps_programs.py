"""Programs run as commands: the words they are given, their output, ``$LASTEXITCODE`` and ``$?``."""

from __future__ import annotations

from powershell_snippets import ENVIRONMENT, failure, output, run
from wuacache_lab.powershell.runtime import ProgramResult, Runtime


class ProgramsRuntime(Runtime):
    """A machine with one program, ``tool.exe``, whose answer a test chooses; it records what it was given."""

    def __init__(self, answer: ProgramResult) -> None:
        super().__init__(ENVIRONMENT)
        self.answer = answer
        self.calls: list[tuple[str, list[str]]] = []

    def run_program(self, name: str, arguments: list[str]) -> ProgramResult | None:
        if name.casefold().removesuffix(".exe") != "tool":
            return None
        self.calls.append((name, arguments))
        return self.answer


def test_a_program_gets_each_argument_as_a_word() -> None:
    runtime = ProgramsRuntime(ProgramResult("", "", 0))

    output("$list = 'a', 'b'\ntool.exe /r /t 5 -Force -Name:x $list $null 'two words'", runtime)

    assert runtime.calls == [("tool.exe", ["/r", "/t", "5", "-Force", "-Name:x", "a", "b", "two words"])]


def test_its_output_lines_are_strings_and_its_exit_code_is_lastexitcode() -> None:
    runtime = ProgramsRuntime(ProgramResult("first\r\nsecond\r\n", "", 3))

    assert output("$lines = tool\n$lines.Count\n$lines[1].GetType().Name\n$LASTEXITCODE", runtime) == [2, "String", 3]
    assert output("tool\n$?", runtime) == ["first", "second", False]


def test_a_program_that_succeeds_leaves_question_mark_true() -> None:
    runtime = ProgramsRuntime(ProgramResult("done\r\n", "", 0))

    assert output("tool\n$?\n$global:LASTEXITCODE", runtime) == ["done", True, 0]


def test_each_line_of_standard_error_is_a_native_command_error() -> None:
    completed = run("tool /r", runtime=ProgramsRuntime(ProgramResult("", "A system shutdown has already been scheduled.(1190)\r\n", 1190)))

    text = completed.stderr.decode("cp437")
    assert text.startswith("tool : A system shutdown has already been scheduled.(1190)\r\n")
    assert "FullyQualifiedErrorId : NativeCommandError" in text
    # -Command's exit code is 1 when $? is false, whatever the program's (about_PowerShell_exe).
    assert completed.exit_code == 1


def test_exit_lastexitcode_keeps_the_programs_code() -> None:
    assert run("tool\nexit $LASTEXITCODE", runtime=ProgramsRuntime(ProgramResult("", "", 1190))).exit_code == 1190


def test_a_name_the_machine_has_no_program_for_is_not_found() -> None:
    error = failure("no-such-tool /x", ProgramsRuntime(ProgramResult("", "", 0)))

    assert error.exception.type_name == "System.Management.Automation.CommandNotFoundException"
