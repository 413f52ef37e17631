"""A synthetic, signed, format-faithful ``wsusscn2.cab`` and its payloads."""

from __future__ import annotations

from wuacache_lab.catalog.writer import CatalogSummary, InnerCab, generate_catalog

__all__ = ["CatalogSummary", "InnerCab", "generate_catalog"]
