"""Every case of the bad-input corpus against the running stack, through the gateway.

Each must get a 4xx (the corpus names which) with a clear `{"error", "message"}` body, never a 5xx, and
leave nothing behind: no batch in the API's list, no batch or publishing cursor in ingest's store, no upload
chunks without a batch. A few inputs that look bad but are data (formula cells, short rows, quoted
newlines) are accepted on purpose; `test_accepted_on_purpose` pins that down (ADR 0070).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.e2e.badinput.corpus import Case, Context, build_cases
from tests.e2e.stack_client import GATEWAY, Api, Workspace, contacts_csv, create_workspace

pytestmark = pytest.mark.e2e

MAX_RECORDS = 10
MONGO_URL = os.environ.get("BC_STACK_MONGO_URL", "mongodb://127.0.0.1:27017/")
MONGO_DB = os.environ.get("E2E_MONGO_DB", "batchcalls")

_PLACEHOLDER = Context("agent_x", "agent_y", "ws_y", MAX_RECORDS)
CASE_NAMES = [case.name for case in build_cases(_PLACEHOLDER)]


class Corpus:
    def __init__(self) -> None:
        self.own = create_workspace("badinput", max_records=MAX_RECORDS)
        self.other = create_workspace("badother")
        self.api = Api(self.own)
        other_api = Api(self.other)
        self.context = Context(
            agent_id=self.api.create_agent(),
            foreign_agent_id=other_api.create_agent(),
            foreign_workspace_id=self.other.workspace_id,
            max_records=MAX_RECORDS,
        )
        other_api.close()
        self.cases = {case.name: case for case in build_cases(self.context)}
        self.mongo: MongoClient[dict[str, Any]] = MongoClient(MONGO_URL, serverSelectionTimeoutMS=5000)
        self.db = self.mongo[MONGO_DB]
        self.orphans_before = self.orphan_uploads()

    def stored_batches(self) -> int:
        """Ingest's batch and cursor documents of the workspace."""
        ws = self.own.workspace_id
        return self.db["ingest_batches"].count_documents({"workspace_id": ws}) + self.db[
            "ingest_cursors"
        ].count_documents({"workspace_id": ws})

    def orphan_uploads(self) -> set[str]:
        """Batch ids that have upload chunks but no batch document (a rejected upload not cleaned up)."""
        with_chunks = {
            str(doc["_id"])
            for doc in self.db["ingest_uploads"].aggregate(
                [{"$group": {"_id": "$batch_id", "n": {"$sum": 1}}}]
            )
        }
        if not with_chunks:
            return set()
        known = {str(d["_id"]) for d in self.db["ingest_batches"].find({}, {"_id": 1})}
        return with_chunks - known

    def close(self) -> None:
        self.api.close()
        self.mongo.close()


@pytest.fixture(scope="module")
def corpus() -> Iterator[Corpus]:
    made = Corpus()
    yield made
    made.close()


def _headers(case: Case, own: Workspace, other: Workspace) -> dict[str, str]:
    if case.auth == "none":
        headers: dict[str, str] = {}
    elif case.auth == "bad-key":
        headers = {"x-api-key": "bck_0000000000000000_notakey", "x-workspace-id": own.workspace_id}
    elif case.auth == "foreign-workspace":
        headers = {"x-api-key": own.api_key, "x-workspace-id": other.workspace_id}
    else:
        headers = dict(own.headers)
    return {**headers, **case.headers}


def send(case: Case, corpus: Corpus) -> httpx.Response:
    """One request as the case describes it (a fresh client: no default headers to hide what is sent)."""
    headers = _headers(case, corpus.own, corpus.other)
    with httpx.Client(base_url=GATEWAY, timeout=120) as http:
        if case.raw_body is not None:
            headers["content-type"] = case.content_type or "application/octet-stream"
            return http.request(case.method, case.path, content=case.raw_body, headers=headers)
        fields = {"agentId": corpus.context.agent_id, **case.fields}
        for name in case.omit:
            fields.pop(name, None)
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        if case.upload is not None:
            files = [("file", (case.filename, case.upload, "text/csv"))] * (1 + case.extra_files)
        if not files:
            # httpx sends an urlencoded body when there is no file: force multipart with a dummy part.
            files = [("attachment", ("notes.txt", b"not the file field", "text/plain"))]
        return http.request(case.method, case.path, data=fields, files=files, headers=headers)


def test_the_corpus_is_large_enough() -> None:
    assert len(CASE_NAMES) >= 40


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_gets_a_clear_4xx_and_leaves_nothing(corpus: Corpus, name: str) -> None:
    case = corpus.cases[name]
    stored_before = corpus.stored_batches()
    answer = send(case, corpus)
    assert answer.status_code < 500, f"{name}: {answer.status_code} {answer.text[:500]}"
    assert answer.status_code == case.status, f"{name}: {answer.status_code} {answer.text[:500]}"
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    body = answer.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and len(body["message"]) >= 10, body
    if case.error is not None:
        assert body["error"] == case.error, body
    for needle in case.mentions:
        assert needle.lower() in body["message"].lower(), (needle, body)
    assert corpus.stored_batches() == stored_before, f"{name} left a batch behind"


def test_no_batch_and_no_upload_is_left_behind(corpus: Corpus) -> None:
    """Runs after the corpus: the workspace has no batch at all, in the API or in ingest's store."""
    assert corpus.stored_batches() == 0
    assert corpus.api.batch_ids() == set()
    # Another engineer's upload may be in flight: an orphan must still be one after a few seconds.
    new = corpus.orphan_uploads() - corpus.orphans_before
    for _ in range(5):
        if not new:
            break
        time.sleep(1)
        new &= corpus.orphan_uploads()
    assert not new, f"upload chunks without a batch: {sorted(new)}"


ACCEPTED = {
    "formula-cells": (
        "phone_number,first_name,note\n"
        "+12025551000,=cmd|' /C calc'!A0,@SUM(A1:A9)\n"
        "+12025551001,-2+3,+1 looks like a number\n"
    ),
    "short-rows": "phone_number,first_name,last_name\n+12025551000\n+12025551001,Ben\n",
    "quoted-newline-in-a-cell": 'phone_number,note\n+12025551000,"first line\nsecond line"\n',
    "trailing-empty-cells": "phone_number,first_name\n+12025551000,Ada,,,\n",
}
"""Inputs that look malformed but are data: refusing them would reject good uploads (ADR 0070). Formula
cells are neutralised where they leave the system (the export), short rows' missing cells are empty."""


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_on_purpose(corpus: Corpus, name: str) -> None:
    checked = corpus.api.http.post(
        "/v1/batch-calls/validate",
        files={"file": ("c.csv", ACCEPTED[name].encode(), "text/csv")},
        data={"agentId": corpus.context.agent_id},
    )
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["counts"]["valid"] == body["totalRows"] >= 1, body


def test_a_valid_upload_still_works_after_the_corpus(corpus: Corpus) -> None:
    """The last word: the same workspace can still start a batch (nothing was wedged)."""
    started = corpus.api.start(contacts_csv(["+12025551000"]), corpus.context.agent_id)
    assert started.status_code == 200, started.text
    assert corpus.api.http.delete(f"/v1/batch-calls/{started.json()['batchId']}").status_code == 200
