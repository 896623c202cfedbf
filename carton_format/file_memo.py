"""What work on an unchanged file may reuse, and how a file is known to be unchanged.

The one place for per-file memos (:class:`Memo` keyed by :func:`file_identity`): the reader's
parsed zip directory and metadata, and in the runtime an AOTI package's metadata and the hashes
of local files a python model's requirements name.  A model server opens the same ``.carton`` on every load; parsing its end records, central
directory, MANIFEST, carton.toml and index.toml each time is most of a warm load of a small
model.  The memo keeps those results per *file identity*, read with ``fstat`` from the file
actually opened: device, inode, size, mtime and ctime.  Any write changes ctime (which no
user can set back) and a replaced file has another inode, so a changed file is parsed again.
Timestamps are coarse (a few ms on Linux, whole seconds elsewhere): a file changed within
:data:`SETTLE_NS` of now could change again under the same timestamps, so it is neither
looked up nor stored (git's "racily clean" rule).  Members are still verified against MANIFEST
whenever they are read; the memo only skips re-deriving what the same bytes gave before.
Bounded: :data:`MAX_ITEMS` files, none with more than :data:`MAX_MEMBERS` members.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from typing import Any, Generic, Hashable, TypeVar

#: A file changed less than this long ago is not memoised (2 s: whole-second timestamps).
SETTLE_NS = 2_000_000_000
#: Files remembered per memo (least recently used dropped first).
MAX_ITEMS = 32
#: Archives with more members than this are parsed each time (the memo stays small).
MAX_MEMBERS = 4096

T = TypeVar("T")


def file_identity(file: int | str | os.PathLike[str]) -> tuple[int, int, int, int, int] | None:
    """(device, inode, size, mtime, ctime) of an open file (a descriptor: the file actually read)
    or a path, or None when it is not a regular file or changed too recently to be told apart
    from a later change."""
    try:
        st = os.stat(file)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < SETTLE_NS:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Memo(Generic[T]):
    """A small thread-safe LRU map from a key (a file identity and what else the value depends
    on) to an immutable value."""

    def __init__(self, max_items: int = MAX_ITEMS) -> None:
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def get(self, key: Hashable | None) -> T | None:
        """The value for ``key`` (None for a missing key, or a None key: a file not to memoise)."""
        if key is None:
            return None
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable | None, value: T) -> None:
        """Remember ``value`` (nothing for a None key), dropping the least recently used beyond the bound."""
        if key is None:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._items.clear()


def copy_plain(value: Any) -> Any:
    """A copy of a parsed TOML document (dicts, lists, scalars) that a caller may change freely."""
    if isinstance(value, dict):
        return {k: copy_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_plain(v) for v in value]
    return value


__all__ = ["MAX_MEMBERS", "Memo", "SETTLE_NS", "copy_plain", "file_identity"]
