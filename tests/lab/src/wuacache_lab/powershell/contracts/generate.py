"""Regenerates the contract tables from pinned commits of Microsoft's reference repositories.

    python -m wuacache_lab.powershell.contracts.generate \\
        --repo MicrosoftDocs/PowerShell-Docs=<git dir> --repo ... [--check]

``manifest.json`` says what to extract and ``sources.json`` pins the commit of each
repository. Every source file is read with ``git --git-dir <dir> show <commit>:<path>``,
so any clone or mirror that holds the pinned commit will do. The tables are written
with sorted keys, a fixed indentation and a final newline, and carry no timestamps:
the same commits give the same bytes. ``--check`` writes nothing and exits with 1
when a committed table differs from what would be written.

One parsing function per source format, each a pure function of the text:

- :func:`parse_cmdlet_page`: a cmdlet page of the PowerShell reference (platyPS
  markdown), also used for ``about_CommonParameters``;
- :func:`parse_midl_header`: a header that MIDL generated from an IDL file
  (``wuapi.h``, ``taskschd.h``);
- :func:`parse_idl_coclasses`: the ``coclass`` blocks of an IDL file;
- :func:`parse_ecma_type`: one type of the .NET API reference (ECMA XML);
- :func:`parse_mof_class`: the syntax block of a WMI class page;
- :func:`parse_accelerator_table`: the table of ``about_Type_Accelerators``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLES_DIR = Path(__file__).resolve().parent
TABLE_NAMES = ("cmdlets", "com", "dotnet", "cim", "extended")

# Values of the platyPS "Parameter Sets" field that stand for every set of the cmdlet.
ALL_SETS = "(All)"
# The name PowerShell gives the only parameter set of a cmdlet that declares none.
ALL_PARAMETER_SETS = "__AllParameterSets"

Table = dict[str, Any]


class SourceError(Exception):
    """A source file is missing or is not in the format its parser expects."""


# --- Source access -------------------------------------------------------------------


@dataclass(frozen=True)
class Repository:
    """One pinned repository: its name, the commit read and a git directory that holds it."""

    name: str
    commit: str
    git_dir: Path | None

    def read(self, path: str) -> str:
        if self.git_dir is None:
            raise SourceError(f"{self.name} is not read by the generator, yet {path} was asked of it")
        completed = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "show", f"{self.commit}:{path}"],
            capture_output=True,
            check=False,
        )
        if completed.returncode != 0:
            raise SourceError(f"{self.name}@{self.commit}:{path}: {completed.stderr.decode(errors='replace').strip()}")
        return completed.stdout.decode("utf-8-sig").replace("\r\n", "\n")

    def commit_date(self) -> str:
        """The committer date of the pinned commit (ISO 8601), as ``sources.json`` records it."""
        completed = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "show", "-s", "--format=%cI", self.commit],
            capture_output=True,
            check=True,
            text=True,
        )
        return completed.stdout.strip()

    def cite(self, path: str) -> dict[str, str]:
        return {"repo": self.name, "commit": self.commit, "path": path}


class Sources:
    """The pinned repositories of ``sources.json``, reached through the git directories given."""

    def __init__(self, pins: Mapping[str, Any], git_dirs: Mapping[str, Path]) -> None:
        unknown = set(git_dirs) - set(pins["repositories"])
        if unknown:
            raise SourceError(f"not pinned in sources.json: {', '.join(sorted(unknown))}")
        self.repositories: dict[str, Repository] = {}
        for name, pin in pins["repositories"].items():
            if name not in git_dirs:
                raise SourceError(f"no --repo given for {name}")
            repository = Repository(name, pin["commit"], git_dirs[name])
            if repository.commit_date() != pin["date"]:
                raise SourceError(f"{name}@{pin['commit']} is dated {repository.commit_date()}, not {pin['date']}")
            self.repositories[name] = repository
        # Pages read elsewhere and cited as they were read, each at its own commit.
        self.cited_only: dict[str, dict[str, str]] = {
            name: dict(files) for name, files in pins.get("cited_only", {}).items()
        }

    def __getitem__(self, name: str) -> Repository:
        return self.repositories[name]

    def parse(self, repo: str, path: str, parser: Callable[..., Any], *arguments: Any) -> Any:
        """What ``parser`` makes of a file, with the file named in any error."""
        try:
            return parser(self[repo].read(path), *arguments)
        except (SourceError, KeyError, ValueError, ET.ParseError) as error:
            raise SourceError(f"{repo}:{path}: {error!r}") from error

    def cite(self, repo: str, path: str) -> dict[str, str]:
        """The citation of a file: read and checked when its repository is pinned, else as recorded."""
        if repo in self.repositories:
            return self.repositories[repo].cite(path)
        try:
            return {"repo": repo, "commit": self.cited_only[repo][path], "path": path}
        except KeyError:
            raise SourceError(f"{repo}:{path} is neither in a pinned repository nor recorded as cited") from None


# --- Cmdlet pages (platyPS markdown) -------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\n(?P<body>.*?)\n---\n", re.DOTALL)
_SECTION = re.compile(r"^## (?P<title>.+?)\s*$", re.MULTILINE)
_SUBSECTION = re.compile(r"^### (?P<title>.+?)\s*$", re.MULTILINE)
_FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_PROVIDER_NOTE = re.compile(
    r"only available in the\s*>?\s*\[(?P<linked>\w+)\]"
    r"|dynamic parameter (?:made available by|that) the\s+\**(?P<named>\w+)\**\s+provider"
)


def _sections(text: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(title, body) of each heading matched by ``pattern``, in page order."""
    matches = list(pattern.finditer(text))
    return [
        (match["title"], text[match.end() : matches[index + 1].start() if index + 1 < len(matches) else len(text)])
        for index, match in enumerate(matches)
    ]


def _front_matter(text: str) -> dict[str, Any]:
    """The keys of a page's YAML front matter that the tables use: scalars and lists of scalars."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}
    fields: dict[str, Any] = {}
    key = None
    for line in match["body"].splitlines():
        item = re.match(r"^\s+-\s+(?P<value>.+)$", line)
        if item and key is not None:
            if not isinstance(fields[key], list):
                fields[key] = []
            fields[key].append(item["value"].strip())
            continue
        field = re.match(r"^(?P<key>[A-Za-z][\w .-]*):\s*(?P<value>.*)$", line)
        if field:
            key = field["key"]
            fields[key] = field["value"].strip()
    return fields


def _yaml_fields(block: str) -> dict[str, str]:
    """The ``Key: value`` lines of a parameter's YAML block."""
    fields = {}
    for line in block.splitlines():
        field = re.match(r"^(?P<key>[A-Za-z][A-Za-z ]*):\s*(?P<value>.*)$", line)
        if field:
            fields[field["key"]] = field["value"].strip()
    return fields


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip() and item.strip() != "None"]


def _position(value: str) -> int | None:
    if value == "Named":
        return None
    if value.isdigit():
        return int(value)
    raise SourceError(f"position {value!r} is neither Named nor a number")


def _required(value: str) -> bool:
    # One page of the pinned commit says "False False".
    if len(set(value.split())) == 1:
        value = value.split()[0]
    if value not in ("True", "False"):
        raise SourceError(f"Required {value!r} is neither True nor False")
    return value == "True"


def _pipeline(value: str) -> list[str]:
    """``True (ByPropertyName, ByValue)`` -> ``["ByPropertyName", "ByValue"]``; ``False`` -> ``[]``."""
    match = re.match(r"^True \((?P<kinds>[^)]*)\)", value)
    if match:
        return sorted(_split_list(match["kinds"]))
    if value.startswith("False"):
        return []
    # Another spelling, on one page of the pinned commit: "ByValue (False), ByName (False)".
    pairs = re.findall(r"(ByValue|ByName|ByPropertyName) \((True|False)\)", value)
    if pairs:
        return sorted("ByPropertyName" if kind == "ByName" else kind for kind, accepted in pairs if accepted == "True")
    raise SourceError(f"pipeline input {value!r} is not understood")


def _by_set(value: str, sets: Sequence[str]) -> dict[str, str]:
    """A field's value for each set: ``True (pathSet), False (nameSet)`` gives each set its
    own; a plain value holds for every set."""
    parts = re.findall(r"(\w+) \(([^)]*)\)", value)
    if not parts:
        return dict.fromkeys(sets, value)
    by_set = {set_name: field for field, names in parts for set_name in _split_list(names)}
    if set(by_set) != set(sets):
        raise SourceError(f"{value!r} does not name exactly the sets {', '.join(sets)}")
    return by_set


def _set_name(text: str) -> str:
    """A parameter set's name without the qualifiers some pages add: ``InputObject (cdxml)``."""
    return re.sub(r"(?: \(\w+\))+$", "", text)


def _parameter(name: str, body: str, all_sets: Sequence[str]) -> dict[str, Any]:
    """One ``### -Name`` section: its YAML blocks, one per group of parameter sets that bind it alike."""
    blocks = [fence["body"] for fence in _FENCE.finditer(body) if fence["info"].strip() == "yaml"]
    if not blocks:
        raise SourceError(f"parameter -{name} has no yaml block")
    provider = _PROVIDER_NOTE.search(body)
    parameter: dict[str, Any] = {
        "aliases": [],
        "accepted_values": [],
        "provider": (provider["linked"] or provider["named"]) if provider else None,
        "sets": {},
    }
    for block in blocks:
        fields = _yaml_fields(block)
        parameter["type"] = fields["Type"]
        parameter["switch"] = fields["Type"].endswith("SwitchParameter")
        parameter["aliases"] = _split_list(fields.get("Aliases", ""))
        parameter["accepted_values"] = _split_list(fields.get("Accepted values", ""))
        named_sets = _split_list(fields.get("Parameter Sets", ALL_SETS))
        block_sets = list(all_sets) if named_sets == [ALL_SETS] else [_set_name(set_name) for set_name in named_sets]
        unknown = set(block_sets) - set(all_sets)
        if unknown:
            raise SourceError(f"-{name} names parameter sets the syntax does not have: {', '.join(sorted(unknown))}")
        required = _by_set(fields["Required"], block_sets)
        position = _by_set(fields["Position"], block_sets)
        for set_name in block_sets:
            parameter["sets"][set_name] = {
                "mandatory": _required(required[set_name]),
                "position": _position(position[set_name]),
                "pipeline": _pipeline(fields.get("Accept pipeline input", "False")),
            }
    return parameter


_LATER_POWERSHELL = re.compile(r"(?<!re)introduced in PowerShell [6-9]")


def parse_cmdlet_page(text: str) -> dict[str, Any]:
    """A cmdlet page in platyPS markdown, as ``reference/5.1/<Module>/<Cmdlet>.md`` has it.

    Expected: front matter with ``title`` (the cmdlet), ``Module Name`` and optionally
    ``aliases``; ``## SYNTAX`` with one fenced block per parameter set, each under a
    ``### SetName`` heading (``### SetName (Default)`` for the default set, with
    `` - Provider provider`` after it when the syntax differs by provider; no heading
    when the cmdlet has a single set); ``## PARAMETERS`` with one ``### -Name`` section
    per parameter holding a YAML block (``Type``, ``Parameter Sets``, ``Aliases``,
    ``Accepted values``, ``Required``, ``Position``, ``Accept pipeline input``; ``Required``
    and ``Position`` may give one value per set, ``True (SetA), False (SetB)``), or
    several when the parameter binds differently in different sets, and, for a
    provider's dynamic parameter, a note that it is "only available in the
    [Provider]" provider, or "a dynamic parameter made available by the **Provider**
    provider" or "that the Provider provider adds".
    """
    front = _front_matter(text)
    sections = dict(_sections(text, _SECTION))
    if "SYNTAX" not in sections or "PARAMETERS" not in sections:
        raise SourceError("a cmdlet page needs SYNTAX and PARAMETERS sections")
    syntax = _sections(sections["SYNTAX"], _SUBSECTION)
    sets: list[str] = []
    default_set = None
    for title, _body in syntax:
        # Pages whose syntax differs by provider repeat each set: "Path (Default) - FileSystem provider".
        # Pages of CDXML modules qualify set names too: "InputObject (cdxml)".
        match = re.match(r"^(?P<name>\S+)(?P<notes>(?: \(\w+\))*)(?: - [\w ]+ providers?)?$", title)
        if not match:
            raise SourceError(f"parameter set heading {title!r} is not understood")
        if match["name"] not in sets:
            sets.append(match["name"])
        if "(Default)" in match["notes"]:
            default_set = match["name"]
    if not sets:
        sets = [ALL_PARAMETER_SETS]
        default_set = ALL_PARAMETER_SETS
    parameters = {}
    for title, body in _sections(sections["PARAMETERS"], _SUBSECTION):
        # A few 5.1 pages document a parameter of a later PowerShell ("This parameter was
        # introduced in PowerShell 6.0."): Windows PowerShell 5.1 does not have it.
        if title.startswith("-") and not _LATER_POWERSHELL.search(body):
            parameters[title[1:]] = _parameter(title[1:], body, sets)
    aliases = front.get("aliases", [])
    return {
        "name": front["title"],
        "module": front["Module Name"],
        "aliases": aliases if isinstance(aliases, list) else [],
        "parameter_sets": sets,
        "default_parameter_set": default_set,
        "common_parameters": "[<CommonParameters>]" in sections["SYNTAX"],
        "parameters": parameters,
    }


def parse_common_parameters_page(text: str, names: Iterable[str]) -> dict[str, Any]:
    """The ``### -Name`` sections of ``about_CommonParameters``, in the cmdlet page format, for ``names``."""
    sections = dict(_sections(text, _SUBSECTION))
    parameters = {}
    for name in names:
        body = sections.get(f"-{name}")
        if body is None:
            raise SourceError(f"about_CommonParameters has no -{name} section")
        parameter = _parameter(name, body, [ALL_PARAMETER_SETS])
        del parameter["sets"], parameter["provider"]
        parameters[name] = parameter
    return parameters


# --- COM: MIDL-generated headers and IDL ---------------------------------------------------

_MIDL_INTERFACE = re.compile(
    r'MIDL_INTERFACE\("[0-9A-Fa-f-]+"\)\s*\n\s*(?P<name>\w+)\s*:\s*public\s+(?P<base>\w+)\s*\{\s*public:(?P<body>.*?)\n\s*\};',
    re.DOTALL,
)
_MIDL_METHOD = re.compile(
    r"virtual\s*/\*\s*(?P<attributes>[^*]*)\*/\s*HRESULT\s+STDMETHODCALLTYPE\s+(?P<name>\w+)\(\s*(?P<parameters>.*?)\)\s*=\s*0;",
    re.DOTALL,
)
_MIDL_ENUM = re.compile(r"typedef\s*(?:/\*[^*]*\*/\s*)?enum\s+\w+\s*\{(?P<body>[^}]*)\}\s*(?P<name>\w+);")
_COMMENT_ATTRIBUTES = re.compile(r"/\*\s*(?P<attributes>[^*]*?)\s*\*/")
# Tokens of a parameter that are neither its type nor its name: SAL and RPC annotations.
_ANNOTATION = re.compile(r"\b(?:__RPC__\w+|_[A-Z]\w*?_(?=[\s(]))(?:\([^)]*\))?")
_PROPERTY_PREFIXES = {"propget": "get_", "propput": "put_", "propputref": "putref_"}


def _split_top_level(text: str) -> list[str]:
    """Splits at the commas that are outside parentheses."""
    parts, depth, current = [], 0, []
    for character in text:
        if character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
        if character == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _midl_parameter(text: str) -> dict[str, Any]:
    attributes: set[str] = set()
    for comment in _COMMENT_ATTRIBUTES.finditer(text):
        attributes.update(re.findall(r"\[(\w+)", comment["attributes"]))
    declaration = _ANNOTATION.sub(" ", _COMMENT_ATTRIBUTES.sub(" ", text))
    match = re.match(r"^\s*(?P<type>.*?[\w*])\s*(?P<name>\w+)\s*$", declaration, re.DOTALL)
    if not match:
        raise SourceError(f"parameter {text!r} is not understood")
    direction = "in"
    if "out" in attributes:
        direction = "retval" if "retval" in attributes else ("inout" if "in" in attributes else "out")
    return {
        "name": match["name"],
        "type": re.sub(r"\s+", " ", match["type"]).replace(" *", "*").strip(),
        "direction": direction,
        "optional": "optional" in attributes or "defaultvalue" in attributes,
    }


def _arguments_and_result(parameters: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """What a scripting caller passes (everything but the [out, retval]), and the type it gets back."""
    result = None
    arguments = []
    for parameter in parameters:
        if parameter["direction"] == "retval":
            result = parameter["type"].removesuffix("*")
        else:
            arguments.append({key: parameter[key] for key in ("name", "type", "direction", "optional")})
    return arguments, result


def _enum_value(expression: str, earlier: Mapping[str, int]) -> int:
    """An enumerator's value: a number, an earlier enumerator, or several of them or-ed
    together; without one, the previous value plus one."""
    if not expression.strip():
        return list(earlier.values())[-1] + 1 if earlier else 0
    value = 0
    for term in expression.strip().strip("()").split("|"):
        term = term.strip()
        value |= earlier[term] if term in earlier else int(term, 0)
    return value


def parse_midl_header(text: str) -> dict[str, Any]:
    """The dual interfaces and enums of a C/C++ header that MIDL generated from an IDL file.

    Expected: each interface as ``MIDL_INTERFACE("<iid>") IName : public IBase { public:
    virtual /* [attributes] */ HRESULT STDMETHODCALLTYPE Member( /* [in] */ TYPE name, ...)
    = 0; ... };``, properties as ``get_``/``put_``/``putref_`` members with ``propget``/
    ``propput``/``propputref`` among their attributes; each enum as ``typedef enum tag {
    NAME = value, ... } Name;``. A parameter's direction is in its ``/* [in] */``,
    ``/* [retval][out] */``, ``/* [optional][in] */`` comment; MIDL writes no comment
    for a plain ``[in]``.
    """
    interfaces: dict[str, Any] = {}
    for match in _MIDL_INTERFACE.finditer(text):
        members: dict[str, Any] = {}
        for method in _MIDL_METHOD.finditer(match["body"]):
            attributes = set(re.findall(r"\[(\w+)", method["attributes"]))
            raw = method["parameters"].strip()
            parameters = [] if raw == "void" else [_midl_parameter(part) for part in _split_top_level(raw)]
            arguments, result = _arguments_and_result(parameters)
            accessor = next((kind for kind in _PROPERTY_PREFIXES if kind in attributes), None)
            if accessor is None:
                members[method["name"]] = {"kind": "method", "parameters": arguments, "returns": result}
                continue
            name = method["name"].removeprefix(_PROPERTY_PREFIXES[accessor])
            prop = members.setdefault(name, {"kind": "property", "get": False, "set": False, "type": None})
            if accessor == "propget":
                prop["get"] = True
                prop["type"] = result
                # An indexed property (Item) takes its index as arguments.
                prop["parameters"] = arguments
            else:
                prop["set"] = True
                prop["type"] = prop["type"] or arguments[-1]["type"]
                prop.setdefault("parameters", arguments[:-1])
        interfaces[match["name"]] = {"base": match["base"], "members": members}
    enums = {}
    for match in _MIDL_ENUM.finditer(text):
        values: dict[str, int] = {}
        for entry in _split_top_level(match["body"]):
            name, _, value = entry.partition("=")
            values[name.strip()] = _enum_value(value, values)
        enums[match["name"]] = values
    return {"interfaces": interfaces, "enums": enums}


def parse_idl_coclasses(text: str) -> dict[str, str]:
    """``coclass Name { [default] interface IName; ... };`` blocks of an IDL file: coclass -> default interface."""
    return {
        match["coclass"]: match["interface"]
        for match in re.finditer(
            r"coclass\s+(?P<coclass>\w+)\s*\{[^}]*?\[default\]\s*interface\s+(?P<interface>\w+)\s*;", text
        )
    }


# --- .NET: ECMA XML of the API reference ----------------------------------------------------


@dataclass(frozen=True)
class Framework:
    """The assemblies of a .NET Framework release, as the API reference names them in ``AssemblyInfo``."""

    assemblies: frozenset[str]
    version: str
    # The framework's name in the reference's FrameworkAlternate lists: netframework-4.8.
    moniker: str

    def has(self, element: ET.Element) -> bool:
        """Whether an element's ``AssemblyInfo`` lists one of these assemblies at this version."""
        return any(
            info.findtext("AssemblyName") in self.assemblies
            and self.version in [version.text for version in info.findall("AssemblyVersion")]
            for info in element.findall("AssemblyInfo")
        )

    def applies(self, element: ET.Element) -> bool:
        """Whether an element holds for this framework: it names no frameworks, or names it."""
        alternates = element.get("FrameworkAlternate")
        return alternates is None or self.moniker in alternates.split(";")


def _signature(element: ET.Element, language: str, framework: Framework) -> str:
    """The element's signature in a language, the framework's own when it has one."""
    candidates = [
        signature
        for signature in element.findall("TypeSignature") + element.findall("MemberSignature")
        if signature.get("Language") == language and framework.applies(signature)
    ]
    candidates.sort(key=lambda signature: "FrameworkAlternate" not in signature.attrib)
    return candidates[0].get("Value", "") if candidates else ""


def _base_type(root: ET.Element, framework: Framework) -> str | None:
    """The base type, from the ILAsm signature (``extends <type>``): the ``Base`` element of
    some types names another framework's base without saying so."""
    extends = re.search(r"\bextends\s+(?:class\s+)?(?P<base>[\w.`]+)", _signature(root, "ILAsm", framework))
    return extends["base"] if extends else None


def _type_kind(signature: str) -> str:
    for kind in ("interface", "struct", "enum", "delegate", "class"):
        if re.search(rf"\b{kind}\b", signature):
            return kind
    raise SourceError(f"type signature {signature!r} is not understood")


def _member_overload(member: ET.Element, kind: str, csharp: str, framework: Framework) -> dict[str, Any]:
    # An enum's members have a bare C# signature; the ILAsm one says "static literal" of every field.
    ilasm = _signature(member, "ILAsm", framework)
    static = re.search(r"\b(?:static|const)\b", csharp.split("(")[0]) or (kind == "Field" and " static " in ilasm)
    overload: dict[str, Any] = {"static": bool(static)}
    # The member's signature (its DocId) fixes how many parameters it has: FrameworkAlternate only
    # picks, for each index, the element that holds for a framework, and some elements name
    # another framework alone by mistake (WebRequest.Create's, "xamarinmac-3.0").
    by_index: dict[str, ET.Element] = {}
    for position, parameter in enumerate(member.findall("Parameters/Parameter")):
        index = parameter.get("Index", str(position))
        chosen = by_index.get(index)
        if chosen is None or (framework.applies(parameter) and not framework.applies(chosen)):
            by_index[index] = parameter
    parameters = []
    for parameter in by_index.values():
        entry = {"name": parameter.get("Name"), "type": parameter.get("Type")}
        if parameter.get("RefType"):
            entry["ref"] = parameter.get("RefType")
        parameters.append(entry)
    if kind in ("Method", "Constructor", "Property"):
        overload["parameters"] = parameters
        if "params " in csharp:
            overload["params_array"] = True
    return_type = member.findtext("ReturnValue/ReturnType")
    if kind == "Method":
        overload["returns"] = return_type
    elif kind == "Property":
        accessors = csharp[csharp.rfind("{") :]
        overload["type"] = return_type
        overload["get"] = bool(re.search(r"(?<!private )(?<!protected )(?<!internal )\bget;", accessors))
        overload["set"] = bool(re.search(r"(?<!private )(?<!protected )(?<!internal )\bset;", accessors))
    elif kind in ("Field", "Event"):
        overload["type"] = return_type
        if kind == "Field":
            overload["const"] = bool(re.search(r"\bconst\b", csharp) or " literal " in ilasm)
            value = member.findtext("MemberValue")
            if value is not None:
                overload["value"] = int(value) if re.fullmatch(r"-?\d+", value) else value
    return overload


def parse_ecma_type(text: str, framework: Framework) -> dict[str, Any] | None:
    """One type of the .NET API reference (``xml/<Namespace>/<Type>.xml``), as ``framework`` has it.

    Expected: ``<Type FullName=...>`` with ``TypeSignature`` elements (the C# one gives
    the kind, the ILAsm one the base type), ``AssemblyInfo`` elements (``AssemblyName``
    and the ``AssemblyVersion`` values it ships as), ``Interfaces/Interface/InterfaceName``
    and ``Members/Member`` elements with ``MemberType``, ``MemberSignature`` (C#),
    ``AssemblyInfo``, ``ReturnValue/ReturnType``, ``Parameters/Parameter`` (``Name``,
    ``Type``, ``RefType``) and, for fields, ``MemberValue``. Signatures and parameters
    may carry a ``FrameworkAlternate`` list of the frameworks they hold for. A type or
    member is kept when its ``AssemblyInfo`` lists one of the framework's assemblies at
    its version; protected members and explicit interface implementations are left
    out. None when the framework lacks the type.
    """
    root = ET.fromstring(text)
    if not framework.has(root):
        return None
    members: dict[str, Any] = {}
    for member in root.findall("Members/Member"):
        csharp = _signature(member, "C#", framework)
        # Protected members, and explicit implementations of an interface (named after it).
        hidden = re.match(r"(?:protected|private|internal)\b", csharp) or "." in member.get("MemberName", "").lstrip(
            "."
        )
        if hidden or not framework.has(member):
            continue
        kind = member.findtext("MemberType") or ""
        entry = members.setdefault(member.get("MemberName"), {"kind": kind.lower(), "overloads": []})
        entry["overloads"].append(_member_overload(member, kind, csharp, framework))
    for entry in members.values():
        entry["overloads"].sort(key=lambda overload: json.dumps(overload, sort_keys=True))
    kind = _type_kind(_signature(root, "C#", framework))
    parsed = {
        "kind": kind,
        "base": _base_type(root, framework),
        "interfaces": sorted(name.text for name in root.findall("Interfaces/Interface/InterfaceName") if name.text),
        "members": members,
    }
    if kind == "enum":
        # [Flags]: a value may combine fields ("ReadOnly, Hidden").
        parsed["flags"] = any(
            attribute.findtext("AttributeName") == "System.Flags" and framework.applies(attribute)
            for attribute in root.findall("Attributes/Attribute")
        )
    return parsed


def ecma_path(full_name: str) -> str:
    """Where the API reference keeps a type: ``System.Collections.Generic.List`1`` -> ``xml/System.Collections.Generic/List`1.xml``."""
    generic = re.match(r"^(?P<name>[^<]+)<(?P<arguments>.+)>$", full_name)
    if generic:
        full_name = (
            f"{generic['name']}`{len(_split_top_level(generic['arguments'].replace('<', '(').replace('>', ')')))}"
        )
    namespace, _, name = full_name.rpartition(".")
    return f"xml/{namespace}/{name}.xml"


# --- CIM: the MOF syntax block of a WMI class page -------------------------------------------

_MOF_CLASS = re.compile(
    r"^class\s+(?P<name>\w+)(?:\s*:\s*(?P<superclass>\w+))?\s*\{(?P<body>.*?)^\};", re.MULTILINE | re.DOTALL
)
_MOF_PROPERTY = re.compile(r"^\s*(?P<type>\w+)\s+(?P<name>\w+)(?P<array>\[\])?\s*;", re.MULTILINE)


def parse_mof_class(text: str) -> dict[str, Any]:
    """The class of a WMI class page: the fenced ``syntax`` block holding a simplified MOF
    declaration, ``class Name : Superclass { type Name; type Name[]; ... };``, with its
    inherited properties."""
    for fence in _FENCE.finditer(text):
        if fence["info"].strip() != "syntax":
            continue
        match = _MOF_CLASS.search(fence["body"])
        if match:
            return {
                "name": match["name"],
                "superclass": match["superclass"],
                "properties": {
                    prop["name"]: {"type": prop["type"], "array": bool(prop["array"])}
                    for prop in _MOF_PROPERTY.finditer(match["body"])
                },
            }
    raise SourceError("no class declaration in a syntax block")


# --- Type accelerators: the table of about_Type_Accelerators ---------------------------------

_ACCELERATOR_ROW = re.compile(r"^\|\s*(?P<name>\w+)\s*\|\s*\[(?P<type>[\w.`]+)\]", re.MULTILINE)


def parse_accelerator_table(text: str) -> dict[str, str]:
    """The rows ``| name | [Full.Type.Name](xref:...) |`` of the page's accelerator table."""
    accelerators = {match["name"]: match["type"] for match in _ACCELERATOR_ROW.finditer(text)}
    if not accelerators:
        raise SourceError("no accelerator table")
    return accelerators


# --- Tables ------------------------------------------------------------------------------------


def build_cmdlets(sources: Sources, manifest: Mapping[str, Any]) -> Table:
    common = manifest["common_parameters"]
    cmdlets = {}
    for repo, paths in manifest["cmdlets"].items():
        for path in paths:
            cmdlet = sources.parse(repo, path, parse_cmdlet_page)
            name = cmdlet.pop("name")
            cmdlets[name] = {**cmdlet, "source": sources.cite(repo, path)}
    return {
        "common_parameters": {
            "parameters": sources.parse(common["repo"], common["path"], parse_common_parameters_page, common["names"]),
            "source": sources.cite(common["repo"], common["path"]),
        },
        "cmdlets": cmdlets,
    }


def _require_text(sources: Sources, citation: Mapping[str, str], *texts: str) -> dict[str, str]:
    """The citation of a page, once the page is seen to hold every text it is cited for."""
    repo, path = citation["repo"], citation["path"]
    if repo in sources.repositories:
        page = sources[repo].read(path)
        for text in texts:
            if not re.search(rf"(?<![\w.]){re.escape(text)}(?![\w])", page, re.IGNORECASE):
                raise SourceError(f"{repo}:{path} does not mention {text!r}")
    return sources.cite(repo, path)


def build_com(sources: Sources, manifest: Mapping[str, Any]) -> Table:
    interfaces, enums = {}, {}
    for header in manifest["headers"]:
        parsed = sources.parse(header["repo"], header["path"], parse_midl_header)
        citation = sources.cite(header["repo"], header["path"])
        for name in header["interfaces"]:
            if name not in parsed["interfaces"]:
                raise SourceError(f"{header['path']} declares no interface {name}")
            interfaces[name] = {**parsed["interfaces"][name], "source": citation}
        for name in header["enums"]:
            if name not in parsed["enums"]:
                raise SourceError(f"{header['path']} declares no enum {name}")
            enums[name] = {"values": parsed["enums"][name], "source": citation}
    for name, interface in interfaces.items():
        if interface["base"] not in interfaces and interface["base"] not in ("IDispatch", "IUnknown"):
            raise SourceError(f"{name} derives from {interface['base']}, which the manifest does not list")
    coclasses = {}
    for idl in manifest["coclass_sources"]:
        for coclass, interface in sources.parse(idl["repo"], idl["path"], parse_idl_coclasses).items():
            coclasses[coclass] = (interface, sources.cite(idl["repo"], idl["path"]))
    objects = {}
    for progid, entry in manifest["progids"].items():
        citations = [_require_text(sources, entry["documented_by"], progid)]
        interface = entry.get("interface")
        if interface is None:
            interface, coclass_citation = coclasses[entry["coclass"]]
            citations.append(coclass_citation)
        if interface not in interfaces:
            raise SourceError(f"{progid} gives {interface}, which the manifest does not list")
        objects[progid] = {"coclass": entry["coclass"], "interface": interface, "sources": citations}
    for name, entry in manifest["index_base"].items():
        interfaces[name]["index_base"] = {
            "value": entry["value"],
            "source": _require_text(sources, entry["documented_by"], entry["text"]),
        }
    return {"interfaces": interfaces, "enums": enums, "progids": objects}


def build_dotnet(sources: Sources, manifest: Mapping[str, Any]) -> Table:
    framework = Framework(
        frozenset(manifest["framework"]["assemblies"]),
        manifest["framework"]["version"],
        manifest["framework"]["moniker"],
    )
    types: dict[str, Any] = {}
    pending = list(manifest["types"])
    while pending:
        full_name = pending.pop()
        if full_name in types:
            continue
        path = ecma_path(full_name)
        parsed = sources.parse(manifest["repo"], path, parse_ecma_type, framework)
        if parsed is None:
            raise SourceError(f"{full_name} is not in the framework's assemblies")
        types[full_name] = {**parsed, "source": sources.cite(manifest["repo"], path)}
        # Inherited members are resolved through the base type, which the table must hold too.
        if parsed["base"]:
            pending.append(parsed["base"])
    undocumented = {
        entry["name"]: {key: value for key, value in entry.items() if key != "name"}
        for entry in manifest["undocumented_types"]
    }
    return {"types": types, "undocumented_types": undocumented}


def build_cim(sources: Sources, manifest: Mapping[str, Any]) -> Table:
    classes = {}
    for path in manifest["pages"]:
        parsed = sources.parse(manifest["repo"], path, parse_mof_class)
        name = parsed.pop("name")
        classes[name] = {**parsed, "source": sources.cite(manifest["repo"], path)}
    return {"classes": classes}


def build_extended(sources: Sources, manifest: Mapping[str, Any]) -> Table:
    accelerators = manifest["type_accelerators"]
    members = []
    for entry in manifest["members"]:
        citation = _require_text(sources, entry["documented_by"], entry["name"])
        members.append({key: value for key, value in entry.items() if key != "documented_by"} | {"source": citation})
    members.sort(key=lambda member: (member["applies_to"], member["name"].lower()))
    return {
        "members": members,
        "type_accelerators": {
            "accelerators": sources.parse(accelerators["repo"], accelerators["path"], parse_accelerator_table),
            "source": sources.cite(accelerators["repo"], accelerators["path"]),
        },
    }


def build_tables(sources: Sources, manifest: Mapping[str, Any]) -> dict[str, Table]:
    return {
        "cmdlets": build_cmdlets(sources, manifest["cmdlets"]),
        "com": build_com(sources, manifest["com"]),
        "dotnet": build_dotnet(sources, manifest["dotnet"]),
        "cim": build_cim(sources, manifest["cim"]),
        "extended": build_extended(sources, manifest["extended"]),
    }


def render(table: Table) -> str:
    """The bytes of a table: sorted keys, two-space indentation, a final newline."""
    return json.dumps(table, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _repository_arguments(values: Iterable[str]) -> dict[str, Path]:
    git_dirs = {}
    for value in values:
        name, separator, directory = value.partition("=")
        if not separator:
            raise argparse.ArgumentTypeError(f"--repo {value!r} is not NAME=DIR")
        git_dirs[name] = Path(directory)
    return git_dirs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repo", action="append", default=[], metavar="NAME=DIR", help="a git directory holding a pinned repository"
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed tables instead of writing them"
    )
    parser.add_argument("--tables", type=Path, default=TABLES_DIR, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    manifest = json.loads((arguments.tables / "manifest.json").read_text(encoding="utf-8"))
    pins = json.loads((arguments.tables / "sources.json").read_text(encoding="utf-8"))
    try:
        tables = build_tables(Sources(pins, _repository_arguments(arguments.repo)), manifest)
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stale = []
    for name, table in tables.items():
        path = arguments.tables / f"{name}.json"
        text = render(table)
        if arguments.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
