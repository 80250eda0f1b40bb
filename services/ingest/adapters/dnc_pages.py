"""Paging through a workspace's do-not-call entries (the writes go through `shared.workspaces`)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document
from shared.workspaces import DNC_ENTRIES


class DncPages:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._coll = db[DNC_ENTRIES]

    async def page(self, workspace_id: str, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        total = await self._coll.count_documents({"workspace_id": workspace_id})
        cursor = (
            self._coll.find({"workspace_id": workspace_id}).sort("_id", ASCENDING).skip(skip).limit(limit)
        )
        return [doc async for doc in cursor], total
