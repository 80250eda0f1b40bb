from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("number", "outcome"), [("+12025550103", "busy"), ("+12025550100", "completed")])
def test_operator_call_prints_one_json_line(number: str, outcome: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialer",
            "call",
            "--provider",
            "simulated",
            "--to",
            number,
            "--time-scale",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["outcome"] == outcome and line["provider"] == "simulated"
