""".NET and COM members, checked against the contract tables as Windows PowerShell 5.1 would fail them."""

from __future__ import annotations

from datetime import datetime

import pytest
from powershell_snippets import ENVIRONMENT, failure, output
from wuacache_lab.powershell import dotnet
from wuacache_lab.powershell.dotnet import dotnet_type, static
from wuacache_lab.powershell.errors import LabLimitation
from wuacache_lab.powershell.runtime import Runtime
from wuacache_lab.powershell.values import DateTime, DateTimeKind
from wuacache_lab.windows.errors import COMError, HResultError

WU_E_NO_UPDATE = 0x80240024

# ---------------------------------------------------------------- .NET


def test_a_missing_method_and_property_fail_as_51_fails_them() -> None:
    method = failure("'text'.Trimm()")
    assert method.exception.message == "Method invocation failed because [System.String] does not contain a method named 'Trimm'."
    assert method.record.fully_qualified_error_id == "MethodNotFound"
    setter = failure("$s = 'text'\n$s.Size = 1")
    assert setter.exception.message == "The property 'Size' cannot be found on this object. Verify that the property exists and can be set."


def test_a_wrong_argument_count_finds_no_overload() -> None:
    error = failure("'text'.Substring()")
    assert error.exception.type_name == "System.Management.Automation.MethodException"
    assert error.exception.message == 'Cannot find an overload for "Substring" and the argument count: "0".'


def test_a_failing_method_is_wrapped_with_its_exception_inside() -> None:
    error = failure("'abc'.Substring(5)")
    assert error.exception.type_name == "System.Management.Automation.MethodInvocationException"
    assert error.exception.message.startswith('Exception calling "Substring" with "1" argument(s): "startIndex cannot be larger than length of string.')
    assert error.exception.inner is not None and error.exception.inner.type_name == "System.ArgumentOutOfRangeException"
    assert error.record.fully_qualified_error_id == "ArgumentOutOfRangeException"


def test_a_member_only_newer_dotnet_has_is_refused_even_when_python_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A registration for this test only.
    monkeypatch.setattr(dotnet, "_IMPLEMENTATIONS", dict(dotnet._IMPLEMENTATIONS))

    @dotnet_type("System.Convert")
    class Convert:
        @static
        def ToBase64String(data: object) -> str:  # noqa: N802 - .NET member name
            return "AA=="

        @static
        def FromHexString(text: object) -> list[object]:  # noqa: N802 - in .NET 5 and later only
            return [0]

    assert output("[System.Convert]::ToBase64String(@(0))") == ["AA=="]
    assert failure("[System.Convert]::FromHexString('00')").record.fully_qualified_error_id == "MethodNotFound"


def test_a_member_of_the_tables_the_lab_does_not_implement_is_its_limitation() -> None:
    with pytest.raises(LabLimitation, match="Normalize"):
        output("'text'.Normalize()")


def test_type_tests_follow_base_types_and_interfaces() -> None:
    script = (
        "[System.IO.FileNotFoundException]::new('x') -is [System.IO.IOException]\n"
        "[System.IO.FileNotFoundException]::new('x') -is [System.SystemException]\n"
        "@(1) -is [array]\n"
        "@{} -is [System.Collections.IDictionary]\n"
        "'1' -isnot [int]\n"
        "('5' -as [int]) + 1\n"
        "('x' -as [int]) -eq $null"
    )
    assert output(script) == [True, True, True, True, True, 6, True]


def test_exceptions_have_their_default_hresults() -> None:
    script = (
        "[System.ArgumentException]::new('x').HResult\n"
        "[System.UnauthorizedAccessException]::new('x').HResult\n"
        "[System.IO.IOException]::new('x').HResult\n"
        "[System.IO.FileNotFoundException]::new('x', 'f').HResult\n"
        "[System.IO.InvalidDataException]::new('x').HResult\n"
        "[System.InvalidOperationException]::new('x').HResult"
    )
    assert output(script) == [-2147024809, -2147024891, -2146232800, -2147024894, -2146233087, -2146233079]


def test_an_unknown_type_is_not_found() -> None:
    assert failure("[System.Nothing]::Here").exception.message == "Unable to find type [System.Nothing]."


# ---------------------------------------------------------------- COM


class UpdateCollection(list):
    __com_interface__ = "IUpdateCollection"

    @property
    def Count(self) -> int:  # noqa: N802 - SDK member name
        return len(self)

    def Item(self, index: int) -> object:  # noqa: N802
        return self[index]


class Update:
    __com_interface__ = "IUpdate"

    def __init__(self, title: str) -> None:
        self.Title = title
        self.LastDeploymentChangeTime = datetime(2024, 1, 9)
        self.Secret = "not in the SDK"

    @property
    def IsDownloaded(self) -> bool:  # noqa: N802
        raise COMError(0x80070005)


class SearchResult:
    __com_interface__ = "ISearchResult"

    def __init__(self) -> None:
        self.ResultCode = 2
        self.Updates = UpdateCollection([Update("first"), Update("second")])


class UpdateSearcher:
    __com_interface__ = "IUpdateSearcher"

    def __init__(self) -> None:
        self.Online = True

    def Search(self, criteria: str) -> SearchResult:  # noqa: N802
        return SearchResult()

    def GetTotalHistoryCount(self) -> int:  # noqa: N802
        raise HResultError(WU_E_NO_UPDATE)


class UpdateSession:
    def CreateUpdateSearcher(self) -> UpdateSearcher:  # noqa: N802
        return UpdateSearcher()


class Machine(Runtime):
    def create_com_object(self, prog_id: str) -> object:
        if prog_id.casefold() == "microsoft.update.session":
            return UpdateSession()
        return super().create_com_object(prog_id)


SEARCHER = "$searcher = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()\n"


def com(script: str) -> list[object]:
    return output(SEARCHER + script, Machine(ENVIRONMENT))


def com_failure(script: str):  # type: ignore[no-untyped-def]
    return failure(SEARCHER + script, Machine(ENVIRONMENT))


def test_com_members_properties_collections_and_dates_cross_as_powershell_sees_them() -> None:
    written = com(
        "$result = $searcher.Search('IsInstalled=0')\n"
        "$result.ResultCode\n"
        "$result.Updates.Count\n"
        "foreach ($update in $result.Updates) { $update.Title }\n"
        "$result.Updates.Item(1).Title\n"
        "$result.Updates[0].Title\n"
        "$result.Updates.Item(0).LastDeploymentChangeTime"
    )
    assert written[:6] == [2, 2, "first", "second", "second", "first"]
    assert isinstance(written[6], DateTime) and written[6].kind == DateTimeKind.Unspecified


def test_a_misspelt_com_property_is_null_or_under_strict_mode_an_error() -> None:
    assert com("$searcher.Onlin -eq $null") == [True]
    error = com_failure("Set-StrictMode -Version 3.0\n$searcher.Onlin")
    assert error.exception.type_name == "System.Management.Automation.PropertyNotFoundException"


def test_a_misspelt_com_method_is_not_found_on_the_com_object() -> None:
    error = com_failure("$searcher.Serch('x')")
    assert error.exception.message == "Method invocation failed because [System.__ComObject] does not contain a method named 'Serch'."


def test_a_wrong_com_argument_count_finds_no_overload() -> None:
    error = com_failure("$searcher.Search()")
    assert error.exception.type_name == "System.Management.Automation.MethodException"
    assert error.exception.message == 'Cannot find an overload for "Search" and the argument count: "0".'


def test_a_failing_com_method_wraps_a_target_invocation_around_the_hresult() -> None:
    error = com_failure("$searcher.GetTotalHistoryCount()")
    assert error.exception.type_name == "System.Management.Automation.MethodInvocationException"
    assert error.record.fully_qualified_error_id == "ComMethodTargetInvocation"
    invocation = error.exception.inner
    assert invocation is not None and invocation.type_name == "System.Reflection.TargetInvocationException"
    assert invocation.inner is not None and invocation.inner.hresult == WU_E_NO_UPDATE - (1 << 32)
    assert error.exception.message == 'Exception calling "GetTotalHistoryCount" with "0" argument(s): "Exception from HRESULT: 0x80240024"'


def test_a_failing_com_property_read_wraps_the_exception_directly() -> None:
    script = "try { $searcher.Search('x').Updates.Item(0).IsDownloaded } catch { $_.Exception.GetType().Name; $_.Exception.InnerException.GetType().Name; $_.Exception.InnerException.HResult }"
    assert com(script) == ["GetValueInvocationException", "UnauthorizedAccessException", -2147024891]


def test_a_model_attribute_the_interface_does_not_have_is_no_member() -> None:
    assert com("$searcher.Search('x').Updates.Item(0).Secret -eq $null") == [True]


def test_an_interface_member_the_model_lacks_is_the_labs_limitation() -> None:
    with pytest.raises(LabLimitation, match="IncludePotentiallySupersededUpdates"):
        com("$searcher.IncludePotentiallySupersededUpdates")


def test_an_unknown_prog_id_fails_new_object() -> None:
    error = failure("New-Object -ComObject No.Such.Thing", Machine(ENVIRONMENT))
    assert error.exception.hresult == 0x80040154 - (1 << 32)
    assert error.record.fully_qualified_error_id == "NoCOMClassIdentified,Microsoft.PowerShell.Commands.NewObjectCommand"
