"""Where each open lease is stored: leases are written a dispatch round at a time (ADR 0025).

A round's leases go into one *book*; the leases one step frees are recorded in one *ends* record. A book is
deleted once every lease in it has ended, and an ends record once every book it freed leases of is gone. So
the store holds a handful of documents per second however many calls start and end, and never deletes one
lease at a time (FerretDB deletes by id cost about half a millisecond each, `make bench-layouts`; a round
of 2,000 leases is one insert).

This module only keeps the bookkeeping; the dispatcher writes what it decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Freed:
    """What freeing some leases asks of the store, in this order: record the `ended` attempts (in an ends
    record referring to `pending`, when some of their books keep open leases), delete the `empty` books,
    then delete the ends records `unreferenced` (whose books are all gone)."""

    ended: tuple[str, ...]
    pending: frozenset[str]
    empty: frozenset[str]
    unreferenced: frozenset[str]


@dataclass
class LeaseBooks:
    open_in: dict[str, set[str]] = field(default_factory=dict)
    """Book id → attempt ids in it still open."""
    book_of: dict[str, str] = field(default_factory=dict)
    """Open attempt id → its book."""
    refers_to: dict[str, set[str]] = field(default_factory=dict)
    """Ends record id → the stored books it freed leases of."""

    def opened(self, book_id: str, attempt_ids: Iterable[str]) -> None:
        ids = set(attempt_ids)
        self.open_in.setdefault(book_id, set()).update(ids)
        for attempt_id in ids:
            self.book_of[attempt_id] = book_id

    def holds(self, attempt_id: str) -> bool:
        return attempt_id in self.book_of

    def free(self, attempt_ids: Iterable[str]) -> Freed:
        """Close these attempts' leases (unknown ones are ignored: already freed, or never booked)."""
        ended: list[str] = []
        touched: set[str] = set()
        for attempt_id in attempt_ids:
            book_id = self.book_of.pop(attempt_id, None)
            if book_id is None:
                continue
            self.open_in[book_id].discard(attempt_id)
            ended.append(attempt_id)
            touched.add(book_id)
        empty = frozenset(b for b in touched if not self.open_in[b])
        for book_id in empty:
            del self.open_in[book_id]
        return Freed(tuple(ended), frozenset(touched - empty), empty, self._drop_references(empty))

    def recorded(self, ends_id: str, pending: Iterable[str]) -> None:
        """An ends record was stored for books `pending` (the non-empty ones of a `Freed`)."""
        self.refers_to[ends_id] = set(pending)

    def restore_ends(self, ends_id: str, books: Iterable[str]) -> bool:
        """Take over a stored ends record; False when none of its books is still stored (delete it)."""
        live = {b for b in books if b in self.open_in}
        if live:
            self.refers_to[ends_id] = live
        return bool(live)

    def _drop_references(self, gone: frozenset[str]) -> frozenset[str]:
        if not gone:
            return frozenset()
        unreferenced: set[str] = set()
        for ends_id, books in self.refers_to.items():
            books -= gone
            if not books:
                unreferenced.add(ends_id)
        for ends_id in unreferenced:
            del self.refers_to[ends_id]
        return frozenset(unreferenced)
