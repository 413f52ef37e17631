"""The one error reading a catalog can end in."""

from __future__ import annotations


class CatalogFormatError(ValueError):
    """The file is not a readable ``wsusscn2.cab`` catalog.

    Raised for anything wrong with the content (a missing member, malformed
    or unexpected XML, an attribute that does not parse), never for a
    problem of the machine reading it.
    """
