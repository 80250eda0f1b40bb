"""Workspaces, their plans and API keys, and the do-not-call list: the records several services read.

Ingest creates and edits them; every service that serves the public API authenticates with them; the
dispatcher reads plans and the do-not-call list at dial time. Keys are stored as SHA-256 hashes and compared
in constant time. A key is `bck_<key id>_<secret>`: the key id is looked up by equality (cheap on FerretDB),
the secret never leaves the client.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import Document, insert_new

WORKSPACES = "workspaces"
API_KEYS = "api_keys"
DNC_ENTRIES = "dnc_entries"
DNC_VERSIONS = "dnc_versions"
"""Per workspace, a counter every change of its do-not-call list raises after the change is stored: a
reader that holds the list as of version v need not read it again while the counter says v."""


class Plan(BaseModel):
    """What a workspace may do. The smallest reference plan: 60 requests a minute and 1 concurrent call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "starter"
    max_records_per_batch: int = Field(default=10_000, ge=1)
    calls_per_second: float = Field(default=1.0, gt=0)
    max_concurrent_calls: int = Field(default=1, ge=1)
    requests_per_minute: int = Field(default=60, ge=1)


class Workspace(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace_id: str
    name: str
    plan: Plan
    default_region: str | None = Field(default=None, description="ISO 3166 region for numbers without '+'.")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret_key: str
    """The full key, shown to its owner once."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(api_key: str) -> tuple[str, str] | None:
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != "bck" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def dnc_id(workspace_id: str, phone_number: str) -> str:
    return f"{workspace_id}:{phone_number}"


class WorkspaceDirectory:
    """Reads and writes workspaces and keys; caches lookups briefly so a request costs no database trip,
    while a plan change still takes effect within `cache_seconds`."""

    def __init__(self, db: AsyncDatabase[Document], *, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._workspaces: dict[str, tuple[float, Workspace | None]] = {}
        self._keys: dict[str, tuple[float, Document | None]] = {}

    async def create_workspace(
        self, workspace_id: str, name: str, plan: Plan, default_region: str | None = None
    ) -> Workspace:
        workspace = Workspace(workspace_id=workspace_id, name=name, plan=plan, default_region=default_region)
        await self._db[WORKSPACES].update_one(
            {"_id": workspace_id},
            {
                "$set": {"name": name, "plan": plan.model_dump(), "default_region": default_region},
                "$setOnInsert": {"created_at": datetime.now(UTC)},
            },
            upsert=True,
        )
        self._workspaces.pop(workspace_id, None)
        return workspace

    async def set_plan(self, workspace_id: str, plan: Plan) -> None:
        await self._db[WORKSPACES].update_one({"_id": workspace_id}, {"$set": {"plan": plan.model_dump()}})
        self._workspaces.pop(workspace_id, None)

    async def issue_key(self, workspace_id: str, label: str = "") -> IssuedKey:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(24).replace("_", "-")
        await self._db[API_KEYS].insert_one(
            {
                "_id": key_id,
                "workspace_id": workspace_id,
                "secret_sha256": hash_secret(secret),
                "label": label,
                "created_at": datetime.now(UTC),
                "revoked": False,
            }
        )
        return IssuedKey(key_id=key_id, secret_key=f"bck_{key_id}_{secret}")

    async def revoke_key(self, key_id: str) -> None:
        await self._db[API_KEYS].update_one({"_id": key_id}, {"$set": {"revoked": True}})
        self._keys.pop(key_id, None)

    async def workspace(self, workspace_id: str) -> Workspace | None:
        cached = self._workspaces.get(workspace_id)
        now = time.monotonic()
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1]
        doc = await self._db[WORKSPACES].find_one({"_id": workspace_id})
        found = (
            Workspace(
                workspace_id=doc["_id"],
                name=doc.get("name", doc["_id"]),
                plan=Plan.model_validate(doc.get("plan", {})),
                default_region=doc.get("default_region"),
            )
            if doc
            else None
        )
        self._workspaces[workspace_id] = (now, found)
        return found

    async def key_owner(self, api_key: str) -> str | None:
        """The workspace a key belongs to, or None when the key is unknown, revoked or wrong."""
        parts = split_key(api_key)
        if parts is None:
            return None
        key_id, secret = parts
        cached = self._keys.get(key_id)
        now = time.monotonic()
        if cached and now - cached[0] < self._cache_seconds:
            doc = cached[1]
        else:
            doc = await self._db[API_KEYS].find_one({"_id": key_id})
            self._keys[key_id] = (now, doc)
        if doc is None or doc.get("revoked"):
            # Compare anyway so an unknown key id costs the same time as a wrong secret.
            hmac.compare_digest(hash_secret(secret), "0" * 64)
            return None
        if not hmac.compare_digest(hash_secret(secret), str(doc["secret_sha256"])):
            return None
        return str(doc["workspace_id"])


def _dnc_entry(workspace_id: str, phone_number: str, source: str, note: str) -> Document:
    return {
        "_id": dnc_id(workspace_id, phone_number),
        "workspace_id": workspace_id,
        "phone_number": phone_number,
        "source": source,
        "note": note,
        "created_at": datetime.now(UTC),
    }


class DoNotCallList:
    """The workspace's do-not-call entries, one document each, `_id` = workspace id + E.164 number, and the
    list's version (`DNC_VERSIONS`), raised after each change is stored."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def add(self, workspace_id: str, phone_number: str, source: str, note: str = "") -> bool:
        """Adds the number; False when it was already listed (inserts are atomic even on FerretDB)."""
        return await self.add_versioned(workspace_id, phone_number, source, note) is not None

    async def add_versioned(
        self, workspace_id: str, phone_number: str, source: str, note: str = ""
    ) -> int | None:
        """Adds the number and returns the list's version after the change; None when it was listed."""
        try:
            await self._db[DNC_ENTRIES].insert_one(_dnc_entry(workspace_id, phone_number, source, note))
        except DuplicateKeyError:
            return None
        return await self._raise_version(workspace_id)

    async def add_many_versioned(
        self, workspace_id: str, phone_numbers: Sequence[str], source: str
    ) -> tuple[int, int]:
        """Adds the numbers in one insert and raises the version once by as many as were new (one write for
        a dispatch round's opt-outs instead of two per number); returns (added, version after)."""
        docs = [_dnc_entry(workspace_id, n, source, "") for n in dict.fromkeys(phone_numbers)]
        added = len(await insert_new(self._db[DNC_ENTRIES], docs))
        if not added:
            return 0, await self.version(workspace_id)
        return added, await self._raise_version(workspace_id, added)

    async def remove(self, workspace_id: str, phone_number: str) -> bool:
        result = await self._db[DNC_ENTRIES].delete_one({"_id": dnc_id(workspace_id, phone_number)})
        if result.deleted_count != 1:
            return False
        await self._raise_version(workspace_id)
        return True

    async def contains(self, workspace_id: str, phone_number: str) -> bool:
        return await self._db[DNC_ENTRIES].find_one({"_id": dnc_id(workspace_id, phone_number)}) is not None

    async def numbers(self, workspace_id: str) -> set[str]:
        """Every listed number of the workspace (an equality query FerretDB pushes down)."""
        cursor = self._db[DNC_ENTRIES].find({"workspace_id": workspace_id}, {"phone_number": 1})
        return {str(doc["phone_number"]) async for doc in cursor}

    async def version(self, workspace_id: str) -> int:
        """The list's version now (0: never changed since versions were kept)."""
        doc = await self._db[DNC_VERSIONS].find_one({"_id": workspace_id})
        return int(doc["v"]) if doc else 0

    async def _raise_version(self, workspace_id: str, by: int = 1) -> int:
        doc = await self._db[DNC_VERSIONS].find_one_and_update(
            {"_id": workspace_id}, {"$inc": {"v": by}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        return int(doc["v"]) if doc else 0
