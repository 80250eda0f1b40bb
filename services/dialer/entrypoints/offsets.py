"""Which Kafka offsets may be committed while many messages of a partition are handled at once.

A partition's committable position is its lowest offset still being handled (everything before it is
done), or one past the highest offset seen when nothing is pending. Committing that never skips a message
whose handling has not finished.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(slots=True)
class _Partition:
    pending: set[int] = field(default_factory=set)
    next_offset: int = -1
    committed: int = -1


class OffsetTracker(Generic[P]):
    """Tracks handled offsets per partition; knows what can be committed."""

    def __init__(self) -> None:
        self._partitions: dict[P, _Partition] = {}

    @property
    def in_flight(self) -> int:
        return sum(len(p.pending) for p in self._partitions.values())

    def started(self, partition: P, offset: int) -> None:
        state = self._partitions.get(partition)
        if state is None:  # not `setdefault`: that would build a state per message
            state = self._partitions[partition] = _Partition()
        state.pending.add(offset)
        if offset >= state.next_offset:
            state.next_offset = offset + 1

    def finished(self, partition: P, offset: int) -> None:
        state = self._partitions.get(partition)
        if state is not None:  # a partition revoked meanwhile is forgotten
            state.pending.discard(offset)

    def committable(self, partitions: Iterable[P] | None = None) -> dict[P, int]:
        """Positions to commit that moved since the last `mark_committed`, per partition."""
        chosen = (
            self._partitions
            if partitions is None
            else {p: self._partitions[p] for p in partitions if p in self._partitions}
        )
        positions: dict[P, int] = {}
        for partition, state in chosen.items():
            position = min(state.pending) if state.pending else state.next_offset
            if position > state.committed:
                positions[partition] = position
        return positions

    def mark_committed(self, positions: dict[P, int]) -> None:
        for partition, position in positions.items():
            state = self._partitions.get(partition)
            if state is not None:
                state.committed = max(state.committed, position)

    def forget(self, partitions: Iterable[P]) -> None:
        """Drop revoked partitions: their next owner takes over from the last commit."""
        for partition in partitions:
            self._partitions.pop(partition, None)
