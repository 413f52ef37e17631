"""Microsoft's offline update catalog (``wsusscn2.cab``): reading it into records."""

from __future__ import annotations

from wuacache_server.catalog.errors import CatalogFormatError
from wuacache_server.catalog.parser import DEFAULT_BATCH_SIZE, CatalogSink, ParsedCatalog, parse_catalog
from wuacache_server.catalog.records import (
    FRAGMENT_FIELDS,
    BundleMemberRecord,
    CatalogInfo,
    CategoryRecord,
    ChildFileRecord,
    PayloadFileRecord,
    SupersedenceRecord,
    UpdateKind,
    UpdateRecord,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "FRAGMENT_FIELDS",
    "BundleMemberRecord",
    "CatalogFormatError",
    "CatalogInfo",
    "CatalogSink",
    "CategoryRecord",
    "ChildFileRecord",
    "ParsedCatalog",
    "PayloadFileRecord",
    "SupersedenceRecord",
    "UpdateKind",
    "UpdateRecord",
    "parse_catalog",
]
