"""Programs run as commands: the words they are given, their output, ``$LASTEXITCODE`` and ``$?``."""

from __future__ import annotations

from powershell_snippets import ENVIRONMENT, failure, output, run, text
from wuacache_lab.powershell.runtime import ProgramResult, Runtime, StandardInput


class ProgramsRuntime(Runtime):
    """A machine with one program, ``tool.exe``, whose answer a test chooses; it records what it was given."""

    def __init__(self, answer: ProgramResult) -> None:
        super().__init__(ENVIRONMENT)
        self.answer = answer
        self.calls: list[tuple[str, list[str]]] = []
        self.inputs: list[bytes] = []

    def run_program(self, name: str, arguments: list[str], stdin: StandardInput) -> ProgramResult | None:
        if name.casefold().removesuffix(".exe") != "tool":
            return None
        self.calls.append((name, arguments))
        self.inputs.append(stdin.read())
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


def test_a_program_first_in_its_pipeline_inherits_the_standard_input() -> None:
    runtime = ProgramsRuntime(ProgramResult("", "", 0))

    completed = run("tool\n@($input).Count", ["first", "second"], runtime)

    # The program read the input to its end: nothing is left for $input.
    assert runtime.inputs == [b"first\r\nsecond\r\n"]
    assert text(completed) == "0\r\n"


def test_a_program_given_pipeline_input_does_not_read_the_standard_input() -> None:
    runtime = ProgramsRuntime(ProgramResult("", "", 0))

    completed = run("'piped' | tool\n@($input).Count", ["first", "second"], runtime)

    assert runtime.inputs == [b""]
    assert text(completed) == "2\r\n"


def test_a_script_that_reads_its_input_first_leaves_none_to_a_program() -> None:
    runtime = ProgramsRuntime(ProgramResult("", "", 0))

    completed = run("@($input).Count\ntool", ["first"], runtime)

    assert runtime.inputs == [b""]
    assert text(completed) == "1\r\n"
