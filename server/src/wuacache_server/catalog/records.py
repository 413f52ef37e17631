"""What the catalog parser produces: plain records, one per row a caller stores.

Updates are keyed by RevisionId, the catalog's cross-reference key; payload
files by their digest, the base64 SHA-1 that is also their FileLocation Id.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class UpdateKind(enum.StrEnum):
    BUNDLE = "bundle"
    """Deployable: what WUA's search returns; owns no files."""
    CHILD = "child"
    """Bundled by a bundle (one per architecture); owns the payload files."""
    CATEGORY = "category"
    """A Company, ProductFamily, Product or UpdateClassification."""
    DETECTOID = "detectoid"
    """Evaluated by WUA as a prerequisite (architectures, for example)."""
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    """Identity of one publication of the catalog."""

    package_id: str
    package_version: str | None
    creation_date: datetime
    sha256: str
    """Hex SHA-256 of the outer cab."""


@dataclass(frozen=True, slots=True)
class UpdateRecord:
    """One ``Update`` of package.xml with what its fragments say.

    ``product_id`` and ``classification_id`` are the first Product and
    UpdateClassification among the update's categories (bundles only carry
    categories). The fields named in :data:`FRAGMENT_FIELDS` come from the
    revision's fragments: when ``fragments_read`` is false (its fragment cab
    was skipped as unchanged) they hold placeholders and the caller keeps
    the values it stored for this revision.
    """

    update_id: str
    revision_number: int
    revision_id: int
    kind: UpdateKind
    title: str
    description: str
    kb_ids: tuple[str, ...]
    msrc_severity: str | None
    product_id: str | None
    classification_id: str | None
    creation_date: datetime
    """``Update/@CreationDate``: WUA's LastDeploymentChangeTime, UTC."""
    reboot_behavior: str | None
    min_download_size: int | None
    max_download_size: int | None
    languages: tuple[str, ...]
    fragments_read: bool = True


FRAGMENT_FIELDS = frozenset(
    {
        "kind",
        "title",
        "description",
        "kb_ids",
        "msrc_severity",
        "reboot_behavior",
        "min_download_size",
        "max_download_size",
    }
)
"""Fields of :class:`UpdateRecord` that only a revision's fragments give
(``kind`` can tell a bundle or a child without them, not a category or a
detectoid)."""


@dataclass(frozen=True, slots=True)
class CategoryRecord:
    """A category update: its type from its ``c\\`` fragment, its name (the
    ``ICategory.Name`` WUA reports) from its English title."""

    update_id: str
    category_type: str | None
    name: str


@dataclass(frozen=True, slots=True)
class BundleMemberRecord:
    """A child of a bundle; ``position`` follows the bundle's ``c\\`` fragment."""

    bundle_revision_id: int
    child_revision_id: int
    position: int


@dataclass(frozen=True, slots=True)
class SupersedenceRecord:
    superseded_revision_id: int
    superseding_revision_id: int


@dataclass(frozen=True, slots=True)
class PayloadFileRecord:
    """A FileLocation: what the server may download, and what it must hash to.

    ``file_name``, ``size`` and ``sha256_b64`` come from the ``x\\``
    fragment of a child that owns the file; ``file_name`` falls back to the
    URL's last path segment, and is None when neither is a plain file name.
    When ``fragments_read`` is false, a fragment cab that may describe the
    file was skipped as unchanged: the caller keeps the values it stored.
    """

    sha1_b64: str
    url: str
    file_name: str | None
    size: int | None
    sha256_b64: str | None
    fragments_read: bool = True


@dataclass(frozen=True, slots=True)
class ChildFileRecord:
    """A payload file a child update owns (``PayloadFiles/File``)."""

    child_revision_id: int
    sha1_b64: str
