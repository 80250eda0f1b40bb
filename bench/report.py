"""Renders the benchmark figures in bench/results/*.json into the README, between the figure markers.

`python -m bench.report` rewrites the table; every number in it comes from a results file that a
`make bench-*` target wrote, with the target it is measured against.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

# (results file, key, label, target text, comparison)
FIGURES: list[tuple[str, str, str, str, str]] = [
    ("ingest", "post_seconds", "ingest: 20 MB upload, request → response (s)", "≤ 5", "le:5"),
    ("ingest", "rows_per_second", "ingest: rows published per second", "≥ 30,000", "ge:30000"),
    ("ingest", "floor_single_core_seconds", "ingest: phonenumbers alone, one core, same rows (s)", "—", ""),
    ("ingest", "peak_rss_mb", "ingest: peak RSS (MB)", "≤ 300", "le:300"),
    ("dispatch", "max_starts_in_any_second", "dispatch: most starts in any 1 s (limit 20)", "≤ 20", "le:20"),
    ("dispatch", "mean_cps", "dispatch: mean calls/s while work waits (limit 20)", "20 ± 5%", "band:19:21"),
    (
        "dispatch",
        "max_call_started_in_any_second",
        "dispatch: most calls started by the dialer in any 1 s (limit 20)",
        "≤ 20",
        "le:20",
    ),
    ("dispatch", "max_concurrent_seen", "dispatch: most concurrent calls (limit 50)", "≤ 50", "le:50"),
    ("dispatch", "fairness_first_dial_ms", "dispatch: B's first dial behind A (ms)", "≤ 1,000", "le:1000"),
    ("dispatch", "cancel_to_last_dial_ms", "dispatch: cancel → last dial (ms)", "≤ 1,000", "le:1000"),
    ("dispatch", "rss_mb_1m_waiting", "dispatch: RSS with 1,000,000 waiting (MB)", "≤ 250", "le:250"),
    ("dispatch", "dispatch_per_second", "dispatch: call requests per second", "≥ 5,000", "ge:5000"),
    ("dialer", "calls_per_second_instant", "dialer: calls/s at time scale 0", "≥ 2,000", "ge:2000"),
    ("dialer", "max_simultaneous_calls", "dialer: simultaneous 2 s calls, one process", "≥ 1,000", "ge:1000"),
    ("dialer", "rss_mb", "dialer: RSS at that load (MB)", "≤ 250", "le:250"),
    ("status", "projection_events_per_second", "status: events projected per second", "≥ 3,000", "ge:3000"),
    ("status", "freshness_p99_ms", "status: event → visible in the API, p99 (ms)", "≤ 1,000", "le:1000"),
    ("status", "status_p50_ms", "status: GET …/status p50 (ms)", "≤ 5", "le:5"),
    ("status", "status_p99_ms", "status: GET …/status p99 (ms)", "≤ 25", "le:25"),
    ("status", "calls_page_p99_ms", "status: page 500 of failed calls, p99 (ms)", "≤ 50", "le:50"),
    ("pipeline", "contacts", "pipeline: contacts in the measured run", "100,000", "ge:100000"),
    ("pipeline", "calls_per_second", "pipeline: contacts/s, upload → all terminal", "≥ 1,000", "ge:1000"),
    ("pipeline", "seconds_to_all_terminal", "pipeline: seconds to all terminal", "—", ""),
    ("pipeline", "max_projection_lag_ms", "pipeline: max projection lag (ms)", "—", ""),
    ("chaos", "lost", "chaos: contacts lost", "0", "le:0"),
    ("chaos", "double_dialed", "chaos: attempts dialed twice", "0", "le:0"),
    ("chaos", "limit_violations", "chaos: limit violations", "0", "le:0"),
    ("chaos", "api_mismatches", "chaos: API vs dial log mismatches", "0", "le:0"),
    ("chaos", "recovery_seconds_max", "chaos: slowest recovery (s)", "—", ""),
]


def _meets(value: float, rule: str) -> str:
    if not rule:
        return ""
    kind, *limits = rule.split(":")
    bounds = [float(x) for x in limits]
    ok = {
        "le": lambda: value <= bounds[0],
        "ge": lambda: value >= bounds[0],
        "band": lambda: bounds[0] <= value <= bounds[1],
    }[kind]()
    return "met" if ok else "**not met**"


def table() -> str:
    loaded: dict[str, dict[str, Any]] = {}
    for path in RESULTS.glob("*.json"):
        try:
            loaded[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
    rows = ["| figure | measured | target | |", "|---|---:|---|---|"]
    used: set[str] = set()
    for name, key, label, target, rule in FIGURES:
        value = loaded.get(name, {}).get(key)
        if not isinstance(value, int | float):
            continue
        used.add(name)
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"
        rows.append(f"| {label} | {shown} | {target} | {_meets(float(value), rule)} |")
    sources = ", ".join(f"`bench/results/{n}.json`" for n in sorted(used))
    return "\n".join(rows) + f"\n\nFrom {sources or 'no results yet'}.\n"


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        print("README.md has no figure markers", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{table()}{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
