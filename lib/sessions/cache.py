"""A process-local cache of the lists a RedisStore has read, so a turn fetches only what was appended since.

Each cached list remembers the session's ``epoch`` and the absolute position of its first entry. The
read script compares them with the server's and sends either the new tail or, when the cached prefix
can no longer be trusted (a clear, an LTRIM past what we hold, a re-created session), the whole list.
Entries are decoded once, as read-only StoredDicts, and handed out without copying: a turn at 5,000
messages then costs about what it costs at 10. Corrupt entries stay as ``None`` so positions line up.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from lib.sessions.base import StoredDict

Entry = StoredDict | None


@dataclass(frozen=True)
class CachedList:
    epoch: str
    first: int  # absolute position of entries[0]
    entries: tuple[Entry, ...]
    shown: tuple[StoredDict, ...]  # the entries without the corrupt ones, kept so a read need not filter

    @property
    def end(self) -> int:
        return self.first + len(self.entries)

    def extended(self, *, epoch: str, first: int, start: int, new: list[Entry]) -> CachedList:
        """The list after a read: ``start`` > 0 means ``new`` continues what we hold (minus any trimmed head)."""
        added = tuple(entry for entry in new if entry is not None)
        if start == 0:
            return CachedList(epoch, first, tuple(new), added)
        dropped = self.entries[: first - self.first]  # trimmed by the cap since we last read
        hidden = sum(entry is not None for entry in dropped)
        return CachedList(epoch, first, self.entries[len(dropped):] + tuple(new), self.shown[hidden:] + added)


EMPTY = CachedList("", 0, (), ())


class ListCache:
    """LRU of CachedList by (session id, part), bounded so a long-running app does not grow without end."""

    def __init__(self, *, max_lists: int = 256) -> None:
        self.max_lists = max_lists
        self._lists: OrderedDict[tuple[str, str], CachedList] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str, part: str) -> CachedList:
        with self._lock:
            cached = self._lists.get((session_id, part))
            if cached is None:
                return EMPTY
            self._lists.move_to_end((session_id, part))
            return cached

    def put(self, session_id: str, part: str, cached: CachedList) -> None:
        with self._lock:
            self._lists[(session_id, part)] = cached
            self._lists.move_to_end((session_id, part))
            while len(self._lists) > self.max_lists:
                self._lists.popitem(last=False)

    def append_own(self, session_id: str, part: str, *, epoch: str, end: int, entry: Entry) -> bool:
        """Add an entry this process just wrote at absolute position ``end``, when the cached list of ``epoch``
        ends right there (so the server's list is exactly the cached one plus this entry); True when added."""
        with self._lock:
            cached = self._lists.get((session_id, part))
            if cached is None or not epoch or cached.epoch != epoch or cached.end != end:
                return False
            self._lists[(session_id, part)] = cached.extended(epoch=epoch, first=cached.first,
                                                              start=len(cached.entries), new=[entry])
            self._lists.move_to_end((session_id, part))
            return True

    def forget(self, session_id: str) -> None:
        with self._lock:
            for key in [key for key in self._lists if key[0] == session_id]:
                del self._lists[key]


def visible(cached: CachedList) -> list[dict[str, Any]]:
    """The entries a caller sees, corrupt ones skipped: a new list of the (read-only) cached entries."""
    return list(cached.shown)
