"""A batch's progress as the CLI shows it, read from any of the API's shapes: the nested batch status
(`progress: {...}`), the flattened `/status`, or a progress event from the live stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TERMINAL_BATCH_STATES = frozenset({"completed", "cancelled", "failed"})
COUNTED_STATES = ("waiting", "active", "completed", "failed", "cancelled")


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class BatchProgress:
    """Counts per public call status and the batch's own status."""

    batch_id: str
    status: str
    total: int
    waiting: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    is_complete: bool = False

    @property
    def finished(self) -> bool:
        """No more change will come: the batch reached a final state."""
        return self.is_complete or self.status in TERMINAL_BATCH_STATES

    @property
    def done(self) -> int:
        """Calls that reached a final state."""
        return self.completed + self.failed + self.cancelled

    def count(self, state: str) -> int:
        value: int = getattr(self, state)
        return value

    @classmethod
    def from_body(cls, body: dict[str, Any], batch_id: str = "") -> BatchProgress | None:
        """Reads any shape carrying counts; None when `body` has none (e.g. a per-call event)."""
        counts: dict[str, Any] = body
        for nested in ("progress", "counts", "summary"):
            if isinstance(body.get(nested), dict):
                counts = {**body[nested], **{k: v for k, v in body.items() if k in ("status", "isComplete")}}
                break
        if not any(state in counts for state in ("waiting", "active", "completed", "failed")):
            return None
        status = str(body.get("status") or body.get("batchStatus") or counts.get("status") or "processing")
        total = _int(body.get("totalCalls") or counts.get("total") or counts.get("totalCalls"))
        return cls(
            batch_id=str(body.get("id") or body.get("batchId") or batch_id),
            status=status,
            total=total,
            waiting=_int(counts.get("waiting")),
            active=_int(counts.get("active")),
            completed=_int(counts.get("completed")),
            failed=_int(counts.get("failed")),
            cancelled=_int(counts.get("cancelled")),
            is_complete=bool(body.get("isComplete", counts.get("isComplete", False))),
        )
