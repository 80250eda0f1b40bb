"""The dispatcher's do-not-call check against FerretDB: held in memory as of the list's version, read
again whenever anyone else changes the list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from dispatcher.adapters.workspace_plans import SharedDoNotCall
from shared.mongo import Document, database, make_client
from shared.settings import InfraSettings
from shared.workspaces import DoNotCallList

pytestmark = pytest.mark.integration

A, B, C = "+14155550101", "+14155550102", "+14155550103"


@pytest.fixture
async def db() -> AsyncIterator[AsyncDatabase[Document]]:
    infra = InfraSettings(mongo_db=f"test_dnc_{uuid4().hex[:8]}")
    client: AsyncMongoClient[Document] = make_client(infra, "test-dnc")
    yield database(client, infra)
    await client.drop_database(infra.mongo_db)
    await client.close()


class CountingList(DoNotCallList):
    reads = 0

    async def numbers(self, workspace_id: str) -> set[str]:
        self.reads += 1
        return await super().numbers(workspace_id)


async def test_the_list_is_read_again_only_when_someone_else_changed_it(db: AsyncDatabase[Document]) -> None:
    counting, api = CountingList(db), DoNotCallList(db)  # the dispatcher's (reads counted) and the API's
    dnc = SharedDoNotCall(counting)
    assert await dnc.listed("ws_a", [A, B]) == set()
    assert await dnc.listed("ws_a", [A, B]) == set()
    assert counting.reads == 1, "unchanged: held"

    assert await api.add("ws_a", A, source="api")  # the API answers after the version moved
    assert await dnc.listed("ws_a", [A, B]) == {A}
    assert counting.reads == 2

    await dnc.add("ws_a", [B], "opted_out")  # our own change: applied without a read
    assert await dnc.listed("ws_a", [A, B, C]) == {A, B}
    assert counting.reads == 2
    await dnc.add("ws_a", [C, A, C], "opted_out")  # a round's opt-outs, one already listed: C only is new
    assert await dnc.listed("ws_a", [A, B, C]) == {A, B, C}
    assert counting.reads == 2
    assert await counting.version("ws_a") == 3
    await counting.remove("ws_a", C)

    assert await api.remove("ws_a", A)
    assert await dnc.listed("ws_a", [A, B, C]) == {B}
    assert counting.reads == 3
    assert await dnc.listed("ws_b", [A, B, C]) == set(), "per workspace"


async def test_an_addition_racing_ours_is_not_missed(db: AsyncDatabase[Document]) -> None:
    dnc, api = SharedDoNotCall(DoNotCallList(db)), DoNotCallList(db)
    assert await dnc.listed("ws_a", [A]) == set()
    assert await api.add("ws_a", C, source="api")  # between our read and our own addition
    await dnc.add("ws_a", [B], "opted_out")  # the version moved by two: what is held is dropped
    assert await dnc.listed("ws_a", [A, B, C]) == {B, C}
