"""A seeded fault-injection run on the local stack: `make chaos` → bench/results/chaos.json.

20,000 contacts across three workspaces with different limits, the simulated provider with realistic call
lengths at the stack's time scale (DIALER_SIM_TIME_SCALE, 0.05 by default). While it runs, each part is hit
once at a seeded random moment: ingest is killed (-9) while it publishes, then the dispatcher, one of the two
dialers and status; the Kafka broker is restarted and FerretDB is killed (-9). The stack's supervisor brings
each back. At the end the public API is compared with the simulated provider's own append-only record of
every dial (DIALER_SIM_DIAL_LOG):

- `lost`: data rows not in a terminal state (or missing) in the API;
- `double_dialed`: attempt ids the provider dialed more than once;
- `limit_violations`: moments a workspace had more calls on the line than its plan's concurrent calls, or
  more call starts in a one-second window than its calls per second (from the provider's own timestamps);
- `api_mismatches`: contacts whose outcome or attempt count in the API disagrees with what was dialed;
- `recovery_seconds_max`: the longest time from a fault until the part answered healthy again.

Needs the whole stack up with two dialers (`DIALER_REPLICAS=2 make up`) and nobody else's tests using it.
Options: `--seed N` (default 1), `--contacts N`, `--timeout S`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.stack_client import GATEWAY, OPEN_WINDOW, Api, contacts_csv, create_workspace

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".stack" / "run"
RESULTS = ROOT / "bench" / "results" / "chaos.json"
DIAL_LOG = Path(os.environ.get("DIALER_SIM_DIAL_LOG", ROOT / ".stack" / "logs" / "dials.jsonl"))
STACK = str(ROOT / "stack" / "stack.sh")

AREA_CODES = ("202", "212", "312", "415", "617", "713", "305", "206", "303", "404")
RETRIES = json.dumps({"enabled": True, "maxAttempts": 2, "gaps": [{"seconds": 5}]})
MAX_CALL_SECONDS = 60
"""The agents' longest call: with the 60 s lease grace, a call cut by a killed dialer frees its slot
after two minutes (simulated talk time is capped at 60 s, 3 s real at the default time scale)."""


@dataclass(frozen=True)
class WorkspacePlan:
    label: str
    cps: float
    max_concurrent: int
    contacts: int
    batches: int


PLANS = (
    WorkspacePlan("chaos_a", cps=50, max_concurrent=100, contacts=11_000, batches=2),
    WorkspacePlan("chaos_b", cps=25, max_concurrent=40, contacts=6_000, batches=1),
    WorkspacePlan("chaos_c", cps=10, max_concurrent=15, contacts=3_000, batches=1),
)


@dataclass
class Fault:
    part: str
    action: str
    at_s: float = 0.0
    recovered_s: float | None = None
    detail: str = ""


@dataclass
class Run:
    seed: int
    t0: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    killed_dialer: tuple[str, datetime] | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the stack ---------------------------------------------------------------------------------------------


def pid_of(instance: str) -> int | None:
    try:
        return int((RUN / f"{instance}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def healthy(instance: str) -> bool:
    ports = {"ingest": 8001, "status": 8002, "dispatcher": 8003, "dialer-1": 8004, "dialer-2": 8005}
    if instance in ports:
        try:
            return httpx.get(f"http://127.0.0.1:{ports[instance]}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    done = subprocess.run([STACK, "status"], capture_output=True, text=True, env={**os.environ})
    return any(line.split()[:2] == [instance, "healthy"] for line in done.stdout.splitlines())


def check_stack() -> None:
    done = subprocess.run([STACK, "status"], capture_output=True, text=True)
    lines = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines() if line.strip()}
    wanted = ["kafka", "ferretdb", "gateway", "ingest", "status", "dispatcher", "dialer-1", "dialer-2"]
    bad = {p: lines.get(p, "absent") for p in wanted if lines.get(p) != "healthy"}
    if bad or lines.get("supervisor") != "running":
        raise SystemExit(
            f"chaos: the stack is not fully up ({bad or 'supervisor down'}); start it with "
            "DIALER_REPLICAS=2 stack/stack.sh up"
        )
    tests = subprocess.run(["pgrep", "-af", "pytest"], capture_output=True, text=True).stdout.strip()
    if tests and "--force" not in sys.argv:
        raise SystemExit(
            f"chaos: tests are running against the stack, not starting (--force to ignore):\n{tests}"
        )


def kill9(run: Run, instance: str) -> None:
    pid = pid_of(instance)
    fault = Fault(instance, "kill -9", at_s=run.now())
    run.faults.append(fault)
    if pid is None:
        fault.detail = "no pid file"
        log(f"{instance}: no pid to kill")
        return
    if instance.startswith("dialer"):
        run.killed_dialer = (instance, datetime.now().astimezone())
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        os.kill(pid, signal.SIGKILL)
    fault.detail = f"pid {pid}"
    log(f"{instance}: kill -9 {pid} at {fault.at_s:.1f}s")
    _await_recovery(run, fault, pid)


def restart(run: Run, instance: str) -> None:
    fault = Fault(instance, "stack.sh restart", at_s=run.now())
    run.faults.append(fault)
    log(f"{instance}: restarting at {fault.at_s:.1f}s")
    done = subprocess.run([STACK, "restart", instance], capture_output=True, text=True, timeout=300)
    fault.detail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    _await_recovery(run, fault, None)


def _await_recovery(run: Run, fault: Fault, old_pid: int | None, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while time.monotonic() < deadline:
        pid = pid_of(fault.part)
        if (old_pid is None or (pid is not None and pid != old_pid)) and healthy(fault.part):
            fault.recovered_s = round(run.now() - fault.at_s, 2)
            log(f"{fault.part}: healthy again after {fault.recovered_s}s")
            return
        time.sleep(0.5)
    log(f"{fault.part}: NOT recovered within {timeout}s")


# --- the workload ------------------------------------------------------------------------------------------


def numbers(rng: random.Random, count: int, used: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        area = rng.choice(AREA_CODES)
        line = rng.randrange(1000, 10_000)  # 555-1000..9999: valid, never the 555-01XX test numbers
        number = f"+1{area}555{line:04d}"
        if number not in used:
            used.add(number)
            out.append(number)
    return out


@dataclass
class Batch:
    batch_id: str
    workspace: str
    rows: int


def upload(run: Run, rng: random.Random) -> tuple[dict[str, Api], dict[str, WorkspacePlan], list[Batch]]:
    apis: dict[str, Api] = {}
    plans: dict[str, WorkspacePlan] = {}
    batches: list[Batch] = []
    used: set[str] = set()
    for plan in PLANS:
        ws = create_workspace(
            plan.label, cps=plan.cps, max_concurrent=plan.max_concurrent, max_records=20_000
        )
        api = Api(ws, timeout=120)
        apis[ws.workspace_id], plans[ws.workspace_id] = api, plan
        agent = api.create_agent(prompt="Hello {first_name}", max_call_seconds=MAX_CALL_SECONDS)
        per_batch = plan.contacts // plan.batches
        for _ in range(plan.batches):
            body = contacts_csv(numbers(rng, per_batch, used))
            batch_id = api.start_ok(body, agent, callingWindow=OPEN_WINDOW, smartCallbackConfig=RETRIES)
            batches.append(Batch(batch_id, ws.workspace_id, per_batch))
            log(f"{plan.label}: batch {batch_id} with {per_batch} contacts")
            if plan is PLANS[0] and len(batches) == 1:
                # While ingest publishes this batch's 5,500 rows in the background.
                time.sleep(rng.uniform(0.2, 1.0))
                kill9(run, "ingest")
    return apis, plans, batches


def wait_all(run: Run, apis: dict[str, Api], batches: list[Batch], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        done = 0
        for batch in batches:
            try:
                got = apis[batch.workspace].http.get(f"/v1/batch-calls/{batch.batch_id}", timeout=10)
            except httpx.HTTPError:
                continue
            if got.status_code == 200:
                last[batch.batch_id] = got.json()
                done += bool(last[batch.batch_id].get("isComplete"))
        if done == len(batches):
            return last
        time.sleep(2)
    log("timeout: not every batch completed")
    return last


def export(api: Api, batch_id: str) -> list[dict[str, str]]:
    for _ in range(10):
        try:
            got = api.http.get(f"/v1/batch-calls/{batch_id}/export", timeout=120)
            if got.status_code == 200:
                return list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise RuntimeError(f"export of {batch_id} failed")


# --- the independent record --------------------------------------------------------------------------------


@dataclass
class Dial:
    attempt_id: str
    instance: str
    start: datetime
    end: datetime | None = None
    outcome: str | None = None


def read_dials(offset: int, batch_ids: set[str]) -> tuple[dict[str, list[Dial]], int]:
    """Every dial of our batches since `offset`, by attempt id (a list: more than one is a double dial)."""
    dials: dict[str, list[Dial]] = defaultdict(list)
    lines = 0
    with DIAL_LOG.open("rb") as source:
        source.seek(offset)
        for raw in source:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a line cut by a kill -9 mid-write
            attempt = line["attempt_id"]
            if attempt.split("_r")[0] not in batch_ids:
                continue
            lines += 1
            at = datetime.fromisoformat(line["at"])
            if line["event"] == "dial":
                dials[attempt].append(Dial(attempt, line["instance"], at))
            else:
                open_dials = [d for d in dials[attempt] if d.end is None]
                if open_dials:
                    open_dials[-1].end, open_dials[-1].outcome = at, line.get("outcome")
    return dials, lines


def limit_violations(
    dials: dict[str, list[Dial]], plans: dict[str, WorkspacePlan], workspace_of: dict[str, str], run: Run
) -> dict[str, Any]:
    """Concurrency and start-rate breaches per workspace, from the provider's timestamps."""
    killed = run.killed_dialer
    end_of_run = datetime.now().astimezone()
    per_ws: dict[str, list[Dial]] = defaultdict(list)
    for attempts in dials.values():
        for dial in attempts:
            per_ws[workspace_of[dial.attempt_id.split("_r")[0]]].append(dial)
    report: dict[str, Any] = {"concurrency": 0, "cps": 0, "per_workspace": {}}
    for ws, items in per_ws.items():
        plan = plans[ws]
        events: list[tuple[datetime, int]] = []
        for dial in items:
            end = dial.end
            if end is None:  # cut short: its dialer was killed (the line went down then)
                end = killed[1] if killed and dial.instance.endswith(killed[0]) else end_of_run
            events.append((dial.start, 1))
            events.append((end, -1))
        events.sort(key=lambda e: (e[0], e[1]))  # an end at the same instant frees the slot first
        active = peak = over = 0
        for _, delta in events:
            active += delta
            peak = max(peak, active)
            if delta > 0 and active > plan.max_concurrent:
                over += 1
        starts = sorted(d.start.timestamp() for d in items)
        worst = cps_over = 0
        left = 0
        for right, t in enumerate(starts):
            while starts[left] <= t - 1.0:
                left += 1
            in_window = right - left + 1
            worst = max(worst, in_window)
            if in_window > plan.cps:
                cps_over += 1
        report["per_workspace"][plan.label] = {
            "max_concurrent": plan.max_concurrent,
            "peak_concurrent": peak,
            "concurrency_over": over,
            "cps": plan.cps,
            "peak_starts_in_1s": worst,
            "cps_over": cps_over,
            "dials": len(items),
        }
        report["concurrency"] += over
        report["cps"] += cps_over
    report["total"] = report["concurrency"] + report["cps"]
    return report


# --- the run -----------------------------------------------------------------------------------------------


def chaos(seed: int, timeout: float) -> dict[str, Any]:
    check_stack()
    rng = random.Random(seed)
    run = Run(seed)
    offset = DIAL_LOG.stat().st_size if DIAL_LOG.exists() else 0
    log(f"seed {seed}; dial log {DIAL_LOG} from byte {offset}")

    apis, plans, batches = upload(run, rng)
    schedule: list[tuple[float, Callable[[Run, str], None], str]] = [
        (rng.uniform(15, 35), kill9, "dispatcher"),
        (rng.uniform(45, 65), kill9, "dialer-2"),
        (rng.uniform(75, 95), kill9, "status"),
        (rng.uniform(105, 125), restart, "kafka"),
        (rng.uniform(150, 170), kill9, "ferretdb"),
    ]
    uploaded_at = run.now()

    def inject() -> None:
        for at, fault, part in schedule:
            wait = uploaded_at + at - run.now()
            if wait > 0:
                time.sleep(wait)
            fault(run, part)

    injector = threading.Thread(target=inject, name="faults", daemon=True)
    injector.start()
    final = wait_all(run, apis, batches, timeout)
    injector.join(timeout=600)
    duration = run.now()
    log(f"all batches ended after {duration:.0f}s; comparing the API with the dial log")

    workspace_of = {b.batch_id: b.workspace for b in batches}
    dials, lines = read_dials(offset, set(workspace_of))
    exported: dict[str, dict[str, str]] = {}
    for batch in batches:
        for row in export(apis[batch.workspace], batch.batch_id):
            exported[row["jobId"]] = row
    expected = {f"{b.batch_id}_r{n}" for b in batches for n in range(1, b.rows + 1)}

    terminal = {"completed", "failed", "cancelled"}
    lost = sorted(j for j in expected if exported.get(j, {}).get("status") not in terminal)
    double = sorted(a for a, d in dials.items() if len(d) > 1)
    by_contact: dict[str, list[str]] = defaultdict(list)
    for attempt in dials:
        by_contact[attempt.rsplit("_a", 1)[0]].append(attempt)
    mismatches: list[dict[str, Any]] = []
    requested_not_dialed = 0
    for job_id in sorted(expected):
        found = exported.get(job_id)
        if found is None:
            continue
        row = found
        attempts = sorted(by_contact.get(job_id, []), key=lambda a: int(a.rsplit("_a", 1)[1]))
        api_attempts = int(row.get("attempts") or 0)
        if api_attempts < len(attempts):
            mismatches.append({"jobId": job_id, "api_attempts": api_attempts, "dialed": attempts})
            continue
        requested_not_dialed += api_attempts - len(attempts)
        last = dials[attempts[-1]][-1] if attempts else None
        if last is not None and last.outcome and row.get("outcome") and row["outcome"] != last.outcome:
            mismatches.append(
                {"jobId": job_id, "api_outcome": row["outcome"], "dialed_outcome": last.outcome}
            )
    dialed_never_ended = sum(1 for d in dials.values() for x in d if x.end is None)
    limits = limit_violations(dials, plans, workspace_of, run)
    recoveries = [f.recovered_s for f in run.faults if f.recovered_s is not None]
    result = {
        "seed": seed,
        "contacts": len(expected),
        "lost": len(lost),
        "double_dialed": len(double),
        "limit_violations": limits["total"],
        "api_mismatches": len(mismatches),
        "recovery_seconds_max": max(recoveries) if recoveries else None,
        "duration_seconds": round(duration, 1),
        "faults": [asdict(f) for f in run.faults],
        "unrecovered_faults": [f.part for f in run.faults if f.recovered_s is None],
        "dials": sum(len(d) for d in dials.values()),
        "dial_log_lines": lines,
        "dials_cut_short": dialed_never_ended,
        "attempts_requested_not_dialed": requested_not_dialed,
        "limits": limits,
        "batches": {
            b: {"status": s.get("status"), "isComplete": s.get("isComplete")} for b, s in final.items()
        },
        "outcomes": dict(Counter(r.get("outcome") or r.get("status") for r in exported.values())),
        "time_scale": os.environ.get("DIALER_SIM_TIME_SCALE", "0.05 (stack default)"),
        "examples": {"lost": lost[:10], "double_dialed": double[:10], "api_mismatches": mismatches[:10]},
    }
    for api in apis.values():
        api.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", "1")))
    parser.add_argument("--timeout", type=float, default=780.0, help="seconds to wait for every batch")
    parser.add_argument("--force", action="store_true", help="run even if tests are running")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = chaos(args.seed, args.timeout)
    runs: list[dict[str, Any]] = []
    if args.out.exists():
        try:
            previous = json.loads(args.out.read_text())
            runs = [r for r in previous.get("runs", []) if r.get("seed") != args.seed]
        except ValueError:
            runs = []
    runs.append(result)
    summary = {
        **{k: result[k] for k in ("seed", "contacts", "lost", "double_dialed", "limit_violations")},
        "api_mismatches": result["api_mismatches"],
        "recovery_seconds_max": result["recovery_seconds_max"],
        "command": f".venv/bin/python -m bench.chaos --seed {args.seed}",
        "gateway": GATEWAY,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    keys = ("contacts", "lost", "double_dialed", "limit_violations", "api_mismatches", "recovery_seconds_max")
    log(json.dumps({k: result[k] for k in keys}))
    ok = all(result[k] == 0 for k in ("lost", "double_dialed", "limit_violations", "api_mismatches"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
