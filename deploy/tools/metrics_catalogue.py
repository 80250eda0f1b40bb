"""The metric catalogue (docs/metrics.md), generated from what the services declare.

Each service's modules are imported in a fresh interpreter and its prometheus_client registry is read: name,
type, label names and help text of every `batchcalls_` metric, including labelled ones that a running
service only prints after their first use. `--check` fails when docs/metrics.md is stale; `--write`
regenerates it; `--scrape URL...` prints the `batchcalls_` families a running service exports.

    .venv/bin/python deploy/tools/metrics_catalogue.py --write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "metrics.md"
SERVICES = ("ingest", "status", "dispatcher", "dialer")
PREFIX = "batchcalls_"
BEGIN = "<!-- BEGIN GENERATED: deploy/tools/metrics_catalogue.py --write -->"
END = "<!-- END GENERATED -->"

# Runs in a fresh interpreter per service, so each registry holds exactly what that service declares.
_DUMP = r"""
import importlib, json, pkgutil, sys
from prometheus_client import REGISTRY
service = sys.argv[1]
package = importlib.import_module(service)
failures = []
for info in pkgutil.walk_packages(package.__path__, prefix=service + "."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
    except Exception as exc:  # report, keep going: one broken module must not hide the others' metrics
        failures.append(f"{info.name}: {exc!r}")
importlib.import_module("shared.http")
metrics = []
for collector in list(REGISTRY._collector_to_names):
    name = getattr(collector, "_name", None)
    if not name or not name.startswith("batchcalls_"):
        continue
    kind = collector._type
    exposed = name + "_total" if kind == "counter" else name
    metrics.append({"name": exposed, "kind": kind, "labels": list(collector._labelnames),
                    "help": collector._documentation, "services": [service]})
print(json.dumps({"metrics": metrics, "failures": failures}))
"""


@dataclass(frozen=True)
class Metric:
    """One metric family as the exposition format names it (counters with their `_total`)."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str
    services: tuple[str, ...]


def declared(service: str) -> tuple[list[Metric], list[str]]:
    """The `batchcalls_` metrics one service declares, and the modules that failed to import."""
    out = subprocess.run(
        [sys.executable, "-c", _DUMP, service], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    metrics = [
        Metric(m["name"], m["kind"], tuple(m["labels"]), m["help"], tuple(m["services"]))
        for m in data["metrics"]
    ]
    return metrics, data["failures"]


def catalogue() -> tuple[list[Metric], list[str]]:
    """Every service's metrics merged by name (shared ones list every service that serves them)."""
    merged: dict[str, Metric] = {}
    failures: list[str] = []
    for service in SERVICES:
        metrics, failed = declared(service)
        failures += failed
        for m in metrics:
            seen = merged.get(m.name)
            if seen and (seen.kind, seen.labels) != (m.kind, m.labels):
                raise SystemExit(f"{m.name}: declared differently by {seen.services} and {service}")
            merged[m.name] = Metric(
                m.name, m.kind, m.labels, m.help, (*(seen.services if seen else ()), service)
            )
    return sorted(merged.values(), key=lambda m: m.name), failures


def table(metrics: list[Metric]) -> str:
    rows = ["| metric | type | labels | served by | meaning |", "|---|---|---|---|---|"]
    for m in metrics:
        served = "all four" if set(m.services) == set(SERVICES) else ", ".join(m.services)
        labels = ", ".join(f"`{label}`" for label in m.labels) or "—"
        meaning = m.help.replace("|", "\\|")
        rows.append(f"| `{m.name}` | {m.kind} | {labels} | {served} | {meaning} |")
    return "\n".join(rows) + "\n"


def rendered_document(current: str, metrics: list[Metric]) -> str:
    """docs/metrics.md with the generated block replaced; the prose around it is kept."""
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table(metrics)}{END}{tail}"


def scrape(url: str) -> dict[str, str]:
    """`batchcalls_` metric families (name → type) from one running service's /metrics."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.split()[2].startswith(PREFIX):
            _, _, name, kind = line.split(maxsplit=3)
            if name.endswith("_created"):  # prometheus-client's creation timestamps of counters/histograms
                continue
            families[name + "_total" if kind == "counter" and not name.endswith("_total") else name] = kind
    return families


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate docs/metrics.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when docs/metrics.md is stale")
    mode.add_argument("--scrape", nargs="+", metavar="URL", help="list families a running service exports")
    args = parser.parse_args(argv)
    if args.scrape:
        for url in args.scrape:
            for name, kind in sorted(scrape(url).items()):
                print(f"{url}\t{name}\t{kind}")
        return 0
    metrics, failures = catalogue()
    for failure in failures:
        print(f"metrics_catalogue: could not import {failure}", file=sys.stderr)
    current = CATALOGUE.read_text()
    wanted = rendered_document(current, metrics)
    if args.write:
        CATALOGUE.write_text(wanted)
        print(f"metrics_catalogue: {len(metrics)} metrics → {CATALOGUE.relative_to(ROOT)}")
        return 1 if failures else 0
    if wanted != current or failures:
        print("docs/metrics.md is stale: run .venv/bin/python deploy/tools/metrics_catalogue.py --write")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
