"""Event ids made without `uuid.uuid4` are still ordinary version-4 UUIDs, unique, also across a fork."""

from __future__ import annotations

import os
import pickle
from uuid import UUID

from shared.events import new_event_id


def test_an_event_id_is_a_version_4_rfc_uuid_like_any_other() -> None:
    made = new_event_id()
    assert made.version == 4 and made.variant == "specified in RFC 4122"
    again = UUID(str(made))
    assert again == made and hash(again) == hash(made) and pickle.loads(pickle.dumps(made)) == made


def test_event_ids_do_not_repeat() -> None:
    assert len({new_event_id() for _ in range(100_000)}) == 100_000


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids go to the parent through the pipe
        os.close(read)
        os.write(write, b"".join(new_event_id().bytes for _ in range(8)))
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 4096):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    child = {data[i : i + 16] for i in range(0, len(data), 16)}
    parent = {new_event_id().bytes for _ in range(8)}
    assert len(child) == 8 and not child & parent
