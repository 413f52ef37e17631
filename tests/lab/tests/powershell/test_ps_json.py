"""ConvertTo-Json and ConvertFrom-Json as Windows PowerShell 5.1 does them."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from powershell_snippets import ENVIRONMENT, failure, output
from wuacache_lab.powershell.jsonconvert import pretty, quote
from wuacache_lab.powershell.runtime import Runtime
from wuacache_lab.powershell.values import DateTime, DateTimeKind, Int64, PSObject


def json(script: str, runtime: Runtime | None = None) -> str:
    written = output(script, runtime)
    assert len(written) == 1 and isinstance(written[0], str)
    return written[0]


def test_objects_deeper_than_the_default_depth_become_their_string() -> None:
    assert json("ConvertTo-Json @{ a = @{ b = @{ c = @{ d = 1 }; e = @(1, 2) } } } -Compress") == (
        '{"a":{"b":{"c":"System.Collections.Hashtable","e":"1 2"}}}'
    )
    assert json("ConvertTo-Json @{ a = @{ b = @{ c = @{ d = 1 } } } } -Compress -Depth 3") == '{"a":{"b":{"c":{"d":1}}}}'
    assert json("ConvertTo-Json ([ordered]@{ a = @{ b = @{ c = [pscustomobject]@{ d = 1; e = 'x' } } } }) -Compress") == (
        '{"a":{"b":{"c":"@{d=1; e=x}"}}}'
    )


def test_an_array_piped_as_one_object_is_wrapped_with_its_count() -> None:
    script = "$updates = @('a', 'b')\n,$updates | ConvertTo-Json -Compress\nConvertTo-Json -InputObject $updates -Compress\n$updates | ConvertTo-Json -Compress"
    assert output(script) == ['{"value":["a","b"],"Count":2}', '["a","b"]', '["a","b"]']


def test_get_date_output_carries_its_display_hint() -> None:
    runtime = Runtime(ENVIRONMENT, clock=lambda: datetime(2024, 1, 9, 10, 0, tzinfo=timezone.utc))
    assert json("Get-Date | ConvertTo-Json -Compress", runtime) == '{"value":"\\/Date(1704794400000)\\/","DisplayHint":2}'


def test_dates_enums_and_numbers_are_written_as_javascriptserializer_writes_them() -> None:
    runtime = Runtime(ENVIRONMENT, utc_offset_minutes=60)
    script = (
        "ConvertTo-Json -Compress ([ordered]@{\n"
        "    utc = [datetime]::SpecifyKind([datetime]'2024-01-09T10:00:00', [System.DateTimeKind]::Utc)\n"
        "    unspecified = [datetime]'2024-01-09T10:00:00'\n"
        "    kind = [System.DateTimeKind]::Local\n"
        "    double = 0.1 + 0.2\n"
        "    third = 1 / 3\n"
        "    decimal = 1.50d\n"
        "    long = 2147483648\n"
        "    flag = $true\n"
        "    none = $null\n"
        "})"
    )
    assert json(script, runtime) == (
        '{"utc":"\\/Date(1704794400000)\\/","unspecified":"\\/Date(1704790800000)\\/","kind":2,'
        '"double":0.30000000000000004,"third":0.33333333333333331,"decimal":1.50,"long":2147483648,"flag":true,"none":null}'
    )


def test_strings_are_escaped_as_javascriptserializer_escapes_them() -> None:
    assert quote("<a href='x'>&\"\\\t\u0001é") == '"\\u003ca href=\\u0027x\\u0027\\u003e\\u0026\\"\\\\\\t\\u0001é"'


def test_without_compress_51_aligns_values_under_their_keys() -> None:
    assert json("ConvertTo-Json ([ordered]@{ a = 1; list = @(1, 2); empty = @(); o = [ordered]@{ b = 'x' } })") == (
        "{\r\n"
        '    "a":  1,\r\n'
        '    "list":  [\r\n'
        "                 1,\r\n"
        "                 2\r\n"
        "             ],\r\n"
        '    "empty":  [\r\n'
        "\r\n"
        "              ],\r\n"
        '    "o":  {\r\n'
        '              "b":  "x"\r\n'
        "          }\r\n"
        "}"
    )
    assert pretty('"text"') == '"text"'


def test_null_gives_no_output_and_several_inputs_one_array() -> None:
    assert output("ConvertTo-Json -InputObject $null") == []
    assert output("1, 'two' | ConvertTo-Json -Compress") == ['[1,"two"]']


def test_convert_from_json_gives_custom_objects_in_document_order_and_51_number_types() -> None:
    parsed = output("'{\"b\": 1, \"a\": 2147483648, \"c\": 1.5, \"d\": 1e3, \"e\": [1, \"x\"], \"f\": null}' | ConvertFrom-Json")[0]
    assert isinstance(parsed, PSObject) and parsed.is_custom
    assert [name for name, _ in parsed.note_items()] == ["b", "a", "c", "d", "e", "f"]
    values = dict(parsed.note_items())
    assert values["b"] == 1 and type(values["b"]) is int
    assert type(values["a"]) is Int64 and values["c"] == Decimal("1.5") and values["d"] == 1000.0
    assert values["e"] == [1, "x"] and values["f"] is None


def test_convert_from_json_writes_a_top_level_array_as_one_object() -> None:
    assert output("$a = '[1, 2, 3]' | ConvertFrom-Json\n$a.Count\n@('[1, 2, 3]' | ConvertFrom-Json).Count") == [3, 1]


def test_convert_from_json_joins_pieces_that_are_no_document_alone() -> None:
    assert output("('{', '\"a\": 1', '}' | ConvertFrom-Json).a") == [1]


def test_a_json_date_string_becomes_a_utc_datetime() -> None:
    parsed = output("('{\"d\": \"\\/Date(1704794400000)\\/\"}' | ConvertFrom-Json).d")[0]
    assert isinstance(parsed, DateTime) and parsed.kind == DateTimeKind.Utc
    assert parsed.to_python() == datetime(2024, 1, 9, 10, 0)


@pytest.mark.parametrize(("document", "message"), [("abc", "Invalid JSON primitive: abc."), ('{"a" 1}', "Invalid object passed in, ':' or '}' expected.")])
def test_invalid_json_is_an_argument_exception(document: str, message: str) -> None:
    error = failure(f"'{document}' | ConvertFrom-Json")
    assert error.exception.type_name == "System.ArgumentException"
    assert error.exception.message.startswith(message)
    assert error.record.fully_qualified_error_id == "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand"


def test_keys_differing_only_by_case_are_refused() -> None:
    error = failure("'{\"a\": 1, \"A\": 2}' | ConvertFrom-Json")
    assert "duplicated keys 'a' and 'A'" in error.exception.message
