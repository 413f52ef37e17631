"""The contract tables: their invariants, what the loader resolves, what each parser
extracts from pages written in the reference's formats, and (with the reference
repositories at hand) that the generator still writes exactly the committed tables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from wuacache_lab.powershell import contracts
from wuacache_lab.powershell.contracts import generate

TABLES = resources.files(contracts)


def _table(name: str) -> Any:
    return json.loads(TABLES.joinpath(f"{name}.json").read_text(encoding="utf-8"))


def _citations(node: Any) -> Iterator[Mapping[str, str]]:
    """Every citation of a table: each value of a "source" key and of a "sources" list."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "source":
                yield value
            elif key == "sources":
                yield from value
            else:
                yield from _citations(value)
    elif isinstance(node, list):
        for item in node:
            yield from _citations(item)


def _rows(name: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The rows of a table that must each carry a citation."""
    table = _table(name)
    if name == "cmdlets":
        yield "common parameters", table["common_parameters"]
        yield from table["cmdlets"].items()
    elif name == "com":
        for section in ("interfaces", "enums", "progids"):
            yield from table[section].items()
    elif name == "dotnet":
        yield from table["types"].items()
    elif name == "cim":
        yield from table["classes"].items()
    else:
        yield from ((row["name"], row) for row in table["members"])
        yield "type accelerators", table["type_accelerators"]


# --- Invariants of the committed tables ------------------------------------------------------


@pytest.mark.parametrize("name", generate.TABLE_NAMES)
def test_every_row_cites_a_pinned_file(name: str) -> None:
    pins = _table("sources")
    rows = list(_rows(name))
    assert rows
    for row_name, row in rows:
        citations = list(_citations({key: value for key, value in row.items() if key in ("source", "sources")}))
        assert citations, f"{row_name} cites nothing"
        for citation in citations:
            assert set(citation) == {"repo", "commit", "path"}
            pinned = pins["repositories"].get(citation["repo"])
            if pinned is not None:
                assert citation["commit"] == pinned["commit"], row_name
            else:
                assert pins["cited_only"][citation["repo"]][citation["path"]] == citation["commit"], row_name


def test_sources_pin_full_commits_with_their_dates() -> None:
    pins = _table("sources")
    for name, pin in pins["repositories"].items():
        assert len(pin["commit"]) == 40 and int(pin["commit"], 16) >= 0, name
        assert pin["date"][:4].isdigit() and "T" in pin["date"], name
    for files in pins["cited_only"].values():
        assert all(len(commit) == 40 for commit in files.values())


def test_tables_hold_every_name_once_case_insensitively() -> None:
    cmdlets = _table("cmdlets")
    command_names = [name.lower() for name, row in cmdlets["cmdlets"].items() for name in (name, *row["aliases"])]
    assert len(command_names) == len(set(command_names))
    common = cmdlets["common_parameters"]["parameters"]
    for name, row in cmdlets["cmdlets"].items():
        names = [
            alias.lower()
            for pname, parameter in {**row["parameters"], **common}.items()
            for alias in (pname, *parameter["aliases"])
        ]
        assert len(names) == len(set(names)), name
    for table, section in (("com", "interfaces"), ("dotnet", "types"), ("cim", "classes")):
        rows = _table(table)[section]
        assert len({name.lower() for name in rows}) == len(rows)
        for name, row in rows.items():
            members = row.get("members", row.get("properties"))
            assert len({member.lower() for member in members}) == len(members), name
    extended = [(row["applies_to"].lower(), row["name"].lower()) for row in _table("extended")["members"]]
    assert len(extended) == len(set(extended))


def test_parameters_name_only_the_sets_of_their_cmdlet() -> None:
    for name, row in _table("cmdlets")["cmdlets"].items():
        assert row["parameter_sets"], name
        assert row["default_parameter_set"] in (None, *row["parameter_sets"]), name
        for pname, parameter in row["parameters"].items():
            assert parameter["sets"], f"{name} -{pname}"
            assert set(parameter["sets"]) <= set(row["parameter_sets"]), f"{name} -{pname}"
            assert parameter["switch"] == parameter["type"].endswith("SwitchParameter")


def test_every_base_type_and_interface_is_in_the_tables() -> None:
    types = _table("dotnet")
    every_type = {**types["types"], **types["undocumented_types"]}
    for name, row in every_type.items():
        assert row["base"] is None or row["base"] in every_type, name
    manifest = _table("manifest")
    assert set(manifest["dotnet"]["types"]) <= set(types["types"])
    com = _table("com")
    for name, row in com["interfaces"].items():
        assert row["base"] in (*com["interfaces"], "IDispatch"), name
    for progid, row in com["progids"].items():
        assert row["interface"] in com["interfaces"], progid


def test_only_what_windows_powershell_5_1_and_net_framework_4_8_have() -> None:
    # Start-Service has no -NoWait in any PowerShell version; Stop-Service has one.
    assert contracts.cmdlet("Start-Service").find_parameters("NoWait") == ()
    assert [p.name for p in contracts.cmdlet("Stop-Service").find_parameters("NoWait")] == ["NoWait"]
    # .NET Core added String.Contains(Char) and File.ReadAllTextAsync.
    contains = contracts.dotnet_member("System.String", "Contains")
    assert [[p.type for p in overload.parameters] for overload in contains.overloads] == [["System.String"]]
    assert contracts.dotnet_member("System.IO.File", "ReadAllTextAsync") is None
    assert contracts.dotnet_member("System.IO.File", "ReadAllText") is not None
    assert "ProgressAction" not in contracts.common_parameters()


# --- The loader -----------------------------------------------------------------------------


def test_parameters_resolve_by_name_alias_and_unambiguous_prefix() -> None:
    stop = contracts.cmdlet("stop-service")
    assert stop is contracts.cmdlet("spsv")
    assert [p.name for p in stop.find_parameters("name")] == ["Name"]
    assert [p.name for p in stop.find_parameters("ServiceName")] == ["Name"]
    assert [p.name for p in stop.find_parameters("EA")] == ["ErrorAction"]
    assert [p.name for p in stop.find_parameters("Fo")] == ["Force"]
    assert {p.name for p in stop.find_parameters("N")} == {"Name", "NoWait"}
    assert stop.find_parameters("Bogus") == ()
    name = stop.parameters["Name"]
    assert name.sets["Default"].position == 0 and name.sets["Default"].mandatory
    assert name.sets["Default"].pipeline == ("ByPropertyName", "ByValue")


def test_com_members_resolve_through_the_interfaces_they_derive_from() -> None:
    session = contracts.com_object("MICROSOFT.UPDATE.SESSION")
    assert session.interface == "IUpdateSession3"
    assert contracts.com_member(session.interface, "createupdatesearcher").type == "IUpdateSearcher*"
    assert contracts.com_member(session.interface, "CreateUpdateSeacher") is None
    register = contracts.com_member("ITaskFolder", "RegisterTaskDefinition")
    assert (register.min_arguments, register.max_arguments) == (6, 7)
    installer = contracts.com_member("IUpdateInstaller", "AllowSourcePrompts")
    assert installer.kind == "property" and installer.gettable and installer.settable
    assert not contracts.com_member("IUpdateInstaller", "RebootRequiredBeforeInstallation").settable
    assert contracts.com_interface("IActionCollection").index_base == 1
    assert contracts.com_enum("TASK_CREATION").values["TASK_CREATE_OR_UPDATE"] == 6


def test_dotnet_members_resolve_through_base_types() -> None:
    written = contracts.dotnet_member("System.IO.FileInfo", "lastwritetimeutc")
    assert written.overloads[0].gettable and written.overloads[0].settable
    protocol = contracts.dotnet_member("System.Net.ServicePointManager", "SecurityProtocol")
    assert protocol.overloads[0].static
    assert contracts.dotnet_member("System.IO.FileMode", "Append").overloads[0].value == 6
    wrapper = contracts.dotnet_type("System.Management.Automation.MethodInvocationException")
    assert not wrapper.documented and wrapper.url.startswith("https://learn.microsoft.com/")
    # A PowerShell exception inherits Exception's members from the documented types.
    assert contracts.dotnet_member(wrapper.full_name, "InnerException") is not None


def test_cim_classes_and_extended_members() -> None:
    service = contracts.cim_class("WIN32_SERVICE")
    assert service.superclass == "Win32_BaseService"
    assert service.properties["startmode"].cim_type == "string"
    assert {member.name for member in contracts.extended_members("scalar")} == {"Count", "Length"}
    assert [m.name for m in contracts.extended_members("System.IO.FileInfo")] == ["BaseName", "VersionInfo"]
    assert contracts.type_accelerator("REGEX") == "System.Text.RegularExpressions.Regex"
    assert contracts.type_accelerator("ordered") is None


def test_accelerator_table_parser() -> None:
    page = """| Accelerator name | Full type name |
| ---------------- | -------------- |
| int              | [System.Int32](xref:System.Int32) |
| regex            | [System.Text.RegularExpressions.Regex](xref:System.Text.RegularExpressions.Regex) |
"""
    assert generate.parse_accelerator_table(page) == {
        "int": "System.Int32",
        "regex": "System.Text.RegularExpressions.Regex",
    }
    with pytest.raises(generate.SourceError):
        generate.parse_accelerator_table("no table")


# --- The parsers, on pages written in the reference's formats ------------------------------

CMDLET_PAGE = """---
Module Name: Example.Module
aliases:
  - exm
title: Invoke-Example
---

# Invoke-Example

## SYNTAX

### ByName (Default)

```
Invoke-Example [-Name] <String> [-Quiet] [<CommonParameters>]
```

### ByItem - FileSystem provider

```
Invoke-Example -Item <Object> [-Quiet] [<CommonParameters>]
```

## PARAMETERS

### -Item

```yaml
Type: System.Object
Parameter Sets: ByItem
Aliases:

Required: True
Position: Named
Default value: None
Accept pipeline input: True (ByValue)
Accept wildcard characters: False
```

### -Name

```yaml
Type: System.String
Parameter Sets: ByName
Aliases: N, Id
Accepted values: One, Two

Required: True
Position: 0
Default value: None
Accept pipeline input: True (ByPropertyName, ByValue)
Accept wildcard characters: False
```

### -Quiet

> [!NOTE]
> This parameter is only available in the
> [FileSystem](about_FileSystem_Provider.md) provider.

```yaml
Type: System.Management.Automation.SwitchParameter
Parameter Sets: (All)
Aliases:

Required: True (ByItem), False (ByName)
Position: Named
Default value: False
Accept pipeline input: False
Accept wildcard characters: False
```

### CommonParameters

This cmdlet supports the common parameters.
"""


def test_cmdlet_page_parser() -> None:
    page = generate.parse_cmdlet_page(CMDLET_PAGE)
    assert page["name"] == "Invoke-Example" and page["module"] == "Example.Module"
    assert page["aliases"] == ["exm"]
    assert page["parameter_sets"] == ["ByName", "ByItem"] and page["default_parameter_set"] == "ByName"
    assert page["common_parameters"] is True
    name = page["parameters"]["Name"]
    assert name["aliases"] == ["N", "Id"] and name["accepted_values"] == ["One", "Two"]
    assert name["sets"] == {"ByName": {"mandatory": True, "position": 0, "pipeline": ["ByPropertyName", "ByValue"]}}
    quiet = page["parameters"]["Quiet"]
    assert quiet["switch"] and quiet["provider"] == "FileSystem"
    assert quiet["sets"]["ByItem"]["mandatory"] and not quiet["sets"]["ByName"]["mandatory"]
    assert page["parameters"]["Item"]["sets"]["ByItem"]["pipeline"] == ["ByValue"]
    assert set(page["parameters"]) == {"Item", "Name", "Quiet"}


def test_cmdlet_page_parser_refuses_a_set_the_syntax_lacks() -> None:
    with pytest.raises(generate.SourceError, match="ByPath"):
        generate.parse_cmdlet_page(CMDLET_PAGE.replace("Parameter Sets: ByItem", "Parameter Sets: ByPath"))


def test_single_set_pages_and_common_parameters_page() -> None:
    single = CMDLET_PAGE.replace("### ByName (Default)\n", "").replace("### ByItem - FileSystem provider\n", "")
    single = single.replace("Parameter Sets: ByItem", "Parameter Sets: (All)").replace(
        "Parameter Sets: ByName", "Parameter Sets: (All)"
    )
    single = single.replace("True (ByItem), False (ByName)", "False")
    page = generate.parse_cmdlet_page(single)
    assert page["parameter_sets"] == ["__AllParameterSets"] and page["default_parameter_set"] == "__AllParameterSets"
    common = generate.parse_common_parameters_page(single, ["Name"])
    assert common["Name"]["aliases"] == ["N", "Id"] and "sets" not in common["Name"]
    with pytest.raises(generate.SourceError):
        generate.parse_common_parameters_page(single, ["Verbose"])


MIDL_HEADER = """
typedef /* [public][v1_enum] */
enum tagExampleFlags
    {
        efNone	= 0,
        efFirst	= 0x1,
        efSecond	= 0x2,
        efBoth	= ( efFirst | efSecond ) ,
        efNext
    } 	ExampleFlags;

    MIDL_INTERFACE("00000000-0000-0000-0000-000000000001")
    IExample : public IDispatch
    {
    public:
        virtual /* [helpstring][propget][id] */ HRESULT STDMETHODCALLTYPE get_Item(
            /* [annotation][in] */
            _In_  LONG index,
            /* [annotation][retval][out] */
            _Out_retval_  IExample **retval) = 0;

        virtual /* [helpstring][propput][id] */ HRESULT STDMETHODCALLTYPE put_Title(
            /* [in] */ __RPC__in BSTR value) = 0;

        virtual /* [helpstring][id] */ HRESULT STDMETHODCALLTYPE Run(
            __RPC__in BSTR name,
            /* [optional][in] */ VARIANT argument,
            /* [retval][out] */ __RPC__deref_out_opt IExample2 **ppResult) = 0;

        virtual /* [id] */ HRESULT STDMETHODCALLTYPE Clear( void) = 0;
    };

    MIDL_INTERFACE("00000000-0000-0000-0000-000000000002")
    IExample2 : public IExample
    {
    public:
        virtual /* [propget][id] */ HRESULT STDMETHODCALLTYPE get_Title(
            /* [retval][out] */ __RPC__deref_out_opt BSTR *pTitle) = 0;
    };
"""


def test_midl_header_parser() -> None:
    header = generate.parse_midl_header(MIDL_HEADER)
    assert header["enums"]["ExampleFlags"] == {"efNone": 0, "efFirst": 1, "efSecond": 2, "efBoth": 3, "efNext": 4}
    example = header["interfaces"]["IExample"]
    assert example["base"] == "IDispatch"
    assert example["members"]["Item"] == {
        "kind": "property",
        "get": True,
        "set": False,
        "type": "IExample*",
        "parameters": [{"name": "index", "type": "LONG", "direction": "in", "optional": False}],
    }
    assert example["members"]["Title"]["set"] and not example["members"]["Title"]["get"]
    assert example["members"]["Run"] == {
        "kind": "method",
        "parameters": [
            {"name": "name", "type": "BSTR", "direction": "in", "optional": False},
            {"name": "argument", "type": "VARIANT", "direction": "in", "optional": True},
        ],
        "returns": "IExample2*",
    }
    assert example["members"]["Clear"] == {"kind": "method", "parameters": [], "returns": None}
    assert header["interfaces"]["IExample2"]["base"] == "IExample"
    assert header["interfaces"]["IExample2"]["members"]["Title"]["type"] == "BSTR"


def test_idl_coclass_parser() -> None:
    idl = """
    [ uuid(00000000-0000-0000-0000-000000000003) ]
    coclass Example
    {
        [default]   interface IExample2;
    };
    """
    assert generate.parse_idl_coclasses(idl) == {"Example": "IExample2"}


ECMA_TYPE = """<Type Name="Example" FullName="Sample.Example">
  <TypeSignature Language="C#" Value="public sealed class Example : Sample.Base" />
  <TypeSignature Language="ILAsm" Value=".class public auto ansi sealed Example extends Sample.Base" />
  <AssemblyInfo><AssemblyName>mscorlib</AssemblyName><AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>
  <Base><BaseTypeName>System.Object</BaseTypeName></Base>
  <Interfaces><Interface><InterfaceName>System.IDisposable</InterfaceName></Interface></Interfaces>
  <Members>
    <Member MemberName="Find">
      <MemberSignature Language="C#" Value="public static string Find (string name, params object[] rest);" />
      <MemberType>Method</MemberType>
      <AssemblyInfo><AssemblyName>mscorlib</AssemblyName><AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>
      <ReturnValue><ReturnType>System.String</ReturnType></ReturnValue>
      <Parameters>
        <Parameter Name="name" Type="System.String" />
        <Parameter Name="rest" Type="System.Object[]" />
      </Parameters>
    </Member>
    <Member MemberName="Find">
      <MemberSignature Language="C#" Value="public string Find (char name);" />
      <MemberType>Method</MemberType>
      <AssemblyInfo><AssemblyName>System.Runtime</AssemblyName><AssemblyVersion>4.2.1.0</AssemblyVersion></AssemblyInfo>
      <AssemblyInfo><AssemblyName>mscorlib</AssemblyName></AssemblyInfo>
      <ReturnValue><ReturnType>System.String</ReturnType></ReturnValue>
      <Parameters><Parameter Name="name" Type="System.Char" FrameworkAlternate="netcore-3.0" /></Parameters>
    </Member>
    <Member MemberName="Size">
      <MemberSignature Language="C#" Value="public long Size { get; protected set; }" />
      <MemberType>Property</MemberType>
      <AssemblyInfo><AssemblyName>mscorlib</AssemblyName><AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>
      <ReturnValue><ReturnType>System.Int64</ReturnType></ReturnValue>
    </Member>
    <Member MemberName="Reset">
      <MemberSignature Language="C#" Value="protected void Reset ();" />
      <MemberType>Method</MemberType>
      <AssemblyInfo><AssemblyName>mscorlib</AssemblyName><AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>
      <ReturnValue><ReturnType>System.Void</ReturnType></ReturnValue>
    </Member>
    <Member MemberName="System.IDisposable.Dispose">
      <MemberSignature Language="C#" Value="void IDisposable.Dispose ();" />
      <MemberType>Method</MemberType>
      <AssemblyInfo><AssemblyName>mscorlib</AssemblyName><AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>
      <ReturnValue><ReturnType>System.Void</ReturnType></ReturnValue>
    </Member>
    <Member MemberName="Largest">
      <MemberSignature Language="C#" Value="Largest" />
      <MemberSignature Language="ILAsm" Value=".field public static literal valuetype Sample.Example Largest = int32(7)" />
      <MemberType>Field</MemberType>
      <AssemblyInfo><AssemblyName>mscorlib</AssemblyName><AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>
      <ReturnValue><ReturnType>Sample.Example</ReturnType></ReturnValue>
      <MemberValue>7</MemberValue>
    </Member>
  </Members>
</Type>
"""

FRAMEWORK = generate.Framework(frozenset({"mscorlib", "System"}), "4.0.0.0", "netframework-4.8")


def test_ecma_type_parser_keeps_what_the_framework_has() -> None:
    example = generate.parse_ecma_type(ECMA_TYPE, FRAMEWORK)
    assert example["kind"] == "class" and example["base"] == "Sample.Base"
    assert example["interfaces"] == ["System.IDisposable"]
    assert set(example["members"]) == {"Find", "Size", "Largest"}
    assert example["members"]["Find"]["overloads"] == [
        {
            "static": True,
            "parameters": [{"name": "name", "type": "System.String"}, {"name": "rest", "type": "System.Object[]"}],
            "params_array": True,
            "returns": "System.String",
        }
    ]
    size = example["members"]["Size"]["overloads"][0]
    assert size["get"] and not size["set"] and size["type"] == "System.Int64"
    largest = example["members"]["Largest"]["overloads"][0]
    assert largest["static"] and largest["const"] and largest["value"] == 7
    core_only = ECMA_TYPE.replace(
        "<AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>\n  <Base>", "</AssemblyInfo>\n  <Base>"
    )
    assert generate.parse_ecma_type(core_only, FRAMEWORK) is None


ECMA_ENUM = """<Type Name="Access" FullName="Sample.Access">
  <TypeSignature Language="C#" Value="public enum Access" />
  <AssemblyInfo><AssemblyName>mscorlib</AssemblyName><AssemblyVersion>4.0.0.0</AssemblyVersion></AssemblyInfo>
  <Base><BaseTypeName>System.Enum</BaseTypeName></Base>
  <Attributes>
    <Attribute FrameworkAlternate="netcore-3.0;netframework-4.8"><AttributeName>System.Flags</AttributeName></Attribute>
  </Attributes>
  <Members />
</Type>
"""


def test_ecma_enum_flags_are_those_of_the_framework() -> None:
    assert generate.parse_ecma_type(ECMA_ENUM, FRAMEWORK)["flags"] is True
    assert generate.parse_ecma_type(ECMA_ENUM.replace("netframework-4.8", "netcore-3.1"), FRAMEWORK)["flags"] is False
    assert "flags" not in generate.parse_ecma_type(ECMA_TYPE, FRAMEWORK)


def test_ecma_path() -> None:
    assert generate.ecma_path("System.Collections.Generic.List`1") == "xml/System.Collections.Generic/List`1.xml"
    assert (
        generate.ecma_path("System.Collections.Generic.Dictionary<TKey,TValue>")
        == "xml/System.Collections.Generic/Dictionary`2.xml"
    )
    assert generate.ecma_path("System.IO.File") == "xml/System.IO/File.xml"


def test_mof_class_parser() -> None:
    page = """# Example class

``` syntax
[Dynamic, Provider("CIMWin32")]
class Example_Thing : Example_Base
{
  string   Name;
  uint64   Size;
  string   Languages[];
};
```
"""
    parsed = generate.parse_mof_class(page)
    assert parsed == {
        "name": "Example_Thing",
        "superclass": "Example_Base",
        "properties": {
            "Name": {"type": "string", "array": False},
            "Size": {"type": "uint64", "array": False},
            "Languages": {"type": "string", "array": True},
        },
    }
    with pytest.raises(generate.SourceError):
        generate.parse_mof_class("no syntax block")


def test_render_is_stable() -> None:
    table = {"b": [2, 1], "a": {"é": None}}
    assert generate.render(table) == '{\n  "a": {\n    "é": null\n  },\n  "b": [\n    2,\n    1\n  ]\n}\n'
    assert generate.render(table) == generate.render(json.loads(generate.render(table)))


# --- The committed tables are what the generator writes ----------------------------------


def _reference_repositories() -> list[str]:
    value = os.environ.get("WUACACHE_CONTRACT_SOURCES", "")
    return [f"--repo={item.strip()}" for item in value.split(";") if item.strip()]


@pytest.mark.skipif(
    not _reference_repositories(),
    reason="WUACACHE_CONTRACT_SOURCES names no git directories of the reference repositories (NAME=DIR;...)",
)
def test_generator_writes_the_committed_tables(tmp_path: Path) -> None:
    for name in ("manifest", "sources"):
        (tmp_path / f"{name}.json").write_text(
            TABLES.joinpath(f"{name}.json").read_text(encoding="utf-8"), encoding="utf-8"
        )
    for name in generate.TABLE_NAMES:
        (tmp_path / f"{name}.json").write_text(
            TABLES.joinpath(f"{name}.json").read_text(encoding="utf-8"), encoding="utf-8"
        )
    assert generate.main([*_reference_repositories(), "--check", "--tables", str(tmp_path)]) == 0
    # A table edited by hand is out of date.
    (tmp_path / "cim.json").write_text("{}\n", encoding="utf-8")
    assert generate.main([*_reference_repositories(), "--check", "--tables", str(tmp_path)]) == 1
