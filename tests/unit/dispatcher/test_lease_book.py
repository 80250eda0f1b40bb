"""Lease books (ADR 0025): what the store holds always gives back exactly the open leases, and shrinks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.domain.lease_book import LeaseBooks


class StoredBooks:
    """Applies what `LeaseBooks` asks, as the dispatcher does, to a dictionary standing for the store."""

    def __init__(self) -> None:
        self.books: dict[str, set[str]] = {}
        self.ends: dict[str, tuple[set[str], set[str]]] = {}
        self.memory = LeaseBooks()
        self._ids = 0

    def _id(self) -> str:
        self._ids += 1
        return f"id{self._ids}"

    def open(self, attempt_ids: list[str]) -> None:
        book_id = self._id()
        self.books[book_id] = set(attempt_ids)
        self.memory.opened(book_id, attempt_ids)

    def free(self, attempt_ids: list[str]) -> None:
        freed = self.memory.free(attempt_ids)
        if freed.pending:
            ends_id = self._id()
            self.ends[ends_id] = (set(freed.ended), set(freed.pending))
            self.memory.recorded(ends_id, freed.pending)
        for book_id in freed.empty:
            del self.books[book_id]
        for ends_id in freed.unreferenced:
            del self.ends[ends_id]

    def open_in_store(self) -> set[str]:
        ended = {a for attempt_ids, _ in self.ends.values() for a in attempt_ids}
        return {a for attempt_ids in self.books.values() for a in attempt_ids} - ended


def test_a_round_is_one_book_freed_by_ends_records_then_deleted() -> None:
    s = StoredBooks()
    s.open(["a1", "a2", "a3"])
    s.free(["a1"])
    assert s.open_in_store() == {"a2", "a3"} and len(s.ends) == 1
    s.free(["a2", "a3", "unknown"])
    assert s.books == {} and s.ends == {}  # the book went with its last lease, the record with its book
    assert s.memory.open_in == {} and s.memory.refers_to == {}


def test_an_ends_record_stays_while_any_book_it_freed_leases_of_is_stored() -> None:
    s = StoredBooks()
    s.open(["a1", "a2"])
    s.open(["b1", "b2"])
    s.free(["a1", "b1"])  # one record for both books
    s.free(["a2"])
    assert list(s.books) == ["id2"] and len(s.ends) == 1  # still frees b1
    s.free(["b2"])
    assert s.books == {} and s.ends == {}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 40), max_size=8)), max_size=60))
def test_the_store_always_holds_exactly_the_open_leases_and_nothing_spent(
    steps: list[tuple[bool, list[int]]],
) -> None:
    s = StoredBooks()
    opened: set[str] = set()
    ever: set[str] = set()
    for is_open, numbers in steps:
        ids = [f"a{n}" for n in numbers]
        if is_open:
            # An attempt is leased once (a replayed one is found in the attempts and freed at once).
            new = sorted(set(ids) - ever)
            if new:
                s.open(new)
                opened |= set(new)
                ever |= set(new)
        else:
            s.free(ids)
            opened -= set(ids)
        assert s.open_in_store() == opened
        assert all(s.books[b] - {a for e, _ in s.ends.values() for a in e} for b in s.books)  # none spent
        assert all(books & set(s.books) for _, books in s.ends.values())  # every record still frees one


def test_a_new_owner_keeps_the_records_that_free_a_stored_book() -> None:
    memory = LeaseBooks()
    memory.opened("book1", ["a2"])
    assert memory.restore_ends("ends1", ["book1", "gone"]) is True
    assert memory.restore_ends("ends2", ["gone"]) is False
    freed = memory.free(["a2"])
    assert freed.empty == {"book1"} and freed.unreferenced == {"ends1"}
