"""Deterministic ids: a replay after a crash produces the same attempt ids and event ids, so status (which
dedupes by event id) and the dialer (which claims attempt ids) see each fact once."""

from __future__ import annotations

from uuid import UUID, uuid5

_NAMESPACE = UUID("6f1c1d52-4f0e-4c0a-9a57-6b1d0c9e2a10")


def attempt_id(contact_id: str, attempt_number: int) -> str:
    return f"{contact_id}_a{attempt_number}"


def event_id(*parts: object) -> UUID:
    """A UUID that is a function of what the event is about (`batch id`, `kind`, ...)."""
    return uuid5(_NAMESPACE, ":".join(str(p) for p in parts))
