"""Collects the alternating FerretDB backend comparison (bench/backends.sh) into bench/results/backends.json.

    .venv/bin/python -m bench.backends [--work bench/work]

Reads the copies bench/backends.sh keeps of every run (`<bench>-<backend>-<round>.json`) and writes, per
backend, the median and every value of the figures that FerretDB bounds (ADR 0005).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "backends.json"
FIGURES = {
    "dialer": ("calls_per_second_instant", "calls_per_dialer_cpu_second_instant", "load_average_at_end"),
    "dispatch": ("dispatch_per_second",),
    "status": (
        "projection_events_per_second",
        "freshness_p99_ms",
        "status_p50_ms",
        "status_p99_ms",
        "calls_page_p99_ms",
    ),
}
NAME = re.compile(r"^(dialer|dispatch|status)-([a-z_]+)-(\d+)\.json$")


def collect(work: Path) -> dict[str, Any]:
    """{backend: {bench: {figure: {"median": m, "runs": [...]}}}} from the per-run copies in `work`."""
    values: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for path in sorted(work.glob("*.json")):
        match = NAME.match(path.name)
        if not match:
            continue
        bench, backend, _ = match.groups()
        data = json.loads(path.read_text())
        per = values.setdefault(backend, {}).setdefault(bench, {})
        for figure in FIGURES[bench]:
            per.setdefault(figure, []).append(data.get(figure))
    out: dict[str, Any] = {}
    for backend, benches in values.items():
        out[backend] = {}
        for bench, figures in benches.items():
            out[backend][bench] = {}
            for figure, runs in figures.items():
                numbers = [v for v in runs if isinstance(v, int | float)]
                median = statistics.median(numbers) if numbers else None
                out[backend][bench][figure] = {"median": median, "runs": runs}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    args = parser.parse_args()
    result = {
        "backends": collect(args.work),
        "commands": [
            "bench/backends.sh  (alternating rounds; each run copied to bench/work/)",
            "python -m bench.dialer --runs 1 --instant-calls 20000 --held-calls 500",
            "python -m bench.dispatch --runs 1 --limit-contacts 0 --cancel-runs 0 --fair-waiting 0"
            " --rss-waiting 0 --throughput-contacts 30000",
            "python -m bench.status --contacts 10000 --runs 1 --freshness-seconds 10 --status-seconds 10"
            " --page 30 --page-requests 3 (1 on sqlite: one page request scans for minutes there)",
            "python -m bench.backends",
        ],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["backends"], indent=2))


if __name__ == "__main__":
    main()
