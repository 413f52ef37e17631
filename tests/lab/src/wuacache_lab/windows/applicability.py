"""Whether an update applies to a host, the way WUA evaluates the catalog.

Two sources decide it: the prerequisites listed in package.xml (of which the
emulator models the processor-architecture detectoids) and the
``ApplicabilityRules/IsInstallable`` expression of each bundled child's core
fragment (``And``, ``Or``, ``Not``, ``WindowsVersion``, ``Processor``).
Language-specific children also need the host's display language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wuacache_lab.windows.profiles import OsProfile

# Microsoft's detectoids for "x64-based systems", "x86-based systems" and the
# catalog's ARM64 one.
ARCHITECTURE_DETECTOIDS = {
    "59653007-e2e9-4f71-8525-2ff588527978": "x64",
    "aabd43ad-a183-4f0b-8eee-8dbbcd67687f": "x86",
    "1a7d0b5e-4f6f-4f56-b3f2-0b5a0f2d1e5c": "arm64",
}


@dataclass(frozen=True)
class Rule:
    """One element of an applicability expression."""

    kind: str
    attributes: tuple[tuple[str, str], ...] = ()
    children: tuple[Rule, ...] = ()

    @classmethod
    def from_element(cls, element: Any) -> Rule:
        """Build from an lxml element of a core fragment."""
        return cls(
            kind=element.tag,
            attributes=tuple(sorted(element.attrib.items())),
            children=tuple(cls.from_element(child) for child in element if isinstance(child.tag, str)),
        )

    def attribute(self, name: str) -> str | None:
        return dict(self.attributes).get(name)


def rule_applies(rule: Rule, profile: OsProfile) -> bool:
    if rule.kind == "And":
        return all(rule_applies(child, profile) for child in rule.children)
    if rule.kind == "Or":
        return any(rule_applies(child, profile) for child in rule.children)
    if rule.kind == "Not":
        return not rule_applies(rule.children[0], profile)
    if rule.kind == "WindowsVersion":
        return _windows_version_applies(rule, profile)
    if rule.kind == "Processor":
        return int(rule.attribute("Architecture") or -1) == profile.processor_architecture
    raise NotImplementedError(f"the emulated WUA does not evaluate {rule.kind} applicability rules")


def _windows_version_applies(rule: Rule, profile: OsProfile) -> bool:
    product_type = rule.attribute("ProductType")
    if product_type is not None and int(product_type) != profile.product_type:
        return False
    # Compare only the leading components the rule names (Major, Minor, Build).
    wanted: list[int] = []
    actual: list[int] = []
    host_version = (profile.major_version, profile.minor_version, profile.build)
    for name, value in zip(("MajorVersion", "MinorVersion", "BuildNumber"), host_version, strict=True):
        text = rule.attribute(name)
        if text is None:
            break
        wanted.append(int(text))
        actual.append(value)
    comparison = rule.attribute("Comparison") or "EqualTo"
    comparisons = {
        "EqualTo": actual == wanted,
        "GreaterThan": actual > wanted,
        "GreaterThanOrEqualTo": actual >= wanted,
        "LessThan": actual < wanted,
        "LessThanOrEqualTo": actual <= wanted,
    }
    try:
        return comparisons[comparison]
    except KeyError:
        raise NotImplementedError(f"unknown WindowsVersion comparison {comparison!r}") from None


def prerequisites_met(groups: tuple[tuple[str, ...], ...], profile: OsProfile) -> bool:
    """Every group needs one member that applies. Only architecture
    detectoids are modelled; any other prerequisite counts as met."""
    return all(any(_prerequisite_met(update_id, profile) for update_id in group) for group in groups)


def _prerequisite_met(update_id: str, profile: OsProfile) -> bool:
    architecture = ARCHITECTURE_DETECTOIDS.get(update_id.lower())
    return architecture is None or architecture == profile.architecture


def language_matches(languages: tuple[str, ...], profile: OsProfile) -> bool:
    """A language-specific update (``Languages/Language/@Name`` such as
    ``fr``) needs that display language; others apply to every host."""
    if not languages:
        return True
    installed = {tag.casefold() for tag in profile.display_languages}
    installed |= {tag.split("-")[0] for tag in installed}
    return any(language.casefold() in installed for language in languages)
