"""Operating systems an emulated host can run.

A profile holds what Windows itself would report about an installation
(``Win32_OperatingSystem``, the ``CurrentVersion`` registry key, the Windows
Update Agent's version) and what the catalog's applicability rules test
(version, product type, processor architecture, display language).
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1024**3

# Win32_Processor.Architecture, the value applicability rules compare with.
PROCESSOR_ARCHITECTURES = {"x86": 0, "x64": 9, "arm64": 12}
# Win32_OperatingSystem.OSArchitecture as Windows words it.
OS_ARCHITECTURES = {"x86": "32-bit", "x64": "64-bit", "arm64": "ARM 64-bit Processor"}
# %PROCESSOR_ARCHITECTURE% of a native process.
ENVIRONMENT_ARCHITECTURES = {"x86": "x86", "x64": "AMD64", "arm64": "ARM64"}
# Win32_OperatingSystem.OSLanguage (LCID) of the display languages used here.
LANGUAGE_LCIDS = {"en-US": 1033, "fr-FR": 1036}
# Schannel supports TLS 1.3, enabled by default, from Windows Server 2022 (build 20348) and Windows 11
# on ("Protocols in TLS/SSL (Schannel SSP)", MicrosoftDocs/win32,
# desktop-src/SecAuthN/protocols-in-tls-ssl--schannel-ssp-.md); Windows 10 does not support it.
FIRST_TLS13_BUILD = 20348


@dataclass(frozen=True)
class OsProfile:
    name: str
    caption: str
    version: str
    ubr: int
    product_type: int  # 1 workstation, 3 server
    architecture: str  # x86, x64 or arm64
    wua_version: str
    display_languages: tuple[str, ...] = ("en-US",)
    disk_size_bytes: int = 127 * GiB
    disk_used_bytes: int = 38 * GiB  # taken by Windows itself

    @property
    def major_version(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def minor_version(self) -> int:
        return int(self.version.split(".")[1])

    @property
    def build(self) -> int:
        return int(self.version.split(".")[2])

    @property
    def edition_id(self) -> str:
        """The ``EditionID`` of the CurrentVersion key, which Setup matches with an image's."""
        return "Professional" if self.product_type == 1 else "ServerStandard"

    @property
    def processor_architecture(self) -> int:
        return PROCESSOR_ARCHITECTURES[self.architecture]

    @property
    def os_architecture(self) -> str:
        return OS_ARCHITECTURES[self.architecture]

    @property
    def environment_architecture(self) -> str:
        return ENVIRONMENT_ARCHITECTURES[self.architecture]

    @property
    def os_language(self) -> int:
        return LANGUAGE_LCIDS[self.display_languages[0]]

    @property
    def supports_tls13(self) -> bool:
        return self.build >= FIRST_TLS13_BUILD


_WIN10 = OsProfile(
    name="win10-22h2",
    caption="Microsoft Windows 10 Pro",
    version="10.0.19045",
    ubr=3930,
    product_type=1,
    architecture="x64",
    wua_version="10.0.19041.3996",
)
_WIN11 = OsProfile(
    name="win11-23h2",
    caption="Microsoft Windows 11 Pro",
    version="10.0.22631",
    ubr=3007,
    product_type=1,
    architecture="x64",
    wua_version="10.0.22621.3007",
)
_SERVER2019 = OsProfile(
    name="server2019",
    caption="Microsoft Windows Server 2019 Standard",
    version="10.0.17763",
    ubr=5329,
    product_type=3,
    architecture="x64",
    wua_version="10.0.17763.5329",
)
_SERVER2022 = OsProfile(
    name="server2022",
    caption="Microsoft Windows Server 2022 Standard",
    version="10.0.20348",
    ubr=2227,
    product_type=3,
    architecture="x64",
    wua_version="10.0.20348.2227",
)

# What Windows 11 23H2 hosts can be upgraded to.
_WIN11_24H2 = OsProfile(
    name="win11-24h2",
    caption="Microsoft Windows 11 Pro",
    version="10.0.26100",
    ubr=1742,
    product_type=1,
    architecture="x64",
    wua_version="10.0.26100.1742",
)

PROFILES: dict[str, OsProfile] = {
    profile.name: profile
    for profile in (
        _WIN10,
        _WIN11,
        _WIN11_24H2,
        _SERVER2019,
        _SERVER2022,
        OsProfile(
            name="win10-22h2-x86",
            caption=_WIN10.caption,
            version=_WIN10.version,
            ubr=_WIN10.ubr,
            product_type=1,
            architecture="x86",
            wua_version=_WIN10.wua_version,
            disk_size_bytes=64 * GiB,
            disk_used_bytes=24 * GiB,
        ),
        OsProfile(
            name="win11-23h2-arm64",
            caption=_WIN11.caption,
            version=_WIN11.version,
            ubr=_WIN11.ubr,
            product_type=1,
            architecture="arm64",
            wua_version=_WIN11.wua_version,
        ),
        OsProfile(
            name="win10-22h2-fr",
            caption="Microsoft Windows 10 Professionnel",
            version=_WIN10.version,
            ubr=_WIN10.ubr,
            product_type=1,
            architecture="x64",
            wua_version=_WIN10.wua_version,
            display_languages=("fr-FR",),
        ),
    )
}

# ``--profile mixed``: every x64 OS first, so that even a small lab covers the
# four releases, then the other architectures and languages, and last the
# release the others are upgraded to.
MIXED = "mixed"
MIXED_ROTATION = (
    "win10-22h2",
    "win11-23h2",
    "server2019",
    "server2022",
    "win10-22h2-x86",
    "win11-23h2-arm64",
    "win10-22h2-fr",
    "win11-24h2",
)


def get_profile(name: str) -> OsProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown OS profile {name!r}; choose one of {', '.join(PROFILES)} or {MIXED!r}") from None


def profile_for(index: int, mix: str) -> OsProfile:
    """The profile of the ``index``-th host (from 0) of a lab built with ``mix``:
    a profile name, or ``mixed`` for a round robin over :data:`MIXED_ROTATION`."""
    if mix == MIXED:
        return PROFILES[MIXED_ROTATION[index % len(MIXED_ROTATION)]]
    return get_profile(mix)


def profile_mix(mix: str, count: int) -> list[str]:
    """The profile names of the first ``count`` hosts of a lab built with ``mix``."""
    if mix != MIXED:
        get_profile(mix)
    return [profile_for(index, mix).name for index in range(count)]
