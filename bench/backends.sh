#!/usr/bin/env bash
# FerretDB on SQLite vs PostgreSQL, same machine, same session, alternating (ADR 0005).
#
#   BC_FERRETDB_BACKEND=postgresql STACK_PARTS="kafka ferretdb" stack/stack.sh up
#   bench/backends.sh [rounds=3]
#   .venv/bin/python -m bench.backends        # -> bench/results/backends.json
#
# The stack's FerretDB (27017) is the PostgreSQL one; this script adds, for the time of the run, a FerretDB on
# SQLite (27018, .stack/data/ferretdb-compare) and one on the same PostgreSQL without the GIN lookup indexes
# (27019, database ferretdb_plain), and points each benchmark at one of them with BC_MONGO_URL. Every run's
# result is copied to bench/work/<bench>-<backend>-<round>.json (the benchmarks' own result files are
# overwritten on the way: restore them from git afterwards). bench.store writes bench/results/store.json.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-3}
W=bench/work
BIN=.stack/cache/bin/ferretdb-launcher
PSQL="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql -X -q -h 127.0.0.1 -p ${POSTGRES_PORT:-54320} -U postgres"
declare -A URL=([sqlite]=mongodb://127.0.0.1:27018/ [postgresql]=mongodb://127.0.0.1:27017/
                [postgresql_without_lookup_indexes]=mongodb://127.0.0.1:27019/)
log() { echo "$(date -u +%H:%M:%S) $*"; }
mkdir -p "$W" .stack/data/ferretdb-compare .stack/logs

$PSQL -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'ferretdb_plain'" | grep -q 1 ||
    $PSQL -d postgres -c "CREATE DATABASE ferretdb_plain" || exit 1
"$BIN" -port 27018 -backend sqlite -data-dir .stack/data/ferretdb-compare >>.stack/logs/ferretdb-compare.log 2>&1 &
SQLITE_PID=$!
"$BIN" -port 27019 -backend postgresql \
    -postgresql-url "postgres://postgres@127.0.0.1:${POSTGRES_PORT:-54320}/ferretdb_plain?pool_max_conns=250&sslmode=disable" \
    >>.stack/logs/ferretdb-compare.log 2>&1 &
PLAIN_PID=$!
trap 'kill $SQLITE_PID $PLAIN_PID 2>/dev/null' EXIT
sleep 2

for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order="sqlite postgresql"; else order="postgresql sqlite"; fi
    for b in $order; do
        export BC_MONGO_URL=${URL[$b]}
        # One page request on SQLite: it scans the calls collection for minutes there.
        pages=3; [[ $b == sqlite ]] && pages=1
        log "round $r $b dialer"
        .venv/bin/python -m bench.dialer --runs 1 --instant-calls 20000 --held-calls 500 >"$W/dialer-$b-$r.log" 2>&1 &&
            cp bench/results/dialer.json "$W/dialer-$b-$r.json" || log "dialer $b $r FAILED"
        log "round $r $b dispatch"
        .venv/bin/python -m bench.dispatch --runs 1 --limit-contacts 0 --cancel-runs 0 --fair-waiting 0 \
            --rss-waiting 0 --throughput-contacts 30000 --out "$W/dispatch-$b-$r.json" >"$W/dispatch-$b-$r.log" 2>&1 ||
            log "dispatch $b $r FAILED"
        log "round $r $b status"
        .venv/bin/python -m bench.status --contacts 10000 --runs 1 --freshness-seconds 10 --status-seconds 10 \
            --page-requests "$pages" --page 30 >"$W/status-$b-$r.log" 2>&1 &&
            cp bench/results/status.json "$W/status-$b-$r.json" || log "status $b $r FAILED"
    done
done
for b in postgresql postgresql_without_lookup_indexes sqlite; do
    log "store $b"
    # One run on SQLite: its scans make a run take minutes there.
    hang=--hang-checks; runs=3; [[ $b == sqlite ]] && { hang=""; runs=1; }
    BC_MONGO_URL=${URL[$b]} .venv/bin/python -m bench.store --backend "$b" --runs "$runs" $hang >"$W/store-$b.log" 2>&1 ||
        log "store $b FAILED"
done
# Last: on SQLite the bulk check hangs that FerretDB (it is stopped on exit anyway).
log "sqlite hang checks"
BC_MONGO_URL=${URL[sqlite]} timeout 120 .venv/bin/python -m bench.store --backend sqlite --runs 0 --hang-checks \
    >"$W/store-sqlite-hang.log" 2>&1 || log "sqlite hang checks FAILED"
log "done"
