#!/usr/bin/env bash
# `make demo`: start the local stack, make sure a demo workspace, key and agent exist, upload the bundled
# 200-contact CSV with the simulated telephone network sped up, follow it live in the CLI, then print a
# summary, the dashboard URL and the key. Safe to re-run: the workspace, key and agent are reused (their
# ids are kept in .stack/demo.json), and each run is a new batch.
#
# Environment:
#   DEMO_TIME_SCALE=0.05   the simulated provider's time scale (0.05 = 20x faster than real calls)
#   DEMO_CSV=samples/contacts-200.csv
#   DEMO_WORKSPACE=ws_demo
#   DEMO_WATCH=1           0: start the batch and return without following it
#   DEMO_STACK=1           0: use the API at BATCHCALLS_URL as it is (a stack you started yourself)
#   GATEWAY_PORT=8080
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
CLI=.venv/bin/batchcalls
STATE=${DEMO_STATE:-.stack/demo.json}
CSV=${DEMO_CSV:-samples/contacts-200.csv}
WORKSPACE=${DEMO_WORKSPACE:-ws_demo}
TIME_SCALE=${DEMO_TIME_SCALE:-0.05}
AGENT_NAME="Demo appointment reminder"
export BATCHCALLS_URL=${BATCHCALLS_URL:-http://127.0.0.1:${GATEWAY_PORT:-8080}}

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mdemo:\033[0m %s\n' "$*" >&2; exit 1; }

[[ -x $PY && -x $CLI ]] || scripts/install.sh
[[ -f $CSV ]] || die "no sample CSV at $CSV"
mkdir -p "$(dirname "$STATE")" .stack

# --- 1. the stack, with the simulated provider at the demo time scale ------------------------------------
# The dialer reads DIALER_SIM_TIME_SCALE at start. When the stack is already up, look at the running
# dialer's environment and restart only the dialer if its time scale differs (a few seconds, nothing lost:
# the dialer drains its active calls and call requests wait in Kafka).
export DIALER_SIM_TIME_SCALE=$TIME_SCALE
dialer_scale() {
    local pid_file=.stack/run/dialer.pid pid
    [[ -f $pid_file ]] || pid_file=.stack/run/dialer-1.pid
    [[ -f $pid_file ]] || return 0
    pid=$(<"$pid_file")
    # The pid file names the launcher; the Python process may be its child.
    for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
        if [[ -r /proc/$p/environ ]] && tr '\0' '\n' <"/proc/$p/environ" | grep -q '^DIALER_SIM_TIME_SCALE='; then
            tr '\0' '\n' <"/proc/$p/environ" | sed -n 's/^DIALER_SIM_TIME_SCALE=//p'
            return 0
        fi
    done
    echo "1.0"
}
# `up` is idempotent: it starts only what is not running yet (every part: STACK_PARTS is not inherited).
if [[ ${DEMO_STACK:-1} == 1 ]]; then
    say "starting the stack (Kafka, FerretDB, gateway, ingest, dispatcher, dialer, status) if needed ..."
    env -u STACK_PARTS stack/stack.sh up
    if [[ "$(dialer_scale)" != "$TIME_SCALE" ]]; then
        say "restarting the dialer with the demo time scale $TIME_SCALE (it was $(dialer_scale))"
        env -u STACK_PARTS stack/stack.sh restart dialer
    fi
fi

# --- 2. the demo workspace and its key (created once, reused afterwards) ----------------------------------
key_works() {
    BATCHCALLS_WORKSPACE=$1 BATCHCALLS_API_KEY=$2 "$CLI" agents list --json >/dev/null 2>&1
}
workspace_id="" api_key=""
if [[ -f $STATE ]]; then
    workspace_id=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["workspace_id"])' "$STATE")
    api_key=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_key"])' "$STATE")
fi
if [[ -z $api_key ]] || ! key_works "$workspace_id" "$api_key"; then
    say "creating the demo workspace $WORKSPACE and its API key"
    # A roomier plan than the starter one, so 200 calls finish in a minute or two.
    umask 077
    "$PY" -m ingest admin create-workspace --name "Demo" --workspace-id "$WORKSPACE" \
        --plan-name demo --cps 10 --max-concurrent 20 --rpm 600 >"$STATE.tmp"
    mv "$STATE.tmp" "$STATE"
    workspace_id=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["workspace_id"])' "$STATE")
    api_key=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_key"])' "$STATE")
    key_works "$workspace_id" "$api_key" || die "the new key is refused by the API (see .stack/logs/ingest.log)"
else
    say "reusing the demo workspace $workspace_id (key in $STATE)"
fi
export BATCHCALLS_WORKSPACE=$workspace_id BATCHCALLS_API_KEY=$api_key

# --- 3. the demo agent (found by name, else created) -------------------------------------------------------
agent_id=$("$CLI" agents list --json | "$PY" -c '
import json, sys
name = sys.argv[1]
found = [a["id"] for a in json.load(sys.stdin).get("agents", []) if a.get("name") == name]
print(found[0] if found else "")' "$AGENT_NAME")
if [[ -z $agent_id ]]; then
    agent_id=$("$CLI" agents create --json --name "$AGENT_NAME" --caller-id +14155550199 \
        --prompt "Hello {first_name}, this is {clinic} calling to confirm your {service} on {appointment_date} at {appointment_time}. Say 'stop' and we will not call again." \
        | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    say "created the agent $agent_id"
else
    say "reusing the agent $agent_id"
fi

# --- 4. check the file, then start and follow the batch ---------------------------------------------------
say "checking $CSV (a few rows are deliberately bad: they are skipped, the rest are called)"
set +e
"$CLI" validate "$CSV" --agent "$agent_id"
rc=$?
set -e
[[ $rc == 0 || $rc == 3 ]] || die "validation failed (exit $rc)"

# The calling window: by default nobody is called outside 08:00-21:00 in their own time zone. The sample
# has numbers in North America, Europe and Australia, so at any hour some of them are outside it and the
# demo would wait for their morning. The demo opts into every day, 00:00-23:59 local time so it finishes
# now; real batches should keep the default or a narrower window. Retries: at most 2 attempts, 10 s apart
# (the defaults wait minutes between attempts).
say "starting the batch: calling window all days 00:00-23:59 (so the demo finishes now), 2 attempts 10 s apart"
batch_id=$("$CLI" start "$CSV" --agent "$agent_id" --window "all 00:00-23:59 UTC" --retry "2:10s" \
    --name "demo $(date -u +%Y-%m-%dT%H:%M:%SZ)" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["batchId"])')
say "batch $batch_id started"

if [[ ${DEMO_WATCH:-1} == 1 ]]; then
    set +e
    "$CLI" watch "$batch_id"
    rc=$?
    set -e
    [[ $rc == 0 || $rc == 10 ]] || die "following the batch failed (exit $rc); it keeps running: $CLI watch $batch_id"
    "$CLI" status "$batch_id"
    say "the failed calls and why:"
    "$CLI" calls "$batch_id" --status failed --limit 10 || true
    "$CLI" export "$batch_id" -o ".stack/demo-results.csv" || true
fi

cat <<EOF

  Dashboard:  $BATCHCALLS_URL/app/#batch=$batch_id
  Workspace:  $workspace_id
  API key:    $api_key
  Results:    .stack/demo-results.csv

  Try the CLI:
    export BATCHCALLS_WORKSPACE=$workspace_id BATCHCALLS_API_KEY=$api_key
    $CLI status $batch_id
    $CLI calls $batch_id --status failed
  or the reference API:
    curl -s $BATCHCALLS_URL/v1/batch-calls/$batch_id -H "x-api-key: $api_key" -H "x-workspace-id: $workspace_id"

EOF
