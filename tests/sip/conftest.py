"""The SIP provider against a real far end: `sipp` (Debian `sip-tester`) on 127.0.0.1, started and stopped
by each test on free ports, with the scenarios in `scenarios/`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.adapters.sip_provider import SipOptions, SipProvider

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_EXIT_SECONDS = 30.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now() -> datetime:
    return datetime.now(UTC)


class Sipp:
    """One sipp far end running one scenario for one call."""

    def __init__(self, scenario: str) -> None:
        binary = shutil.which("sipp")
        assert binary, "sipp is missing: scripts/install.sh installs the Debian package sip-tester"
        self.port = free_udp_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"sipp-{scenario}-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                binary,
                "-sf",
                str(SCENARIOS / f"{scenario}.xml"),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-mp",
                str(free_udp_port()),
                "-m",
                "1",
                "-nostdin",
                "-nd",  # no default behaviours: a scenario does exactly what it says
                "-trace_err",
                "-error_file",
                self.log.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        # sipp is ready once its UDP port is taken.
        for _ in range(200):
            assert self.proc.poll() is None, f"sipp exited at start: {self.errors()}"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", self.port))
                except OSError:
                    return
            time.sleep(0.05)
        raise AssertionError("sipp did not start listening")

    @property
    def uri(self) -> str:
        return f"sip:+12025550100@127.0.0.1:{self.port}"

    def errors(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def finished_ok(self) -> bool:
        """True when sipp ran its scenario to the end for the one call (exit status 0)."""
        try:
            return self.proc.wait(SIPP_EXIT_SECONDS) == 0
        except subprocess.TimeoutExpired:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def sipp() -> Iterator[Callable[[str], Sipp]]:
    started: list[Sipp] = []

    def start(scenario: str) -> Sipp:
        far_end = Sipp(scenario)
        started.append(far_end)
        return far_end

    yield start
    for far_end in started:
        far_end.close()


@pytest.fixture(scope="session")
async def sip_provider() -> AsyncIterator[SipProvider]:
    """One SIP user agent for the session: PJSIP is a process-wide singleton."""
    provider = SipProvider(SipOptions(bind_host="127.0.0.1", no_response_seconds=1.5), clock=now)
    await provider.start()
    yield provider
    await provider.stop()
