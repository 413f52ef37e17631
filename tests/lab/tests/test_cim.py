"""Get-CimInstance on an emulated host: the classes of the contract tables, typed as the CIM adapter types them."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_snippets import chain, failure, new_host, output, runtime_of
from wuacache_lab.powershell.errors import LabLimitation
from wuacache_lab.windows.host import WindowsHost


@pytest.fixture
def host(tmp_path: Path) -> WindowsHost:
    return new_host(tmp_path, profile="server2022")


def test_properties_have_the_types_of_their_cim_types(host: WindowsHost) -> None:
    script = (
        "$os = Get-CimInstance -ClassName Win32_OperatingSystem\n"
        "$os.GetType().FullName; $os.ProductType.GetType().FullName; $os.BuildNumber.GetType().FullName\n"
        "[string]$os.LastBootUpTime.Kind\n"
        "(Get-CimInstance -ClassName Win32_LogicalDisk -Filter \"DeviceID='C:'\").Size.GetType().FullName"
    )

    assert output(runtime_of(host), script) == [
        "Microsoft.Management.Infrastructure.CimInstance",
        "System.UInt32",
        "System.String",
        "Local",
        "System.UInt64",
    ]


def test_a_filter_selects_the_instances(host: WindowsHost) -> None:
    script = "@(Get-CimInstance -ClassName Win32_Service -Filter \"Name='wuauserv'\").Count; (Get-CimInstance -ClassName Win32_Service -Filter \"Name='WUAUSERV'\").StartMode"

    assert output(runtime_of(host), script) == [1, "Manual"]


def test_a_property_the_class_has_not_is_missing_under_strict_mode(host: WindowsHost) -> None:
    error = failure(runtime_of(host), "Set-StrictMode -Version 3.0; (Get-CimInstance -ClassName Win32_OperatingSystem).ServicePackLevel")

    assert chain(error) == ["System.Management.Automation.PropertyNotFoundException"]


def test_a_class_the_lab_does_not_have_is_its_limitation(host: WindowsHost) -> None:
    with pytest.raises(LabLimitation):
        output(runtime_of(host), "Get-CimInstance -ClassName Win32_Processor")
