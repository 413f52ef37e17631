"""How the lab's COM objects are shaped, so that a script sees what Windows documents.

The Windows Update Agent (:mod:`.wua`) and the Task Scheduler (:mod:`.taskscheduler`)
are Python classes standing for COM objects. Each such class follows the interface
the contract tables (``wuacache_lab.powershell.contracts``, ``com.json``) hold for it:

- ``__com_interface__`` names the most-derived interface a script sees on the real
  object (``"IUpdate5"`` for an update a search returns); members of the interfaces
  it derives from belong to it too.
- Members carry the SDK's names, in its case. A property is a Python property, with a
  setter only when the interface has a put accessor, or a dataclass field (of a frozen
  dataclass when read-only); a read/write property may also be a plain attribute.
- A method takes the documented ``[in]`` parameters positionally, the
  ``[in, optional]`` ones with defaults, and returns its ``[out, retval]``.
- An indexed property (a collection's ``Item``) is a method taking its index; setting
  one is not modelled. ``_NewEnum`` is Python iteration.
- Everything else on the class is private: a leading underscore, or off the class.

Collections are one subclass of :class:`ComCollection` per collection interface, so
that each instance says which interface it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar, Generic, TypeVar

from wuacache_lab.windows.errors import COMError

T = TypeVar("T")


class ComCollection(Generic[T]):
    """A read-only COM collection: ``Count``, ``Item(index)`` and enumeration.

    Subclasses name their interface and say where their indexes start and which
    HRESULT an index outside the collection fails with.
    """

    __com_interface__: ClassVar[str]
    _index_base: ClassVar[int]
    _invalid_index: ClassVar[int]

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items = list(items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, position: int) -> T:
        """Python's 0-based access, for the lab's own callers; scripts use ``Item``."""
        return self._items[position]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"

    @property
    def Count(self) -> int:
        return len(self._items)

    def Item(self, index: int) -> T:
        position = index - self._index_base
        if not 0 <= position < len(self._items):
            raise COMError(self._invalid_index)
        return self._items[position]
