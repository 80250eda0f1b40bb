"""Webhook endpoints, signing secrets and the delivery log in MongoDB.

Endpoints and secrets are small collections (a few per workspace), so updates and deletes there are cheap.
The delivery log is insert-only and read by equality on `(endpoint_id, day)`.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document
from status.domain.clock import utc_day
from status.ports import Endpoint

WEBHOOKS = "status_webhooks"
SECRETS = "status_webhook_secrets"
DELIVERIES = "status_webhook_deliveries"


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class MongoWebhooks:
    """`WebhookRoutes` for the projector; endpoint CRUD for the API; secrets and log for delivery."""

    def __init__(
        self, db: AsyncDatabase[Document], *, now_ms: Callable[[], int], cache_seconds: float = 5.0
    ) -> None:
        self._endpoints = db[WEBHOOKS]
        self._secrets = db[SECRETS]
        self._log = db[DELIVERIES]
        self._now_ms = now_ms
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Endpoint]]] = {}

    async def ensure_indexes(self) -> None:
        await self._endpoints.create_index([("workspace_id", ASCENDING)])
        await self._log.create_index([("endpoint_id", ASCENDING), ("day", ASCENDING)])

    async def endpoints(self, workspace_id: str) -> Sequence[Endpoint]:
        now = time.monotonic()
        hit = self._cache.get(workspace_id)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        found = [
            Endpoint(d["_id"], d["workspace_id"], d["url"], frozenset(d["events"]))
            async for d in self._endpoints.find({"workspace_id": workspace_id})
            if not d.get("disabled")
        ]
        self._cache[workspace_id] = (now, found)
        return found

    async def create(self, workspace_id: str, url: str, events: list[str], description: str) -> Document:
        doc = {
            "_id": "wh_" + secrets.token_hex(8),
            "workspace_id": workspace_id,
            "url": url,
            "events": sorted(set(events)),
            "description": description,
            "secret": new_secret(),
            "created_at": self._now_ms(),
        }
        await self._endpoints.insert_one(doc)
        self._cache.pop(workspace_id, None)
        return doc

    async def all(self, workspace_id: str) -> list[Document]:
        docs = [d async for d in self._endpoints.find({"workspace_id": workspace_id})]
        return sorted(docs, key=lambda d: (-int(d.get("created_at", 0)), d["_id"]))

    async def get(self, workspace_id: str, endpoint_id: str) -> Document | None:
        doc = await self._endpoints.find_one({"_id": endpoint_id})
        return doc if doc is not None and doc.get("workspace_id") == workspace_id else None

    async def delete(self, workspace_id: str, endpoint_id: str) -> bool:
        result = await self._endpoints.delete_one({"_id": endpoint_id, "workspace_id": workspace_id})
        self._cache.pop(workspace_id, None)
        return result.deleted_count == 1

    async def rotate_batch_secret(self, workspace_id: str) -> str:
        """A new secret for the workspace's per-batch webhook URLs (the old one stops signing at once)."""
        secret = new_secret()
        await self._secrets.replace_one(
            {"_id": workspace_id},
            {"_id": workspace_id, "secret": secret, "created_at": self._now_ms()},
            upsert=True,
        )
        return secret

    async def secret_for(self, workspace_id: str, endpoint_id: str) -> str | None:
        """The secret signing deliveries to an endpoint: its own, or the workspace's per-batch secret (made on
        first use) for a batch's webhook URL. None when the endpoint was deleted."""
        if endpoint_id.startswith("wh_"):
            doc = await self._endpoints.find_one({"_id": endpoint_id})
            return str(doc["secret"]) if doc else None
        doc = await self._secrets.find_one({"_id": workspace_id})
        if doc is not None:
            return str(doc["secret"])
        secret = new_secret()
        try:
            await self._secrets.insert_one(
                {"_id": workspace_id, "secret": secret, "created_at": self._now_ms()}
            )
        except DuplicateKeyError:
            again = await self._secrets.find_one({"_id": workspace_id})
            return str(again["secret"]) if again else secret
        return secret

    async def log(self, entry: dict[str, Any]) -> None:
        entry = {**entry, "day": utc_day(int(entry["at"]))}
        with contextlib.suppress(DuplicateKeyError):
            await self._log.insert_one(entry)

    async def final_logged(self, item_id: str, max_attempts: int) -> bool:
        """Whether an attempt of the item was final (by `_id`: the only lookup FerretDB does not scan for)."""
        for attempt in range(1, max_attempts + 1):
            doc = await self._log.find_one({"_id": f"{item_id}#{attempt}"})
            if doc is None:
                return False
            if doc.get("final"):
                return True
        return True

    async def deliveries(self, endpoint_id: str, days: Sequence[str], limit: int) -> list[Document]:
        docs: list[Document] = []
        for day in days:
            docs.extend([d async for d in self._log.find({"endpoint_id": endpoint_id, "day": day})])
            if len(docs) >= limit:
                break
        docs.sort(key=lambda d: (-int(d["at"]), d["_id"]))
        return docs[:limit]
