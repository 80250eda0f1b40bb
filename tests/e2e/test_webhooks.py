"""Webhooks received by a local receiver (a small HTTP server in the test, on 127.0.0.1), signature checked.

Both kinds: a workspace endpoint registered with `POST /v1/webhooks` (its secret shown once), and the
per-batch `webhookUrl` form field (signed with the workspace's batch secret). Each delivery carries
`X-Batchcalls-Signature` (and the reference's `X-Trillet-Signature`): `t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`. Receivers deduplicate by the event id, so a redelivery is the same event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.stack_client import ANSWERED, BUSY, FAST_RETRIES, OPEN_WINDOW, Api, contacts_csv

pytestmark = pytest.mark.e2e


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == path]

    def wait_for(self, path: str, expected: Counter[str], timeout: float = 90) -> list[Delivery]:
        """Every delivery to `path` once it holds at least `expected` distinct events of each kind: the
        outbox sends its due items concurrently, so a batch's last events need not arrive in order."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(path)
            kinds = Counter(p.get("event") for p in {d.payload["id"]: d.payload for d in got}.values())
            if all(kinds[kind] >= n for kind, n in expected.items()):
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"not all of {dict(expected)} delivered to {path} in {timeout}s; got {kinds}"
                )
            time.sleep(0.3)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            with box.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                box.deliveries.append(Delivery(self.path, headers, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def verify(delivery: Delivery, secret: str) -> None:
    """The receiver's check: the signature is ours over this exact body and a recent timestamp."""
    header = delivery.headers["x-batchcalls-signature"]
    assert delivery.headers.get("x-trillet-signature") == header
    parts = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(parts["t"])
    assert abs(time.time() - timestamp) < 600, header
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), (header, delivery.body[:200])
    wrong = hmac.new(b"whsec_wrong", f"{timestamp}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    assert parts["v1"] != wrong


EXPECTED = Counter(
    {"batch.started": 1, "call.started": 4, "call.completed": 1, "call.failed": 1, "batch.completed": 1}
)
"""Two contacts: the answered one starts once and completes; the busy one starts three times (three
attempts) and fails once."""


def test_webhooks_reach_a_local_receiver_with_valid_signatures(api: Api, receiver: Receiver) -> None:
    registered = api.http.post("/v1/webhooks", json={"url": f"{receiver.url}/workspace"})
    assert registered.status_code == 201, registered.text
    workspace_secret = registered.json()["secret"]
    assert workspace_secret.startswith("whsec_")
    rotated = api.http.post("/v1/webhooks/batch-secret")
    assert rotated.status_code == 200, rotated.text
    batch_secret = rotated.json()["secret"]

    agent = api.create_agent()
    batch_id = api.start_ok(
        contacts_csv([ANSWERED, BUSY]),
        agent,
        callingWindow=OPEN_WINDOW,
        smartCallbackConfig=FAST_RETRIES,
        webhookUrl=f"{receiver.url}/batch",
    )
    assert api.wait(batch_id)["status"] == "completed"

    for path, secret in (("/workspace", workspace_secret), ("/batch", batch_secret)):
        got = receiver.wait_for(path, EXPECTED)
        for delivery in got:
            verify(delivery, secret)
        by_id: dict[str, dict[str, Any]] = {}
        for delivery in got:
            payload = delivery.payload
            assert set(payload) >= {"id", "event", "createdAt", "data"}, payload
            by_id.setdefault(payload["id"], payload)  # a redelivery is the same event
        events = sorted(p["event"] for p in by_id.values())
        # Two contacts: the answered one starts once and completes; the busy one starts three times
        # (three attempts) and fails once.
        assert events.count("call.started") == 4, events
        assert events.count("call.completed") == 1 and events.count("call.failed") == 1, events
        assert events.count("batch.started") == 1 and events.count("batch.completed") == 1, events
        completed = next(p for p in by_id.values() if p["event"] == "call.completed")["data"]
        assert completed["callId"] == f"{batch_id}_r1_a1" and completed["agentId"] == agent
        assert completed["status"] == "completed" and completed["duration"] > 0
        failed = next(p for p in by_id.values() if p["event"] == "call.failed")["data"]
        assert failed["jobId"] == f"{batch_id}_r2" and failed["status"] == "failed"
        final = next(p for p in by_id.values() if p["event"] == "batch.completed")["data"]
        assert (final["completed"], final["failed"], final["total"]) == (1, 1, 2)

    log = api.http.get(f"/v1/webhooks/{batch_id}/deliveries")
    assert log.status_code == 200, log.text
    assert any(d["delivered"] for d in log.json()["deliveries"])
