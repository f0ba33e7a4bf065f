"""The bounded caches of converted images and sampled video frames, and their keys.

A conversation keeps its media in history and sends them again every turn; these caches
make a later turn reuse the work of the first instead of decoding the media again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LRU", "identity"]

V = TypeVar("V")


class LRU(Generic[V]):
    """A small thread-safe LRU, bounded by its number of entries and by ``size(value)``."""

    def __init__(self, max_entries: int, max_bytes: int, size: Callable[[V], int]) -> None:
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._max_entries, self._max_bytes, self._bytes = max_entries, max_bytes, 0
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._bytes += self._size(value)
            while self._items and (
                len(self._items) > self._max_entries or self._bytes > self._max_bytes
            ):
                _, old = self._items.popitem(last=False)
                self._bytes -= self._size(old)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)


def identity(source: str | os.PathLike[str] | bytes) -> Hashable:
    """What a medium is, for a cache key: its content digest, or a file's path, mtime and
    size (so an edited file is processed again). Raises ``OSError`` for a missing file."""
    if isinstance(source, bytes):
        return ("bytes", hashlib.blake2b(source, digest_size=20).digest())
    path = os.path.abspath(os.fspath(source))
    st = os.stat(path)
    return ("path", path, st.st_mtime_ns, st.st_size)
