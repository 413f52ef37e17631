"""Synthetic servicing packages and upgrade media, laid out as Microsoft's.

- :func:`build_cbs_cab`: a servicing package, the cabinet ``dism /Add-Package``
  takes, holding ``update.mum``;
- :func:`build_msu`: a Microsoft Update Standalone Package, the cabinet
  ``wusa.exe`` takes, holding that package as ``<name>.cab``, ``WSUSSCAN.cab``,
  ``<name>-pkgProperties.txt`` and ``<name>.xml``; or a combined package,
  whose ``<name>.cab`` is the cumulative update (``Package_for_RollupFix``)
  and which also holds the servicing stack update, ``SSU-<version>-<arch>.cab``;
- :func:`build_upgrade_media`: the content of a Windows installation ISO as
  far as Windows Setup reads it, ``setup.exe`` and ``sources\\install.wim``.

A package targets the release and architecture of an OS profile, whose
Foundation package becomes its parent (the emulated servicing stack's
applicability rule, :mod:`wuacache_lab.windows.cbs`).
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

from cabarchive import CabArchive, CabFile

from wuacache_lab.windows import wim
from wuacache_lab.windows.cbs import (
    ASSEMBLY_NAMESPACE,
    CBS_ARCHITECTURES,
    FOUNDATION_PACKAGE,
    MANIFEST,
    PUBLIC_KEY_TOKEN,
    foundation_version,
)
from wuacache_lab.windows.profiles import OsProfile, get_profile

# What a Windows executable starts with; the emulated host never runs its code.
SETUP_STUB = b"MZ" + b"\0" * 62 + b"Windows Setup (lab)\r\n"


def build_cbs_cab(path: Path, *, kb: str, target: str | OsProfile = "win10-22h2", restart: bool = True) -> Path:
    """Write the servicing package of ``kb`` for ``target`` to ``path``.

    ``restart``: whether installing it needs a restart, as cumulative updates do.
    """
    path.write_bytes(_cabinet({MANIFEST: _manifest(kb, _profile(target), restart)}))
    return path


def build_msu(
    path: Path,
    *,
    kb: str,
    target: str | OsProfile = "win10-22h2",
    restart: bool = True,
    servicing_stack_kb: str | None = None,
) -> Path:
    """Write the .msu of ``kb`` for ``target`` to ``path``; its members are
    named after the package, as Microsoft names them (``Windows10.0-KB<kb>-x64``).

    ``servicing_stack_kb``: make it a combined package, a cumulative update
    with the servicing stack update of that KB.
    """
    profile = _profile(target)
    architecture = {"x86": "x86", "x64": "x64", "arm64": "arm64"}[profile.architecture]
    name = f"Windows{profile.major_version}.{profile.minor_version}-KB{kb}-{architecture}"
    members = {}
    package_name = f"Package_for_KB{kb}" if servicing_stack_kb is None else "Package_for_RollupFix"
    package = _cabinet({MANIFEST: _manifest(kb, profile, restart, package_name=package_name)})
    if servicing_stack_kb is not None:
        # Named after the servicing stack's version, as Microsoft names it (SSU-19041.3570-x64.cab).
        servicing_stack = _manifest(
            servicing_stack_kb, profile, False, package_name=f"Package_for_ServicingStack_{profile.ubr + 1}", permanent=True
        )
        members[f"SSU-{profile.build}.{profile.ubr + 1}-{architecture}.cab"] = _cabinet({MANIFEST: servicing_stack})
    properties = "".join(
        f'{key}="{value}"\r\n'
        for key, value in (
            ("ApplicabilityInfo", f"Windows {profile.major_version}.{profile.minor_version};"),
            ("Applies to", profile.caption.removeprefix("Microsoft ")),
            ("Build Date", "2024/01/05"),
            ("Company", "Microsoft Corporation"),
            ("File Version", "10"),
            ("Installation Type", "Factory"),
            ("Installer Engine", "Component Based Servicing"),
            ("Installer Version", "6.0"),
            ("KB Article Number", kb),
            ("Language", "ALL"),
            ("Package Type", "Update"),
            ("Processor Architecture", CBS_ARCHITECTURES[profile.architecture]),
            ("Product Name", f"Windows {profile.major_version}.{profile.minor_version}"),
            ("Support Link", f"https://support.microsoft.com/help/{kb}"),
        )
    )
    unattend = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<unattend xmlns="urn:schemas-microsoft-com:unattend"><servicing>'
        f'<package action="install"><assemblyIdentity name="{package_name}" '
        f'version="{_package_version(profile)}" language="neutral" '
        f'processorArchitecture="{CBS_ARCHITECTURES[profile.architecture]}" publicKeyToken="{PUBLIC_KEY_TOKEN}"/>'
        f'<source location="%configsetroot%\\{name}.cab"/></package>'
        "</servicing></unattend>\n"
    )
    # WUSA's own offline scan of the package; the emulated wusa reads the manifest instead.
    scan = _cabinet({"package.xml": b'<?xml version="1.0" encoding="utf-8"?><OfflineSyncPackage/>\n'})
    path.write_bytes(
        _cabinet(
            {
                "WSUSSCAN.cab": scan,
                **members,
                f"{name}.cab": package,
                f"{name}-pkgProperties.txt": properties.encode("utf-16"),
                f"{name}.xml": unattend.encode(),
            }
        )
    )
    return path


def build_upgrade_media(folder: Path, *, target_profile: str) -> Path:
    """Write ``setup.exe`` and ``sources\\install.wim`` of an installation
    ISO of ``target_profile`` into ``folder`` (on a host's disk: see
    ``HostDisk.path``); returns the path of ``setup.exe``."""
    profile = get_profile(target_profile)
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    (folder / "sources" / "install.wim").write_bytes(wim.build_wim([wim.WimImage.of(profile)]))
    setup = folder / "setup.exe"
    setup.write_bytes(SETUP_STUB)
    return setup


def _profile(target: str | OsProfile) -> OsProfile:
    return get_profile(target) if isinstance(target, str) else target


def _package_version(profile: OsProfile) -> str:
    return f"{profile.build}.{profile.ubr + 1}.1.1"


def _manifest(kb: str, profile: OsProfile, restart: bool, *, package_name: str | None = None, permanent: bool = False) -> bytes:
    """``update.mum``: the package is ``Package_for_KB<kb>`` unless named otherwise; its assembly's
    description and support information name the KB, as Microsoft's do."""
    architecture = CBS_ARCHITECTURES[profile.architecture]
    common = f'language="neutral" processorArchitecture="{architecture}" publicKeyToken="{PUBLIC_KEY_TOKEN}" buildType="release"'
    permanence = ' permanence="permanent"' if permanent else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<assembly xmlns="{ASSEMBLY_NAMESPACE}" manifestVersion="1.0" description={quoteattr("Fix for KB" + kb)} '
        'displayName="default" company="Microsoft Corporation" '
        'copyright="Copyright (c) Microsoft Corporation. All Rights Reserved." '
        f'supportInformation={quoteattr("https://support.microsoft.com/help/" + kb)}>\n'
        f'  <assemblyIdentity name="{package_name or "Package_for_KB" + kb}" version="{_package_version(profile)}" {common}/>\n'
        f'  <package identifier={quoteattr("KB" + kb)} releaseType="Update" restart="{"required" if restart else "possible"}"{permanence}>\n'
        '    <parent buildCompare="EQ" revisionCompare="GE" integrate="separate" disposition="detect">\n'
        f'      <assemblyIdentity name="{FOUNDATION_PACKAGE}" version="{foundation_version(profile)}" {common}/>\n'
        "    </parent>\n"
        "  </package>\n"
        "</assembly>\n"
    ).encode()


def _cabinet(members: dict[str, bytes]) -> bytes:
    archive = CabArchive()
    for name, content in members.items():
        archive[name] = CabFile(content)
    return archive.save(compress=True)
