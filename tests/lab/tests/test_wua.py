"""The simulated Windows Update Agent against a generated, signed catalog."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from wuacache_lab.catalog import generate_catalog
from wuacache_lab.catalog.model import And, Bundle, Catalog, Or, Processor, WindowsVersion, build_catalog
from wuacache_lab.catalog.payloads import upstream_path
from wuacache_lab.pki import LabCA, ensure_lab_ca
from wuacache_lab.windows.applicability import Rule, rule_applies
from wuacache_lab.windows.errors import COMError, HResultError
from wuacache_lab.windows.faults import set_host_fault
from wuacache_lab.windows.host import WindowsHost
from wuacache_lab.windows.process import LogonSession
from wuacache_lab.windows.profiles import OsProfile, get_profile
from wuacache_lab.windows.wua import REBOOT_BEHAVIORS, OperationResultCode, Update, UpdateSearcher, WuaClient

UPDATES = 120
SEED = 7
SCAN_FILE = r"C:\ProgramData\wuacache\wsusscn2.cab"
STAGING = r"C:\ProgramData\wuacache\staging"
NETWORK = LogonSession(user="Administrator", logon_type="network")
SECURITY_UPDATES = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
CBS_LOG = r"C:\Windows\Logs\CBS\CBS.log"


@dataclass(frozen=True)
class Lab:
    root: Path
    ca: LabCA
    cab: Path
    files_dir: Path
    model: Catalog


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("wua")
    ca = ensure_lab_ca(root / "ca")
    summary = generate_catalog(root / "catalog", updates=UPDATES, seed=SEED, ca=ca, fragments_per_cab=40)
    return Lab(root, ca, summary.cab, summary.files_dir, build_catalog(updates=UPDATES, seed=SEED))


def new_host(lab: Lab, state_dir: Path, profile: str, cab: Path | None = None) -> WindowsHost:
    host = WindowsHost(profile.upper(), state_dir, profile=profile, trusted_ca=lab.ca.ca_cert)
    host.disk.make_dirs(STAGING)
    host.disk.write(SCAN_FILE, [(cab or lab.cab).read_bytes()])
    return host


def offline_searcher(client: WuaClient, *, flags: int = 1) -> UpdateSearcher:
    service = client.create_object("Microsoft.Update.ServiceManager").AddScanPackageService(
        "Offline Sync Service", SCAN_FILE, flags
    )
    searcher = client.create_object("Microsoft.Update.Session").CreateUpdateSearcher()
    searcher.ServerSelection = 3
    searcher.ServiceID = service.ServiceID
    return searcher


def offline_searcher_for(client: WuaClient, host: WindowsHost) -> UpdateSearcher:
    """A searcher on the scan service already registered on ``host``."""
    searcher = client.create_object("Microsoft.Update.Session").CreateUpdateSearcher()
    searcher.ServerSelection = 3
    searcher.ServiceID = next(iter(host.state.scan_services))
    return searcher


def search(host: WindowsHost, criteria: str = "IsInstalled=0", **settings: object) -> dict[str, Update]:
    searcher = offline_searcher(host.wua())
    for name, value in settings.items():
        setattr(searcher, name, value)
    result = searcher.Search(criteria)
    assert result.ResultCode == OperationResultCode.Succeeded
    return {update.Identity.UpdateID: update for update in result.Updates}


def stage_content(lab: Lab, host: WindowsHost, update: Update) -> None:
    """What the bridge will do: put each child's files on the host and hand
    them to CopyToCache."""
    for child in update.BundledUpdates:
        paths = []
        for content in child.DownloadContents:
            name = content.DownloadUrl.rsplit("/", 1)[-1]
            path = f"{STAGING}\\{name}"
            host.disk.write(path, [upstream_path(lab.files_dir, content.DownloadUrl).read_bytes()])
            paths.append(path)
        child.CopyToCache(paths)


def install(host: WindowsHost, *updates: Update, client_id: str = "wuacache") -> object:
    installer = host.wua().create_object("Microsoft.Update.Session").CreateUpdateInstaller()
    installer.ClientApplicationID = client_id
    installer.Updates = list(updates)
    return installer.Install()


def model_bundle(lab: Lab, update: Update) -> Bundle:
    return next(bundle for bundle in lab.model.bundles if bundle.update_id == update.Identity.UpdateID)


def first_of_kind(lab: Lab, updates: dict[str, Update], kind: str) -> Update:
    return next(update for update in updates.values() if model_bundle(lab, update).kind.name == kind)


# An oracle over the generator's model (not its XML): what should apply.


def _model_rule_applies(rule: object, profile: OsProfile) -> bool:
    match rule:
        case And(rules):
            return all(_model_rule_applies(child, profile) for child in rules)
        case Or(rules):
            return any(_model_rule_applies(child, profile) for child in rules)
        case Processor(architecture):
            return architecture == profile.processor_architecture
        case WindowsVersion(comparison, build, product_type, major, minor):
            if product_type is not None and product_type != profile.product_type:
                return False
            host, wanted = (profile.major_version, profile.minor_version, profile.build), (major, minor, build)
            return {"EqualTo": host == wanted, "GreaterThanOrEqualTo": host >= wanted, "LessThan": host < wanted}[
                comparison
            ]
    raise AssertionError(rule)


def expected_updates(lab: Lab, profile_name: str) -> dict[str, set[str]]:
    """UpdateID -> UpdateIDs of the applicable children, superseded excluded."""
    profile = get_profile(profile_name)
    languages = {tag.split("-")[0] for tag in profile.display_languages}
    applicable = {}
    for bundle in lab.model.bundles:
        children = {
            child.update_id
            for child in bundle.children
            if _model_rule_applies(child.rule, profile) and (child.language is None or child.language in languages)
        }
        if children:
            applicable[bundle.update_id] = (bundle, children)
    return {
        update_id: children
        for update_id, (bundle, children) in applicable.items()
        if not any(newer.update_id in applicable for newer in bundle.superseded_by)
    }


# Scanning


@pytest.mark.parametrize(
    ("profile", "applies"),
    [("win11-23h2-arm64", True), ("win11-23h2", False), ("win10-22h2", False), ("server2022", False)],
)
def test_applicability_rules_test_version_product_type_and_processor(profile: str, applies: bool) -> None:
    rule = Rule.from_element(
        etree.fromstring(
            '<And><WindowsVersion Comparison="GreaterThanOrEqualTo" MajorVersion="10" MinorVersion="0" '
            'BuildNumber="22631" ProductType="1"/>'
            '<Or><Processor Architecture="12"/><Processor Architecture="5"/></Or></And>'
        )
    )

    assert rule_applies(rule, get_profile(profile)) is applies


@pytest.mark.parametrize("profile", ["win10-22h2", "server2019", "win11-23h2-arm64", "win10-22h2-fr"])
def test_offline_scan_returns_what_applies_to_the_profile(lab: Lab, tmp_path: Path, profile: str) -> None:
    found = search(new_host(lab, tmp_path, profile))

    assert {
        update_id: {child.Identity.UpdateID for child in update.BundledUpdates} for update_id, update in found.items()
    } == expected_updates(lab, profile)


def test_different_profiles_see_different_updates(lab: Lab, tmp_path: Path) -> None:
    workstation = search(new_host(lab, tmp_path, "win10-22h2"))
    server = search(new_host(lab, tmp_path, "server2019"))

    assert workstation and server
    assert not workstation.keys() & server.keys()
    assert {
        category.Name for update in server.values() for category in update.Categories if category.Type == "Product"
    } == {"Windows Server 2019"}


def test_scan_results_carry_the_catalog_metadata(lab: Lab, tmp_path: Path) -> None:
    found = search(new_host(lab, tmp_path, "win10-22h2"))
    update = next(update for update in found.values() if model_bundle(lab, update).severity and update.KBArticleIDs)
    bundle = model_bundle(lab, update)

    assert update.Identity.RevisionNumber == bundle.revision_number
    assert update.Title == bundle.title
    assert list(update.KBArticleIDs) == [str(bundle.kb)]
    assert update.MsrcSeverity == bundle.severity
    assert [(category.CategoryID, category.Name, category.Type) for category in update.Categories] == [
        (bundle.os.product.update_id, bundle.os.product.name, "Product"),
        (bundle.classification.update_id, bundle.classification.name, "UpdateClassification"),
    ]
    assert update.LastDeploymentChangeTime == bundle.created.replace(microsecond=0)
    children = {child.update_id: child for child in bundle.children}
    for child in update.BundledUpdates:
        assert [content.DownloadUrl for content in child.DownloadContents] == [
            file.url for file in children[child.Identity.UpdateID].files
        ]
    assert not update.IsInstalled and not update.IsDownloaded and not update.IsHidden


def test_superseded_updates_are_hidden_unless_asked_for(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    default = search(host)
    everything = search(host, IncludePotentiallySupersededUpdates=True)

    superseded = everything.keys() - default.keys()
    assert superseded
    # Each hidden update is superseded by a returned one, directly or down a chain
    # of monthly updates each superseding the one before.
    superseding: set[str] = set()
    pending = [update_id for update in default.values() for update_id in update.SupersededUpdateIDs]
    while pending:
        update_id = pending.pop()
        if update_id not in superseding and update_id in everything:
            superseding.add(update_id)
            pending.extend(everything[update_id].SupersededUpdateIDs)
    assert superseded <= superseding


@pytest.mark.parametrize(
    ("criteria", "wanted"),
    [
        ("IsInstalled=1", lambda update: False),
        (f"CategoryIDs contains '{SECURITY_UPDATES}'", lambda update: update.MsrcSeverity != ""),
        ("IsInstalled=0 and Type='Software' and IsHidden=0", lambda update: True),
        ("(IsInstalled=0 and IsHidden=0) or IsInstalled=1", lambda update: True),
    ],
)
def test_search_criteria_filter_the_applicable_updates(lab: Lab, tmp_path: Path, criteria: str, wanted) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    everything = search(host)

    found = search(host, criteria)

    assert found.keys() == {update_id for update_id, update in everything.items() if wanted(update)}


def test_search_by_update_id_and_revision(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = next(iter(search(host).values()))
    identity = update.Identity

    assert search(host, f"UpdateID='{identity.UpdateID.upper()}'").keys() == {identity.UpdateID}
    assert search(host, f"UpdateID='{identity.UpdateID}' and RevisionNumber={identity.RevisionNumber}")
    assert not search(host, f"UpdateID='{identity.UpdateID}' and RevisionNumber={identity.RevisionNumber + 1}")


@pytest.mark.parametrize(
    "criteria",
    [
        "IsInstalled=0 and (IsHidden=0 or IsHidden=1)",  # "or" below the top level
        "IsInstalled='0'",
        "IsInstalled!=0",
        "IsFancy=1",
        "RevisionNumber=200",
        "CategoryIDs='0fa1201d-4330-4fa8-8ae9-b877473b6441'",
        "IsInstalled=0 and",
        "(IsInstalled=0",
    ],
)
def test_malformed_criteria_are_refused(lab: Lab, tmp_path: Path, criteria: str) -> None:
    searcher = offline_searcher(new_host(lab, tmp_path, "win10-22h2").wua())

    with pytest.raises(COMError) as error:
        searcher.Search(criteria)

    assert error.value.hresult == 0x80240032


@pytest.mark.parametrize(("server_selection", "service_id"), [(0, True), (2, True), (3, False)])
def test_offline_scan_needs_server_selection_others_and_a_service_id(
    lab: Lab, tmp_path: Path, server_selection: int, service_id: bool
) -> None:
    searcher = offline_searcher(new_host(lab, tmp_path, "win10-22h2").wua())
    searcher.ServerSelection = server_selection
    if not service_id:
        searcher.ServiceID = ""

    with pytest.raises(COMError) as error:
        searcher.Search("IsInstalled=0")

    assert error.value.hresult == 0x8024402C


def _corrupt(cab: Path, destination: Path) -> Path:
    data = bytearray(cab.read_bytes())
    data[len(data) // 2] ^= 0xFF
    destination.write_bytes(bytes(data))
    return destination


def _truncated(cab: Path, destination: Path) -> Path:
    destination.write_bytes(cab.read_bytes()[: cab.stat().st_size * 2 // 3])
    return destination


def _unsigned(lab: Lab, destination: Path) -> Path:
    return generate_catalog(destination, updates=UPDATES, seed=SEED, ca=None, fragments_per_cab=40).cab


def _foreign(lab: Lab, destination: Path) -> Path:
    foreign = ensure_lab_ca(destination / "ca", name="foreign")
    return generate_catalog(destination, updates=UPDATES, seed=SEED, ca=foreign, fragments_per_cab=40).cab


@pytest.mark.parametrize(
    "make_cab",
    [
        lambda lab, folder: _corrupt(lab.cab, folder / "corrupt.cab"),
        lambda lab, folder: _truncated(lab.cab, folder / "truncated.cab"),
        _unsigned,
        _foreign,
    ],
    ids=["corrupt", "truncated", "unsigned", "foreign-ca"],
)
def test_untrusted_scan_files_are_refused(lab: Lab, tmp_path: Path, make_cab) -> None:
    folder = tmp_path / "cab"
    folder.mkdir()
    host = new_host(lab, tmp_path / "hosts", "win10-22h2", cab=make_cab(lab, folder))
    manager = host.wua().create_object("Microsoft.Update.ServiceManager")

    with pytest.raises(COMError) as error:
        manager.AddScanPackageService("Offline Sync Service", SCAN_FILE, 1)

    assert error.value.hresult == 0x80247001
    assert not host.state.scan_services


def test_scan_file_on_a_share_is_refused(lab: Lab, tmp_path: Path) -> None:
    manager = new_host(lab, tmp_path, "win10-22h2").wua().create_object("Microsoft.Update.ServiceManager")

    with pytest.raises(COMError) as error:
        manager.AddScanPackageService("Offline Sync Service", r"\\server\share\wsusscn2.cab", 1)

    assert error.value.hresult == 0x8007007B


def test_volatile_scan_service_lives_only_as_long_as_its_process(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    searcher = offline_searcher(host.wua(), flags=0)
    assert searcher.Search("IsInstalled=0").Updates

    later = host.wua().create_object("Microsoft.Update.Session").CreateUpdateSearcher()
    later.ServerSelection, later.ServiceID = 3, searcher.ServiceID
    with pytest.raises(COMError) as error:
        later.Search("IsInstalled=0")
    assert error.value.hresult == 0x80248014


def test_removed_scan_service_can_no_longer_be_searched(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    client = host.wua()
    searcher = offline_searcher(client)

    client.create_object("Microsoft.Update.ServiceManager").RemoveService(searcher.ServiceID)

    assert not host.state.scan_services
    with pytest.raises(COMError) as error:
        searcher.Search("IsInstalled=0")
    assert error.value.hresult == 0x80248014


# The Windows Update service and remote logons


def test_disabled_wuauserv_fails_every_wua_call(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    searcher = offline_searcher(host.wua())
    host.system().stop_service("wuauserv")
    host.system().set_service_start_mode("wuauserv", "Disabled")

    for call in (
        lambda: searcher.Search("IsInstalled=0"),
        lambda: searcher.GetTotalHistoryCount(),
        lambda: offline_searcher(host.wua()),
        lambda: host.wua().create_object("Microsoft.Update.ServiceManager").Services,
        lambda: host.wua().create_object("Microsoft.Update.SystemInfo").RebootRequired,
        lambda: host.wua().create_object("Microsoft.Update.AgentInfo").GetInfo("ProductVersionString"),
    ):
        with pytest.raises(COMError) as error:
            call()
        assert error.value.hresult == 0x80070422


def test_a_stopped_wuauserv_is_started_on_demand(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    assert (host.state.wuauserv_start_mode, host.state.wuauserv_state) == ("Manual", "Stopped")

    search(host)

    assert host.state.wuauserv_state == "Running"


def test_network_logons_cannot_make_the_calls_microsoft_keeps_local(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = next(iter(search(host).values()))  # registers a service as SYSTEM
    remote = host.wua(NETWORK)
    remote_update = next(iter(offline_searcher_for(remote, host).Search("IsInstalled=0").Updates))
    session = remote.create_object("Microsoft.Update.Session")

    refused = {
        "CreateUpdateInstaller": session.CreateUpdateInstaller,
        "AddScanPackageService": lambda: remote.create_object("Microsoft.Update.ServiceManager").AddScanPackageService(
            "x", SCAN_FILE, 1
        ),
        "CopyToCache": lambda: remote_update.BundledUpdates[0].CopyToCache([SCAN_FILE]),
        "AcceptEula": remote_update.AcceptEula,
        "IsHidden": lambda: setattr(remote_update, "IsHidden", True),
    }
    for call in refused.values():
        with pytest.raises(COMError) as error:
            call()
        assert error.value.hresult == 0x80070005
    assert remote.create_object("Microsoft.Update.AgentInfo").GetInfo("ProductVersionString") == "10.0.19041.3996"
    assert remote_update.Identity == update.Identity
    assert not update.IsHidden


# CopyToCache


def test_copy_to_cache_accepts_only_the_exact_payload(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = next(update for update in search(host).values() if update.BundledUpdates[0].DownloadContents)
    child = update.BundledUpdates[0]
    name = child.DownloadContents[0].DownloadUrl.rsplit("/", 1)[-1]
    wrong = f"{STAGING}\\{name}"
    host.disk.write(wrong, [b"not the payload"])

    with pytest.raises(COMError) as error:
        child.CopyToCache([wrong])
    assert error.value.hresult == 0x8024200D
    assert not child.IsDownloaded

    stage_content(lab, host, update)

    assert all(child.IsDownloaded for child in update.BundledUpdates)
    assert update.IsDownloaded
    restarted = WindowsHost(host.name, tmp_path, profile="win10-22h2", trusted_ca=lab.ca.ca_cert)
    assert search(restarted)[update.Identity.UpdateID].IsDownloaded


def test_copy_to_cache_refuses_a_right_file_under_another_name(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    child = next(iter(search(host).values())).BundledUpdates[0]
    renamed = f"{STAGING}\\renamed.cab"
    host.disk.write(renamed, [upstream_path(lab.files_dir, child.DownloadContents[0].DownloadUrl).read_bytes()])

    with pytest.raises(COMError) as error:
        child.CopyToCache([renamed])

    assert error.value.hresult == 0x8024200D


# Installing


def test_install_without_content_fails_per_update(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = next(iter(search(host).values()))

    result = install(host, update)

    assert result.ResultCode == OperationResultCode.Failed
    assert result.GetUpdateResult(0).HResult == 0x80246007 - (1 << 32)
    assert not update.IsInstalled
    entry = host.wua().create_object("Microsoft.Update.Session").CreateUpdateSearcher().QueryHistory(0, 1)[0]
    assert (entry.Operation, entry.ResultCode, entry.HResult) == (1, 4, 0x80246007 - (1 << 32))


def test_install_with_no_updates_is_refused(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")

    with pytest.raises(COMError) as error:
        install(host)

    assert error.value.hresult == 0x80240024


def test_install_writes_the_update_and_its_history(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = first_of_kind(lab, search(host), "definition")
    stage_content(lab, host, update)

    result = install(host, update, client_id="wuacache-test")

    assert (result.ResultCode, result.HResult, result.RebootRequired) == (2, 0, False)
    assert update.IsInstalled
    assert update.Identity.UpdateID not in search(host)
    assert search(host, "IsInstalled=1").keys() == {update.Identity.UpdateID}
    searcher = host.wua().create_object("Microsoft.Update.Session").CreateUpdateSearcher()
    assert searcher.GetTotalHistoryCount() == 1
    entry = searcher.QueryHistory(0, 1)[0]
    assert (entry.Operation, entry.ResultCode, entry.HResult) == (1, 2, 0)
    assert (entry.UpdateIdentity, entry.Title, entry.ClientApplicationID) == (
        update.Identity,
        update.Title,
        "wuacache-test",
    )


def test_install_that_needs_a_restart_completes_at_the_next_boot(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    set_host_fault(tmp_path, host.name, "reboot_seconds", seconds=0)
    found = search(host)
    cumulative = first_of_kind(lab, found, "cumulative")
    other = first_of_kind(lab, found, "definition")
    stage_content(lab, host, cumulative)
    stage_content(lab, host, other)

    result = install(host, cumulative)

    assert (result.ResultCode, result.RebootRequired, result.GetUpdateResult(0).RebootRequired) == (2, True, True)
    assert not cumulative.IsInstalled and cumulative.RebootRequired
    installer = host.wua().create_object("Microsoft.Update.Session").CreateUpdateInstaller()
    assert installer.RebootRequiredBeforeInstallation
    with pytest.raises(COMError) as error:
        install(host, other)
    assert error.value.hresult == 0x80240016

    host.reboot()

    assert host.is_reachable()
    assert cumulative.IsInstalled and not cumulative.RebootRequired
    assert not host.state.reboot_markers
    assert install(host, other).ResultCode == OperationResultCode.Succeeded


def test_an_update_that_can_ask_for_user_input_fails_where_nobody_can_answer(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2-fr")
    found = search(host)
    # The catalog's CanRequestUserInput attribute, as the model sets it (the French language pack only).
    marked = {update_id for update_id, update in found.items() if model_bundle(lab, update).can_request_user_input}
    [asking] = [update for update in found.values() if update.InstallationBehavior.CanRequestUserInput]
    assert marked == {asking.Identity.UpdateID}
    stage_content(lab, host, asking)

    result = install(host, asking)

    # WU_E_UH_CANREQUIREINPUT: no interactive user to answer it on a lab host.
    assert (result.ResultCode, result.GetUpdateResult(0).HResult) == (4, 0x8024200A - (1 << 32))
    assert not asking.IsInstalled


def test_servicing_logs_the_sessions_of_the_installs_that_reach_it(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    found = search(host)
    cumulative = first_of_kind(lab, found, "cumulative")
    definition = first_of_kind(lab, found, "definition")
    stage_content(lab, host, cumulative)
    stage_content(lab, host, definition)
    [kb] = cumulative.KBArticleIDs

    install(host, definition)
    install(host, cumulative)

    lines = b"".join(host.disk.read(CBS_LOG)).decode("ascii").splitlines()
    # A definition update has no servicing package (no KB): only the cumulative update's session.
    assert [line.split(", ", 1)[1].split()[0] for line in lines] == ["Info"] * 4
    assert lines[1].endswith(f"Package: Package_for_KB{kb}")
    assert lines[-1].endswith("Reboot required: yes [HRESULT = 0x00000000 - S_OK]")


def test_install_failure_fault_fails_the_chosen_update_only(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    found = search(host)
    failing = first_of_kind(lab, found, "definition")
    # One that is installed at once, without waiting for a restart.
    passing = next(
        update
        for update in found.values()
        if update is not failing and update.InstallationBehavior.RebootBehavior != REBOOT_BEHAVIORS["AlwaysRequiresReboot"]
    )
    for update in (failing, passing):
        stage_content(lab, host, update)
    set_host_fault(tmp_path, host.name, "install_failure", hresult=0x80073712, update_ids=[failing.Identity.UpdateID])

    result = install(host, failing, passing)

    assert result.ResultCode == OperationResultCode.SucceededWithErrors
    assert (result.GetUpdateResult(0).ResultCode, result.GetUpdateResult(0).HResult) == (4, 0x80073712 - (1 << 32))
    assert result.GetUpdateResult(1).ResultCode == OperationResultCode.Succeeded
    assert not failing.IsInstalled and passing.IsInstalled
    history = host.wua().create_object("Microsoft.Update.Session").CreateUpdateSearcher().QueryHistory(0, 10)
    assert [(entry.UpdateIdentity.UpdateID, entry.ResultCode) for entry in history] == [
        (passing.Identity.UpdateID, 2),
        (failing.Identity.UpdateID, 4),
    ]


def test_an_install_in_progress_blocks_another(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = first_of_kind(lab, search(host), "definition")
    stage_content(lab, host, update)
    set_host_fault(tmp_path, host.name, "slow_install", seconds=0.5)
    first = threading.Thread(target=install, args=(host, update))
    installer = host.wua().create_object("Microsoft.Update.Session").CreateUpdateInstaller()
    first.start()
    try:
        while not installer.IsBusy and first.is_alive():
            threading.Event().wait(0.01)
        assert installer.IsBusy
        with pytest.raises(COMError) as error:
            install(host, update)
        assert error.value.hresult == 0x80240016
    finally:
        first.join()
    assert update.IsInstalled and not installer.IsBusy


def test_uninstall_removes_the_update_and_records_it(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = first_of_kind(lab, search(host), "definition")
    stage_content(lab, host, update)
    install(host, update)
    installer = host.wua().create_object("Microsoft.Update.Session").CreateUpdateInstaller()
    installer.Updates = [update]

    result = installer.Uninstall()

    assert result.ResultCode == OperationResultCode.Succeeded
    assert not update.IsInstalled
    entry = host.wua().create_object("Microsoft.Update.Session").CreateUpdateSearcher().QueryHistory(0, 1)[0]
    assert (entry.Operation, entry.ResultCode) == (2, 2)


def test_hidden_updates_are_left_out_by_default(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    update = next(iter(search(host).values()))

    update.IsHidden = True

    assert update.Identity.UpdateID not in search(host, "IsInstalled=0 and IsHidden=0")
    assert update.Identity.UpdateID in search(host, "IsHidden=1")


def test_disk_full_makes_the_scan_file_copy_fail(lab: Lab, tmp_path: Path) -> None:
    host = new_host(lab, tmp_path, "win10-22h2")
    set_host_fault(tmp_path, host.name, "disk_full")

    with pytest.raises(HResultError) as error:
        offline_searcher(host.wua())

    assert error.value.hresult == 0x80070070
