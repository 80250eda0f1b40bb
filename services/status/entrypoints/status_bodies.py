"""The polling bodies (`GET .../{id}` and `.../{id}/status`), rendered once per batch document.

A dashboard polls these every second, often hundreds at a time, while a batch document changes a few times
a second at most. So each body is built and validated once per document the API holds, then every poll
only stamps its `timestamp` and serialises a plain dict. The ETag names the body without its timestamp
(weak: two bodies that differ only in `timestamp` are the same state), so a poller that sends it back in
`If-None-Match` gets a bodiless 304 until the batch changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import Response
from pydantic import BaseModel

from status.domain.batches import BatchView
from status.entrypoints import schemas

_KEEP = 10_000
"""Batches whose bodies are kept (each a few kilobytes); past that the memo starts over."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """One body, less its per-request timestamp."""

    etag: str
    fields: dict[str, Any]


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2), as `If-None-Match` asks for."""
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == opaque:
            return True
    return False


class StatusBodies:
    """Memoises each batch's rendered bodies by the identity of its (immutable) `BatchView`."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, str], tuple[BatchView, Rendered]] = {}

    def _render(self, kind: str, view: BatchView, build: Callable[[BatchView, int], BaseModel]) -> Rendered:
        key = (kind, view.batch_id)
        hit = self._done.get(key)
        if hit is not None and hit[0] is view:
            return hit[1]
        fields = build(view, 0).model_dump(mode="json")
        without_time = {k: v for k, v in fields.items() if k != "timestamp"}
        digest = hashlib.blake2b(orjson.dumps([kind, without_time]), digest_size=12).hexdigest()
        rendered = Rendered(etag=f'W/"{digest}"', fields=fields)
        if len(self._done) >= _KEEP:
            self._done.clear()
        self._done[key] = (view, rendered)
        return rendered

    def nested(self, view: BatchView) -> Rendered:
        """`GET .../{id}`: the batch with a nested `progress` object."""
        return self._render("nested", view, schemas.batch_status)

    def flat(self, view: BatchView) -> Rendered:
        """`GET .../{id}/status`: the same numbers flattened."""
        return self._render("flat", view, schemas.flat_status)


def respond(rendered: Rendered, if_none_match: str | None, now_ms: int) -> Response:
    """200 with the body stamped `now_ms`, or 304 when the client already holds this state."""
    headers = {"ETag": rendered.etag, "Cache-Control": "no-cache"}
    if if_none_match and _matches(if_none_match, rendered.etag):
        return Response(status_code=304, headers=headers)
    body = dict(rendered.fields)  # a copy keeps the field order; only the stamp differs per request
    body["timestamp"] = now_ms
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)
