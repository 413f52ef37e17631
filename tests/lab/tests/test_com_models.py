"""The lab's COM objects have the shape Microsoft documents for them (the contract
tables' ``com.json``): each class names the interface a script sees on the real object,
every public member belongs to that interface chain, with its documented case, kind,
settability and number of arguments, and what a member returns is of its documented
type. A member Windows does not document fails here."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from bridge_client import Lab
from wuacache_lab.powershell import contracts
from wuacache_lab.powershell.contracts import ComMember
from wuacache_lab.windows import taskscheduler, wua
from wuacache_lab.windows.com import ComCollection
from wuacache_lab.windows.errors import E_INVALIDARG, WU_E_INVALIDINDEX, COMError
from wuacache_lab.windows.host import WindowsHost

SCAN_FILE = r"C:\ProgramData\wuacache\wsusscn2.cab"
# What the lab gives for each automation scalar type (PowerShell's String, Boolean, DateTime, Int32).
SCALARS: dict[str, type] = {
    "BSTR": str,
    "VARIANT_BOOL": bool,
    "DATE": datetime,
    "LONG": int,
    "long": int,
    "int": int,
    "DWORD": int,
}
# Interfaces whose objects a script only passes along.
OPAQUE = ("IUnknown*", "IDispatch*")


def com_classes() -> list[type]:
    """Every class of the lab's Windows Update Agent and Task Scheduler that stands for a COM object."""
    return [
        value
        for module in (wua, taskscheduler)
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == module.__name__ and hasattr(value, "__com_interface__")
    ]


def derives_from(interface: str, ancestor: str) -> bool:
    current = contracts.com_interface(interface)
    while current is not None:
        if current.name.casefold() == ancestor.casefold():
            return True
        current = contracts.com_interface(current.base)
    return False


def class_members(cls: type) -> dict[str, Any]:
    """The public members a class declares: properties, methods, class attributes, dataclass fields."""
    members = {name: value for name, value in inspect.getmembers_static(cls) if not name.startswith("_")}
    if dataclasses.is_dataclass(cls):
        members.update({field.name: field for field in dataclasses.fields(cls) if not field.name.startswith("_")})
    return members


def member_problems(cls: type, name: str, value: Any) -> list[str]:
    """How one public member of ``cls`` departs from the contract; ``value`` is what the
    class (or an instance, for an instance attribute) holds under that name."""
    where = f"{cls.__name__}.{name} ({cls.__com_interface__})"
    member = contracts.com_member(cls.__com_interface__, name)
    if member is None:
        return [f"{where}: not a member of the interface"]
    if member.name != name:
        return [f"{where}: documented as {member.name}"]
    if inspect.isfunction(value):
        if member.kind == "property" and not member.parameters:
            return [f"{where}: a property, modelled as a method"]
        return signature_problems(where, value, member)
    if member.kind == "method" or member.parameters:
        return [f"{where}: takes arguments, modelled as a property"]
    if isinstance(value, property):
        settable = value.fset is not None
    elif isinstance(value, dataclasses.Field):
        settable = not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    else:
        settable = True  # a plain attribute
    if settable != member.settable:
        return [f"{where}: {'read/write' if member.settable else 'read-only'} in the contract"]
    return []


def signature_problems(where: str, function: Any, member: ComMember) -> list[str]:
    """A method takes exactly its documented arguments, positionally; the optional ones have defaults."""
    parameters = list(inspect.signature(function).parameters.values())[1:]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(parameter.kind not in positional for parameter in parameters):
        return [f"{where}: takes other than positional parameters"]
    required = sum(parameter.default is inspect.Parameter.empty for parameter in parameters)
    if (required, len(parameters)) != (member.min_arguments, member.max_arguments):
        return [
            f"{where}: takes {required} to {len(parameters)} arguments, "
            f"the contract {member.min_arguments} to {member.max_arguments}"
        ]
    return []


def class_problems(cls: type) -> list[str]:
    interface = contracts.com_interface(cls.__com_interface__)
    if interface is None or interface.name != cls.__com_interface__:
        return [f"{cls.__name__}: {cls.__com_interface__} is not an interface of the contract tables"]
    return [problem for name, value in class_members(cls).items() for problem in member_problems(cls, name, value)]


def instance_problems(instance: Any) -> list[str]:
    """What a class cannot show: the public attributes its instances set."""
    cls = type(instance)
    declared = class_members(cls)
    return [
        problem
        for name, value in vars(instance).items()
        if not name.startswith("_") and name not in declared
        for problem in member_problems(cls, name, value)
    ]


def value_problems(where: str, member: ComMember, value: Any) -> list[str]:
    """What a member gives is of its documented type: an object of the interface (or one
    derived from it), or the scalar PowerShell makes of the automation type."""
    expected = member.type
    if value is None or expected is None or expected in OPAQUE:
        return []
    if expected.endswith("*"):
        declared = getattr(value, "__com_interface__", None)
        if declared is None or not derives_from(declared, expected[:-1]):
            return [f"{where}: gives {type(value).__name__} ({declared}), documented as {expected}"]
        return []
    enum = contracts.com_enum(expected.removeprefix("enum ").removeprefix("tag"))
    scalar = int if enum is not None else SCALARS.get(expected)
    if scalar is not None and (not isinstance(value, scalar) or (scalar is int and isinstance(value, bool))):
        return [f"{where}: gives {type(value).__name__} {value!r}, documented as {expected}"]
    return []


class Script:
    """Uses the lab's COM objects the way a script does, and collects every object it
    reaches, with what departs from the contract in what members give."""

    def __init__(self) -> None:
        self.reached: list[Any] = []
        self.problems: list[str] = []
        self._seen: set[int] = set()

    def call(self, target: Any, name: str, *arguments: Any) -> Any:
        member = contracts.com_member(target.__com_interface__, name)
        assert member is not None and member.kind == "method", f"{target.__com_interface__}.{name}"
        result = getattr(target, name)(*arguments)
        self.problems += value_problems(f"{type(target).__name__}.{name}()", member, result)
        self.reach(result)
        return result

    def reach(self, *roots: Any) -> None:
        """Reads every property the lab models of the objects reached from ``roots``, and
        every item of the collections among them."""
        pending = [root for root in roots if hasattr(root, "__com_interface__")]
        while pending:
            target = pending.pop()
            if id(target) in self._seen:
                continue
            self._seen.add(id(target))
            self.reached.append(target)
            for name, value in self._read(target):
                if hasattr(value, "__com_interface__"):
                    pending.append(value)

    def _read(self, target: Any) -> Iterable[tuple[str, Any]]:
        interface = target.__com_interface__
        for name in dir(target):
            member = contracts.com_member(interface, name)
            if member is None or member.kind != "property" or member.parameters or not member.gettable:
                continue
            value = getattr(target, name)
            self.problems += value_problems(f"{type(target).__name__}.{name}", member, value)
            yield name, value
        if isinstance(target, ComCollection):
            item = contracts.com_member(interface, "Item")
            assert item is not None
            for position, value in enumerate(target):
                self.problems += value_problems(f"{type(target).__name__} item {position}", item, value)
                yield "Item", value
            first = contracts.com_interface(interface).index_base  # type: ignore[union-attr]
            if first is not None and target.Count and target.Item(first) is not target[0]:
                self.problems.append(f"{type(target).__name__}: documented as {first}-based")


@pytest.fixture(scope="module")
def script(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Script:
    """A search, an install, the history, and a task registered and run, on one host."""
    host = WindowsHost("WIN10-01", tmp_path_factory.mktemp("hosts"), profile="win10-22h2", trusted_ca=lab.ca.ca_cert)
    host.disk.make_dirs(SCAN_FILE.rsplit("\\", 1)[0])
    host.disk.write(SCAN_FILE, [lab.catalog.cab.read_bytes()])
    client = host.wua()
    created = {prog_id: client.create_object(prog_id) for prog_id in wua.PROG_IDS}
    script = Script()
    script.reach(*created.values())

    manager = created["Microsoft.Update.ServiceManager"]
    service = script.call(manager, "AddScanPackageService", "lab catalog", SCAN_FILE, 0)
    session = created["Microsoft.Update.Session"]
    searcher = script.call(session, "CreateUpdateSearcher")
    searcher.ServerSelection = wua.ServerSelection.Others
    searcher.ServiceID = service.ServiceID
    found = script.call(searcher, "Search", "IsInstalled=0").Updates
    updates = created["Microsoft.Update.UpdateColl"]
    script.call(updates, "Add", found.Item(0))
    script.call(created["Microsoft.Update.StringColl"], "Add", SCAN_FILE)
    installer = script.call(session, "CreateUpdateInstaller")
    installer.Updates = updates
    installation = script.call(installer, "Install")
    script.call(installation, "GetUpdateResult", 0)
    script.call(searcher, "QueryHistory", 0, script.call(searcher, "GetTotalHistoryCount"))
    script.call(created["Microsoft.Update.AgentInfo"], "GetInfo", "ProductVersionString")

    scheduler = created["Schedule.Service"]
    script.call(scheduler, "Connect")
    folder = script.call(scheduler, "GetFolder", "\\")
    definition = script.call(scheduler, "NewTask", 0)
    definition.Principal.UserId = "SYSTEM"
    definition.Principal.LogonType = taskscheduler.TASK_LOGON_SERVICE_ACCOUNT
    script.call(definition.Actions, "Create", taskscheduler.TASK_ACTION_EXEC).Path = "hostname"
    task = script.call(folder, "RegisterTaskDefinition", "lab", definition, 6, None, None, None)
    script.call(task, "Run", None)
    deadline = time.monotonic() + 10
    while task.State == taskscheduler.TASK_STATE_RUNNING and time.monotonic() < deadline:
        time.sleep(0.02)
    script.call(folder, "GetTasks", 0)
    return script


@pytest.mark.parametrize("cls", com_classes(), ids=lambda cls: cls.__name__)
def test_each_member_of_a_lab_com_class_is_documented_as_the_lab_models_it(cls: type) -> None:
    assert class_problems(cls) == []


def test_what_a_script_reaches_is_shaped_and_typed_as_documented(script: Script) -> None:
    assert {type(target) for target in script.reached} == set(com_classes())
    assert [problem for target in script.reached for problem in instance_problems(target)] == []
    assert script.problems == []


def test_each_prog_id_the_lab_creates_is_documented_and_gives_its_interface(lab: Lab, tmp_path: Path) -> None:
    client = WindowsHost("WIN10-02", tmp_path, profile="win10-22h2", trusted_ca=lab.ca.ca_cert).wua()
    for prog_id in wua.PROG_IDS:
        documented = contracts.com_object(prog_id)
        assert documented is not None and documented.progid == prog_id
        created = client.create_object(prog_id.upper())
        assert derives_from(created.__com_interface__, documented.interface), prog_id
    with pytest.raises(COMError) as error:
        client.create_object("Microsoft.Update.Installer")
    assert error.value.hresult == 0x80040154  # REGDB_E_CLASSNOTREG


def test_the_check_finds_what_windows_does_not_document() -> None:
    class Undocumented(taskscheduler.RegisteredTask):
        @property
        def Owner(self) -> str:
            return "SYSTEM"

        @property
        def Path(self) -> str:
            return self._path

        @Path.setter
        def Path(self, path: str) -> None:
            self._path = path

        def state(self) -> int:
            return taskscheduler.TASK_STATE_READY

        def Stop(self) -> None:
            pass

    class Connected(taskscheduler.TaskService):
        def __init__(self) -> None:
            self.HighestVersion = 0x10004
            self.Server = "WIN10-01"

    problems = class_problems(Undocumented)
    for name in ("Owner", "Path", "state", "Stop"):
        assert any(problem.startswith(f"Undocumented.{name} ") for problem in problems), name
    assert len(problems) == 4
    assert [problem.split(":")[0] for problem in instance_problems(Connected())] == [
        "Connected.HighestVersion (ITaskService)",
        "Connected.Server (ITaskService)",
    ]


def test_an_index_outside_a_collection_fails_in_the_api_s_own_terms() -> None:
    strings = wua.StringCollection(["KB5034441"])
    actions = taskscheduler.ActionCollection([taskscheduler.ExecAction("hostname")])

    assert (strings.Item(0), actions.Item(1).Path) == ("KB5034441", "hostname")
    for collection, index, hresult in (
        (strings, -1, WU_E_INVALIDINDEX),
        (strings, 1, WU_E_INVALIDINDEX),
        (actions, 0, E_INVALIDARG),  # Task Scheduler collections are 1-based
        (actions, 2, E_INVALIDARG),
    ):
        with pytest.raises(COMError) as error:
            collection.Item(index)
        assert error.value.hresult == hresult
