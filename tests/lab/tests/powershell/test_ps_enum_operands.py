"""Strings where an enum is expected: converted to the enum as LanguagePrimitives converts them."""

from __future__ import annotations

import pytest
from powershell_snippets import output


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("[System.DateTimeKind]::Utc -eq 'Utc'", True),
        ("[System.DateTimeKind]::Utc -eq 'utc'", True),
        ("[System.DateTimeKind]::Utc -eq 'Local'", False),
        ("[System.DateTimeKind]::Utc -eq '1'", True),
        ("[System.DateTimeKind]::Utc -ne 'Unspecified'", True),
        ("[System.DateTimeKind]::Local -gt 'Utc'", True),
        ("[System.IO.FileAttributes]::Hidden -eq 'Hidden, ReadOnly'", False),
        ("[System.IO.FileAttributes]'Hidden, ReadOnly' -eq 'ReadOnly, Hidden'", True),
    ],
)
def test_a_comparison_converts_the_string_to_the_left_operands_enum(expression: str, value: bool) -> None:
    assert output(expression) == [value]


def test_a_bitwise_operator_converts_a_field_name() -> None:
    assert output("[string]([System.IO.FileAttributes]::Hidden -bor 'ReadOnly')") == ["ReadOnly, Hidden"]


def test_a_method_argument_of_an_enum_type_may_be_its_name() -> None:
    script = "$date = [datetime]::SpecifyKind([datetime]'2024-01-09T10:00:00', 'Utc')\n[string]$date.Kind\n$date.ToString('o')"

    assert output(script) == ["Utc", "2024-01-09T10:00:00.0000000Z"]
