"""Component Based Servicing: the packages ``wusa.exe`` and DISM install.

A servicing package is a cabinet whose ``update.mum`` manifest (an
``<assembly>`` in the ``urn:schemas-microsoft-com:asm.v3`` namespace) names
the package (``assemblyIdentity``), its KB (``package/@identifier``, such as
``KB5034441``), whether installing it needs a restart
(``package/@restart="required"``), whether it can ever be removed
(``package/@permanence="permanent"``: servicing stack updates) and the
package it services (``package/parent/assemblyIdentity``). The assembly's
``description`` and ``supportInformation`` attributes name the KB too
(``Fix for KB5034441``, ``https://support.microsoft.com/help/5034441``):
a cumulative update's package is ``Package_for_RollupFix``, whose name does
not, and DISM reports both (the DISM API's ``DismPackageInfo`` structure,
learn.microsoft.com windows-hardware/manufacture/desktop/dism/dismpackageinfo-structure).

A combined package (the .msu of a cumulative update of Windows 10 21H2 and
later, Windows 11 and Windows Server 2022 and later) also holds the servicing
stack update: both install, and the servicing stack stays for good. Microsoft's
KB articles say that ``wusa.exe /uninstall`` does not work on the combined
package because it holds the servicing stack, and that the cumulative update's
own package is removed with DISM (``If you want to remove the LCU``,
MicrosoftDocs/azure-stack-docs azure-local/security-update/security-update.md).

The emulated servicing stack has one applicability rule: a package applies
when its parent is the host's ``Microsoft-Windows-Foundation-Package``, that
is the same processor architecture (``amd64``, ``x86``, ``arm64``) and the
same version up to the build (``10.0.<build>``), whatever the revision, as
``buildCompare="EQ"`` asks. A package for another release or architecture
does not apply.

Installing a package records it by its identity; its KB then counts as
installed for the Update Agent, whose IsInstalled rules detect the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cabarchive import CabArchive, CorruptionError, NotSupportedError
from lxml import etree

from wuacache_lab.windows.errors import HResultError
from wuacache_lab.windows.profiles import OsProfile
from wuacache_lab.windows.state import (
    OPERATION_INSTALLATION,
    OPERATION_UNINSTALLATION,
    HostState,
    InstalledPackage,
    PackageManifest,
    PendingChange,
    to_iso,
    utc_now,
)
from wuacache_lab.windows.wua import commit_change

if TYPE_CHECKING:
    from wuacache_lab.windows.host import WindowsHost

MANIFEST = "update.mum"
ASSEMBLY_NAMESPACE = "urn:schemas-microsoft-com:asm.v3"
FOUNDATION_PACKAGE = "Microsoft-Windows-Foundation-Package"
PUBLIC_KEY_TOKEN = "31bf3856ad364e35"
# processorArchitecture of a servicing identity, by OS profile architecture.
CBS_ARCHITECTURES = {"x86": "x86", "x64": "amd64", "arm64": "arm64"}

# ERROR_FILE_CORRUPT: the package is no cabinet or has no manifest.
ERROR_FILE_CORRUPT = 0x80070570
# CBS_E_INVALID_PACKAGE: servicing knows no package of that name. Microsoft documents no code for
# it; DISM reports this one for a package name it cannot find (observed, not documented).
CBS_E_INVALID_PACKAGE = 0x800F0805
# CBS_E_CANNOT_UNINSTALL: the package cannot be removed (permanent, or holding one that is).
CBS_E_CANNOT_UNINSTALL = 0x800F0825

_NAMESPACES = {"asm": ASSEMBLY_NAMESPACE}


@dataclass(frozen=True)
class ServicingPackage:
    """What ``update.mum`` says of a package."""

    identity: str  # Package_for_KB<kb>~<public key token>~<architecture>~~<version>
    kb: str  # digits only
    restart: bool
    parent_name: str
    parent_version: str
    parent_architecture: str
    description: str = ""
    support_information: str = ""
    permanent: bool = False

    def applies_to(self, profile: OsProfile) -> bool:
        """Whether the package's parent is the host's Foundation package."""
        host_release = f"{profile.major_version}.{profile.minor_version}.{profile.build}"
        return (
            self.parent_name.casefold() == FOUNDATION_PACKAGE.casefold()
            and self.parent_architecture.casefold() == CBS_ARCHITECTURES[profile.architecture]
            and self.parent_version.split(".")[:3] == host_release.split(".")
        )

    @property
    def reboot_behavior(self) -> str:
        return "AlwaysRequiresReboot" if self.restart else "NeverReboots"


def foundation_version(profile: OsProfile) -> str:
    """The version of a host's Foundation package: its release, revision 1."""
    return f"{profile.version}.1"


def open_cabinet(data: bytes) -> CabArchive:
    """The members of a cabinet; ERROR_FILE_CORRUPT when it is none."""
    try:
        return CabArchive(data)
    except (CorruptionError, NotSupportedError) as error:
        raise HResultError(ERROR_FILE_CORRUPT, f"The package is not a valid cabinet: {error}") from error


def member(cabinet: CabArchive, name: str) -> bytes:
    """A cabinet member's content; cabinet names are case-insensitive."""
    for filename, file in cabinet.items():
        if filename.casefold() == name.casefold():
            return file.buf
    raise HResultError(ERROR_FILE_CORRUPT, f"The package has no {name}.")


def read_package(data: bytes) -> ServicingPackage:
    """Read the manifest of the servicing package ``data``."""
    try:
        assembly = etree.fromstring(member(open_cabinet(data), MANIFEST))
    except etree.XMLSyntaxError as error:
        raise HResultError(ERROR_FILE_CORRUPT, f"The package's {MANIFEST} is not XML: {error}") from error
    identity = assembly.find("asm:assemblyIdentity", _NAMESPACES)
    package = assembly.find("asm:package", _NAMESPACES)
    parent = assembly.find("asm:package/asm:parent/asm:assemblyIdentity", _NAMESPACES)
    if identity is None or package is None or parent is None:
        raise HResultError(ERROR_FILE_CORRUPT, f"The package's {MANIFEST} names no package and parent.")
    return ServicingPackage(
        identity="~".join(
            (
                identity.get("name", ""),
                identity.get("publicKeyToken", ""),
                identity.get("processorArchitecture", ""),
                "",
                identity.get("version", ""),
            )
        ),
        kb=package.get("identifier", "").upper().removeprefix("KB"),
        restart=package.get("restart") == "required",
        parent_name=parent.get("name", ""),
        parent_version=parent.get("version", ""),
        parent_architecture=parent.get("processorArchitecture", ""),
        description=assembly.get("description", ""),
        support_information=assembly.get("supportInformation", ""),
        permanent=package.get("permanence") == "permanent",
    )


def package_change(operation: int, package: ServicingPackage | InstalledPackage) -> PendingChange:
    """Servicing's change of a package, by its identity and KB."""
    return PendingChange(
        operation,
        update_id="",
        revision_number=0,
        title=package.identity,
        kb_article_ids=[package.kb],
        reboot_behavior=package.reboot_behavior,
        package=package.identity,
    )


def install_package(host: WindowsHost, package: ServicingPackage, *, servicing_stack: str | None = None) -> bool:
    """Install ``package`` now, or at the next restart when it needs one;
    returns whether it waits for that restart. ``servicing_stack``: the
    package of the servicing stack that came with it in a combined package."""
    change = package_change(OPERATION_INSTALLATION, package)
    with host.store.update() as state:
        state.package_manifests[package.identity] = PackageManifest(
            package.identity,
            description=package.description,
            support_information=package.support_information,
            permanent=package.permanent,
            servicing_stack=servicing_stack,
        )
        commit_change(state, change, reboot=package.restart, when=to_iso(utc_now()))
    host.log.info("servicing installed %s%s", package.identity, ", restart required" if package.restart else "")
    return package.restart


def removable(state: HostState, package: InstalledPackage) -> bool:
    """Whether servicing may remove ``package`` by its KB, as wusa.exe does: neither permanent nor
    installed from a combined package, which holds the servicing stack."""
    manifest = state.package_manifests.get(package.identity)
    return manifest is None or not (manifest.permanent or manifest.servicing_stack)


def uninstall_package(state: HostState, package: InstalledPackage, when: str) -> bool:
    """Remove ``package`` now, or at the next restart when installing it needed one; returns whether
    it waits for that restart."""
    change = package_change(OPERATION_UNINSTALLATION, package)
    reboot = change.reboot_behavior == "AlwaysRequiresReboot"
    commit_change(state, change, reboot=reboot, when=when)
    return reboot
