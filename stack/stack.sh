#!/usr/bin/env bash
# Local stack for the batch-calls platform: Kafka (KRaft), FerretDB (MongoDB protocol on SQLite or on a
# local PostgreSQL), nginx gateway and the four Python services, all as plain background processes (no Docker).
#
# Usage:
#   stack/stack.sh up                   fetch/build what is missing, start all parts, wait until healthy
#   stack/stack.sh down                 stop supervisor, services, gateway, FerretDB, Kafka
#   stack/stack.sh status               one line per part; exits non-zero unless all are healthy
#   stack/stack.sh restart <part>       stop + start + wait healthy (part or instance, e.g. dialer-2)
#   stack/stack.sh logs <part> [-f] [-n N]
#
# Parts: kafka postgres ferretdb gateway ingest status dispatcher dialer
#   (postgres comes with ferretdb on the postgresql backend, the default; none with BC_FERRETDB_BACKEND=sqlite)
#
# Environment:
#   STACK_PARTS="kafka ferretdb gateway"  only these parts (default: all; `status` defaults to the
#                                         parts of the last `up`)
#   BC_FERRETDB_BACKEND=postgresql        FerretDB's storage: postgresql (a PostgreSQL of our own in
#                                         .stack/data/postgres; ADR 0005) or sqlite (files in .stack/data/ferretdb)
#   KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093 FERRETDB_PORT=27017 GATEWAY_PORT=8080 POSTGRES_PORT=54320
#   INGEST_PORT=8001 STATUS_PORT=8002 DISPATCHER_PORT=8003 DIALER_PORT=8004
#   DIALER_REPLICAS=1                     2 -> dialer-1 on DIALER_PORT, dialer-2 on DIALER_PORT+1
#   DIALER_SIM_TIME_SCALE=0.05            simulated call lengths x this (0.05: 20x faster than real time)
#   DIALER_SIM_DIAL_LOG=.stack/logs/dials.jsonl  the simulated provider's append-only record of every dial
#   BC_TOPIC_PREFIX=bc.                   prefix for the topics from `python -m shared.topics`
#   KAFKA_HEAP_OPTS="-Xmx512m"            JVM options for the broker
#   STACK_PYTHON=.venv/bin/python         interpreter for probes and services
#   STACK_TIMEOUT_<PART>=<s>              health-wait timeouts (KAFKA 90, POSTGRES 30, FERRETDB 30,
#                                         GATEWAY 15, services 60)
#   POSTGRES_BIN=/usr/lib/postgresql/15/bin  PostgreSQL's programs (default: the newest installed)
#   FERRETDB_PG_LOOKUP_INDEXES=1          0: no GIN lookup index beside FerretDB's btree ones (ADR 0005)
#   FERRETDB_GOGC=400 FERRETDB_GOMEMLIMIT=1GiB  Go's collector settings for FerretDB (ADR 0058)
#   STACK_SUPERVISE=0                     do not start the supervisor
#
# Everything fetched or generated lives under .stack/ (git-ignored):
#   .stack/cache (kafka-libs/, bin/ferretdb-launcher), .stack/data, .stack/logs/<part>.log,
#   .stack/run/<part>.pid, .stack/nginx (rendered nginx.conf + temp dirs).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/stack
ST=$ROOT/.stack
CACHE=$ST/cache
DATA=$ST/data
LOGS=$ST/logs
RUN=$ST/run
NGX=$ST/nginx
SELF=$SRC/stack.sh

PY=${STACK_PYTHON:-$ROOT/.venv/bin/python}
PROBE=$SRC/lib/probe.py

KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
FERRETDB_PORT=${FERRETDB_PORT:-27017}
# Until `down`, a stack keeps the backend it was started with (restart, the supervisor, a second `up`); a
# FerretDB started before backends were recorded is on SQLite.
default_backend() {
    local run=$ROOT/.stack/run
    if [[ -s $run/ferretdb.backend ]]; then cat "$run/ferretdb.backend"
    elif [[ -s $run/ferretdb.pid ]]; then echo sqlite
    else echo postgresql
    fi
}
FERRETDB_BACKEND=${BC_FERRETDB_BACKEND:-$(default_backend)}
POSTGRES_PORT=${POSTGRES_PORT:-54320}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
INGEST_PORT=${INGEST_PORT:-8001}
STATUS_PORT=${STATUS_PORT:-8002}
DISPATCHER_PORT=${DISPATCHER_PORT:-8003}
DIALER_PORT=${DIALER_PORT:-8004}
DIALER_REPLICAS=${DIALER_REPLICAS:-1}
BC_TOPIC_PREFIX=${BC_TOPIC_PREFIX-bc.}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m}

KAFKA_LIBS=$CACHE/kafka-libs
FERRET_BIN=$CACHE/bin/ferretdb-launcher
JAVA=${JAVA:-java}

ALL_PARTS="kafka postgres ferretdb gateway ingest status dispatcher dialer"
SERVICE_PARTS="ingest status dispatcher dialer"

# ------------------------------------------------------------------------------------------------
# output helpers

say()  { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
err()  { printf '[stack] ERROR: %s\n' "$*" >&2; }
now_ms() { date +%s%3N; }
secs_since() { local d=$(( $(now_ms) - $1 )); printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100)); }
rel() { printf '%s' "${1#"$ROOT"/}"; }

# ------------------------------------------------------------------------------------------------
# parts, instances, ports

is_part() { [[ " $ALL_PARTS " == *" $1 "* ]]; }
is_service() { [[ " $SERVICE_PARTS " == *" ${1%%-*} "* ]]; }
part_of() { printf '%s' "${1%%-[0-9]*}"; }

instances_of() {  # part -> instance names
    if [[ $1 == dialer && $DIALER_REPLICAS -gt 1 ]]; then
        local i; for ((i = 1; i <= DIALER_REPLICAS; i++)); do printf 'dialer-%d\n' "$i"; done
    else
        printf '%s\n' "$1"
    fi
}

inst_port() {  # main port of an instance
    case $1 in
        kafka) echo "$KAFKA_PORT" ;;
        postgres) echo "$POSTGRES_PORT" ;;
        ferretdb) echo "$FERRETDB_PORT" ;;
        gateway) echo "$GATEWAY_PORT" ;;
        ingest) echo "$INGEST_PORT" ;;
        status) echo "$STATUS_PORT" ;;
        dispatcher) echo "$DISPATCHER_PORT" ;;
        dialer) echo "$DIALER_PORT" ;;
        dialer-*) echo $((DIALER_PORT + ${1#dialer-} - 1)) ;;
    esac
}

inst_ports() {  # "VARNAME=port ..." for every port an instance listens on
    case $1 in
        kafka) echo "KAFKA_PORT=$KAFKA_PORT KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT" ;;
        postgres) echo "POSTGRES_PORT=$POSTGRES_PORT" ;;
        ferretdb) echo "FERRETDB_PORT=$FERRETDB_PORT" ;;
        gateway) echo "GATEWAY_PORT=$GATEWAY_PORT" ;;
        ingest) echo "INGEST_PORT=$INGEST_PORT" ;;
        status) echo "STATUS_PORT=$STATUS_PORT" ;;
        dispatcher) echo "DISPATCHER_PORT=$DISPATCHER_PORT" ;;
        dialer*) echo "DIALER_PORT=$(inst_port "$1")" ;;
    esac
}

inst_marker() {  # a string the instance's command line must contain
    case $1 in
        kafka) echo "kafka.Kafka" ;;
        postgres) echo "postgres -D $PG_DATA" ;;
        ferretdb) echo "ferretdb-launcher" ;;
        gateway) echo "nginx" ;;
        supervisor) echo "stack.sh _supervise" ;;
        *) echo " -m $(part_of "$1")" ;;
    esac
}

inst_timeout() {
    local p; p=$(part_of "$1")
    local var="STACK_TIMEOUT_${p^^}"
    case $p in
        kafka) echo "${!var:-90}" ;;
        ferretdb|postgres) echo "${!var:-30}" ;;
        gateway) echo "${!var:-15}" ;;
        *) echo "${!var:-60}" ;;
    esac
}

# Canonical, validated list of instances for a space-separated part list. With the postgresql backend,
# FerretDB brings its PostgreSQL along; with sqlite there is no postgres part.
resolve_instances() {
    local want=" $* " p
    for p in "$@"; do
        if ! is_part "$p"; then
            err "unknown part '$p' (parts: $ALL_PARTS)"
            return 1
        fi
    done
    case $FERRETDB_BACKEND in
        postgresql) [[ $want == *" ferretdb "* ]] && want+="postgres " ;;
        sqlite) want=${want// postgres / } ;;
        *) err "BC_FERRETDB_BACKEND='$FERRETDB_BACKEND': use sqlite or postgresql"; return 1 ;;
    esac
    for p in $ALL_PARTS; do
        [[ $want == *" $p "* ]] && instances_of "$p"
    done
    return 0
}

# ------------------------------------------------------------------------------------------------
# processes

cmdline_of() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null; }

# Prints the pid of a running instance (pid file present, process alive, command line matches).
pid_of() {
    local f=$RUN/$1.pid pid state
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/stat ]] || return 1
    state=$(sed -E 's/.*\) ([A-Z]).*/\1/' "/proc/$pid/stat" 2>/dev/null)
    [[ $state == Z ]] && return 1
    [[ $(cmdline_of "$pid") == *"$(inst_marker "$1")"* ]] || return 1
    echo "$pid"
}

port_busy() {  # true if something listens on 127.0.0.1:<port> (or on any address with that port)
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

port_owner() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(.*)' | head -1
}

# launch <instance> <cmd...>: start in its own session (so its whole process group can be
# signalled), stdout+stderr appended to .stack/logs/<instance>.log, pid in .stack/run/<instance>.pid.
launch() {
    local inst=$1; shift
    local pidf=$RUN/$inst.pid log=$LOGS/$inst.log i
    rm -f "$pidf"
    printf '\n===== %s stack.sh: starting %s =====\n' "$(date -Is)" "$inst" >>"$log"
    (
        cd "$ROOT" || exit 1
        # shellcheck disable=SC2016
        exec setsid env BC_STACK_ROOT="$ROOT" BC_STACK_INSTANCE="$inst" \
            bash -c 'echo $$ > "$0"; exec "$@"' "$pidf" "$@"
    ) >>"$log" 2>&1 </dev/null &
    for ((i = 0; i < 100; i++)); do
        [[ -s $pidf ]] && return 0
        sleep 0.05
    done
    err "$inst: process did not start (see $(rel "$log"))"
    return 1
}

# A process group / process counts as alive while it has a member that is not a zombie
# (a dead child stays a zombie until its parent, often init, reaps it; kill -0 still succeeds).
group_alive() {
    ps -eo pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}
proc_alive() {
    local st
    st=$(sed -E 's/.*\) ([A-Z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

# stop_inst <instance>: SIGTERM to its process group, wait, then SIGKILL; removes the pid file.
stop_inst() {
    local inst=$1 pidf=$RUN/$1.pid pid t limit t0
    [[ -f $pidf ]] || return 0
    t0=$(now_ms)
    pid=$(<"$pidf")
    if [[ $pid =~ ^[0-9]+$ ]] && { pid_of "$inst" >/dev/null || group_alive "$pid"; }; then
        case $(part_of "$inst") in kafka) limit=60 ;; postgres) limit=30 ;; *) limit=15 ;; esac
        if [[ $inst == postgres ]]; then
            # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") would wait for every client to leave.
            kill -INT "$pid" 2>/dev/null
        else
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        fi
        for ((t = 0; t < limit * 10; t++)); do
            group_alive "$pid" || proc_alive "$pid" || break
            sleep 0.1
        done
        if group_alive "$pid" || proc_alive "$pid"; then
            warn "$inst (pid $pid) did not stop within ${limit}s; sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null
            kill -KILL "$pid" 2>/dev/null
            sleep 0.2
        fi
        say "$(printf '%-11s stopped   pid %-8s (%s)' "$inst" "$pid" "$(secs_since "$t0")")"
    fi
    rm -f "$pidf"
    [[ $inst == gateway ]] && rm -f "$RUN/gateway-nginx.pid"
    return 0
}

# ------------------------------------------------------------------------------------------------
# prerequisites and artefacts

need_python() {
    if [[ ! -x $PY ]]; then
        err "$1: $PY not found: create the project venv first (python3 -m venv .venv and install the project into it), or set STACK_PYTHON"
        return 1
    fi
    local mods=$2
    if ! "$PY" -c "import $mods" 2>/dev/null; then
        err "$1: $(rel "$PY") cannot import $mods (needed for its health check): install them into the venv (.venv/bin/pip install ${mods//,/ })"
        return 1
    fi
}

check_java() {
    if ! command -v "$JAVA" >/dev/null 2>&1; then
        err "kafka: java is missing: install OpenJDK 17: apt-get install openjdk-17-jre-headless"
        return 1
    fi
    local v major
    v=$("$JAVA" -version 2>&1 | head -1)
    major=$(sed -E 's/.*version "([0-9]+).*/\1/' <<<"$v")
    if ! [[ $major =~ ^[0-9]+$ ]] || ((major < 17)); then
        err "kafka: Java 17 or newer is needed, found: $v: install OpenJDK 17: apt-get install openjdk-17-jre-headless"
        return 1
    fi
}

libs_hash() { cat "$SRC/kafka/pom.xml" | sha256sum | cut -d' ' -f1; }

kafka_libs_ready() {
    [[ -f $KAFKA_LIBS/.complete && $(<"$KAFKA_LIBS/.complete") == "$(libs_hash)" ]] &&
        compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null
}

ensure_kafka_libs() {
    kafka_libs_ready && return 0
    if ! command -v mvn >/dev/null 2>&1; then
        err "kafka: Maven (mvn) is missing and the Kafka jars are not cached yet: apt-get install maven"
        return 1
    fi
    local t0 log=$LOGS/kafka-fetch.log tmp=$KAFKA_LIBS.tmp
    t0=$(now_ms)
    say "kafka: resolving Kafka 4.4.0 jars with Maven (log: $(rel "$log")) ..."
    rm -rf "$tmp"
    if ! mvn -B -q -f "$SRC/kafka/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
        err "kafka: Maven could not fetch the Kafka jars (see $(rel "$log")): check access to Maven Central (and ~/.m2/settings.xml mirrors/proxies)"
        tail -n 15 "$log" >&2
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    libs_hash >"$KAFKA_LIBS/.complete"
    say "kafka: $(ls "$KAFKA_LIBS"/*.jar | wc -l) jars in $(rel "$KAFKA_LIBS") ($(secs_since "$t0"))"
}

ferret_hash() { cat "$SRC/ferretdb/main.go" "$SRC/ferretdb/go.mod" "$SRC/ferretdb/go.sum" | sha256sum | cut -d' ' -f1; }

ferret_bin_ready() {
    [[ -x $FERRET_BIN && -f $FERRET_BIN.srchash && $(<"$FERRET_BIN.srchash") == "$(ferret_hash)" ]]
}

find_go() {
    if command -v go >/dev/null 2>&1; then command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
    else return 1
    fi
}

check_go() {
    ferret_bin_ready && return 0
    local go v minor
    if ! go=$(find_go); then
        err "ferretdb: Go is missing and the launcher is not built yet: install Go 1.24 or newer and put it on PATH (Debian 12's golang-go 1.19 is too old)"
        return 1
    fi
    v=$("$go" env GOVERSION 2>/dev/null)
    minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$v")
    if ! [[ $minor =~ ^[0-9]+$ ]] || ((minor < 24)); then
        err "ferretdb: Go 1.24 or newer is needed to build the launcher, found ${v:-unknown} ($go)"
        return 1
    fi
}

# A running FerretDB must be on the selected backend: `up` would otherwise report it healthy and the
# services would use the other store.
check_ferret_backend() {
    local have
    pid_of ferretdb >/dev/null || return 0
    have=$(cat "$RUN/ferretdb.backend" 2>/dev/null || echo sqlite)
    if [[ $have != "$FERRETDB_BACKEND" ]]; then
        err "ferretdb: running on $have, but BC_FERRETDB_BACKEND=$FERRETDB_BACKEND: stop it first (stack/stack.sh down)"
        return 1
    fi
}

ensure_ferret_bin() {
    ferret_bin_ready && return 0
    local go t0 log=$LOGS/ferretdb-build.log
    go=$(find_go) || { check_go; return 1; }
    t0=$(now_ms)
    say "ferretdb: building the FerretDB v1.24.2 launcher with $("$go" env GOVERSION) (log: $(rel "$log")) ..."
    mkdir -p "$(dirname "$FERRET_BIN")"
    : >"$log"
    if ! (cd "$SRC/ferretdb" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly" "$go" mod download) >>"$log" 2>&1; then
        err "ferretdb: Go could not fetch the FerretDB modules (see $(rel "$log")): check access to the Go module proxy (GOPROXY=$("$go" env GOPROXY))"
        tail -n 15 "$log" >&2
        return 1
    fi
    if ! (cd "$SRC/ferretdb" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
        "$go" build -trimpath -o "$FERRET_BIN.tmp" .) >>"$log" 2>&1; then
        err "ferretdb: go build of the launcher failed (see $(rel "$log"))"
        tail -n 15 "$log" >&2
        rm -f "$FERRET_BIN.tmp"
        return 1
    fi
    mv "$FERRET_BIN.tmp" "$FERRET_BIN"
    ferret_hash >"$FERRET_BIN.srchash"
    say "ferretdb: built $(rel "$FERRET_BIN") ($(secs_since "$t0"))"
}

find_nginx() {
    if command -v nginx >/dev/null 2>&1; then command -v nginx
    elif [[ -x /usr/sbin/nginx ]]; then echo /usr/sbin/nginx
    else return 1
    fi
}

apt_install() {  # <part> <package> <log>: apt-get install as root, without letting the package start a
    # system service (a policy-rc.d that refuses, removed again unless it was there before)
    local part=$1 pkg=$2 log=$3 guard=""
    say "$part: installing $pkg (apt-get install $pkg; log: $(rel "$log")) ..."
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
    fi
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg"; } >"$log" 2>&1; then
        [[ -n $guard ]] && rm -f /usr/sbin/policy-rc.d
        err "$part: apt-get install $pkg failed (see $(rel "$log")): install it by hand: apt-get update && apt-get install -y $pkg"
        tail -n 10 "$log" >&2
        return 1
    fi
    [[ -n $guard ]] && rm -f /usr/sbin/policy-rc.d
    return 0
}

ensure_nginx() {
    find_nginx >/dev/null && return 0
    local log=$LOGS/gateway-install.log
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        err "gateway: nginx is missing: install it: apt-get install nginx"
        return 1
    fi
    # Keep the package's init script from starting a system nginx on port 80.
    apt_install gateway nginx "$log" || return 1
    find_nginx >/dev/null || { err "gateway: nginx still not found after installing it (see $(rel "$log"))"; return 1; }
}

# PostgreSQL (BC_FERRETDB_BACKEND=postgresql): the Debian package's server programs, run as the `postgres`
# system user when we are root (PostgreSQL refuses to run as root), else as ourselves.
PG_DATA=$DATA/postgres
PG_DB=ferretdb

find_pg_bin() {  # directory with postgres, initdb, pg_isready, psql
    local d
    if [[ -n ${POSTGRES_BIN:-} ]]; then
        [[ -x $POSTGRES_BIN/postgres ]] && { echo "$POSTGRES_BIN"; return 0; }
        return 1
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x $d/postgres && -x $d/initdb ]] && { echo "$d"; return 0; }
    done
    return 1
}

pg_user() { if [[ $(id -u) -eq 0 ]]; then echo postgres; else id -un; fi; }

as_pg() {  # run a command as the PostgreSQL owner (exec, no extra process: setpriv keeps the pid)
    if [[ $(id -u) -eq 0 ]]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

ensure_postgres() {
    local log=$LOGS/postgres-install.log
    if find_pg_bin >/dev/null; then
        if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
            err "postgres: the 'postgres' system user is missing (PostgreSQL will not run as root): reinstall the package: apt-get install --reinstall postgresql-common"
            return 1
        fi
        return 0
    fi
    if [[ -n ${POSTGRES_BIN:-} ]]; then
        err "postgres: POSTGRES_BIN=$POSTGRES_BIN has no postgres program"
        return 1
    fi
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        err "postgres: PostgreSQL is missing: install it: apt-get install postgresql (or use BC_FERRETDB_BACKEND=sqlite)"
        return 1
    fi
    # Keep the package from starting a system cluster on port 5432: we run our own.
    apt_install postgres postgresql "$log" || return 1
    find_pg_bin >/dev/null || { err "postgres: no /usr/lib/postgresql/*/bin/postgres after installing it (see $(rel "$log"))"; return 1; }
}

start_postgres() {
    local bin log=$LOGS/postgres-init.log have want owner
    bin=$(find_pg_bin) || { err "postgres: PostgreSQL is missing: apt-get install postgresql"; return 1; }
    want=$("$bin/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
    owner=$(pg_user)
    if [[ -f $PG_DATA/PG_VERSION ]]; then
        have=$(<"$PG_DATA/PG_VERSION")
        if [[ $have != "$want" ]]; then
            err "postgres: $(rel "$PG_DATA") was made by PostgreSQL $have, the installed one is $want: delete it (rm -rf $(rel "$PG_DATA")) or set POSTGRES_BIN=/usr/lib/postgresql/$have/bin"
            return 1
        fi
    else
        rm -rf "$PG_DATA"
        mkdir -p "$PG_DATA"
        chown "$owner:" "$PG_DATA" && chmod 700 "$PG_DATA" || return 1
        # trust on loopback: the server listens on 127.0.0.1 only and holds throw-away local data.
        if ! as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
            --no-sync >>"$log" 2>&1; then
            err "postgres: initdb into $(rel "$PG_DATA") failed (see $(rel "$log"))"
            tail -n 10 "$log" >&2
            rm -rf "$PG_DATA"
            return 1
        fi
        say "postgres: initialised $(rel "$PG_DATA") (PostgreSQL $want, owner $owner)"
    fi
    # No durability: fsync, synchronous commit and full-page writes off (ADR 0005). This is a local and test
    # database; a clean `down` still writes everything out, and only a machine crash can lose or corrupt it.
    # No Unix socket, so nothing depends on /var/run/postgresql.
    launch postgres env -u PGDATA -u PGPORT -u PGHOST \
        setpriv --reuid="$owner" --regid="$(id -gn "$owner")" --init-groups -- \
        "$bin/postgres" -D "$PG_DATA" -c listen_addresses=127.0.0.1 -c port="$POSTGRES_PORT" \
        -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=300 -c shared_buffers=128MB -c log_min_messages=warning
}

# FerretDB's pool (default 50) bounds one bulk_write: with N connections a bulk of N or more UpdateOne hangs
# the whole server (ADR 0004's hang, at 50 on PostgreSQL). 250 keeps it above SQLite's 100, within the
# server's max_connections.
FERRETDB_PG_POOL=${FERRETDB_PG_POOL:-250}
pg_url() { echo "postgres://postgres@127.0.0.1:$POSTGRES_PORT/$PG_DB?pool_max_conns=$FERRETDB_PG_POOL&sslmode=disable"; }

ensure_pg_database() {  # FerretDB keeps every MongoDB database as a schema of this one database
    local bin out
    bin=$(find_pg_bin) || return 1
    out=$("$bin/psql" -X -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" 2>&1) || {
        err "postgres: cannot query the server on 127.0.0.1:$POSTGRES_PORT: $out"
        return 1
    }
    if [[ $out != 1 ]]; then
        if ! out=$("$bin/psql" -X -q -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres \
            -c "CREATE DATABASE $PG_DB" 2>&1); then
            err "postgres: CREATE DATABASE $PG_DB failed: $out"
            return 1
        fi
        say "postgres: created database $PG_DB"
    fi
    # The GIN lookup indexes that make FerretDB's equality filters indexed (stack/postgres/*.sql, ADR 0005);
    # FERRETDB_PG_LOOKUP_INDEXES=0 leaves FerretDB's own btree indexes alone (only new collections change).
    local sql="$SRC/postgres/ferretdb-lookup-indexes.sql"
    [[ ${FERRETDB_PG_LOOKUP_INDEXES:-1} == 0 ]] && sql=<(echo 'DROP EVENT TRIGGER IF EXISTS bc_lookup_indexes;')
    if ! out=$(PGOPTIONS="-c client_min_messages=warning" "$bin/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d "$PG_DB" -f "$sql" 2>&1); then
        err "postgres: applying $(rel "$SRC/postgres/ferretdb-lookup-indexes.sql") failed: $out"
        return 1
    fi
}

probe_postgres() {  # <timeout> <pid>: exit codes as stack/lib/probe.py (0 ready, 1 not in time, 3 died)
    local t=$1 pid=$2 bin deadline
    bin=$(find_pg_bin) || return 1
    deadline=$(($(date +%s) + t))
    while :; do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -t 2 && return 0
        proc_alive "$pid" || return 3
        (($(date +%s) >= deadline)) && { echo "pg_isready: no answer on 127.0.0.1:$POSTGRES_PORT"; return 1; }
        sleep 0.2
    done
}

check_service() {  # <instance>: the Python module must exist (python -m <part>)
    local part; part=$(part_of "$1")
    need_python "$1" "urllib" || return 1
    if ! (cd "$ROOT" && "$PY" -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('$part.__main__') else 1)") 2>/dev/null; then
        err "$1: Python module '$part' has no __main__ yet ($(rel "$PY") -m $part cannot run): write services/$part/__main__.py, or leave it out, e.g. STACK_PARTS=\"kafka ferretdb gateway\""
        return 1
    fi
}

# render <template> <output> VAR...: substitutes only ${VAR} for the named variables.
render() {
    local src=$1 dst=$2 v val; shift 2
    local expr=()
    for v in "$@"; do
        val=${!v}
        val=${val//\\/\\\\}; val=${val//|/\\|}; val=${val//&/\\&}
        expr+=(-e "s|\\\${$v}|$val|g")
    done
    sed "${expr[@]}" "$src" >"$dst.tmp" || return 1
    if grep -qE '\$\{(KAFKA|FERRETDB|GATEWAY|INGEST|STATUS|STACK)_[A-Z_]*\}' "$dst.tmp"; then
        err "render: unsubstituted placeholders left in $(rel "$dst"): $(grep -oE '\$\{[A-Z_]+\}' "$dst.tmp" | sort -u | tr '\n' ' ')"
        return 1
    fi
    mv "$dst.tmp" "$dst"
}

# ------------------------------------------------------------------------------------------------
# starting one instance

java_cmd() {
    # shellcheck disable=SC2206
    local heap=($KAFKA_HEAP_OPTS)
    printf '%s\0' "$JAVA" "${heap[@]}" -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$SRC/kafka/log4j2.properties" -cp "$KAFKA_LIBS/*"
}

start_kafka() {
    local props=$RUN/kafka-server.properties dir=$DATA/kafka log=$LOGS/kafka.log
    # shellcheck disable=SC2034 # used by render via ${!name}
    local KAFKA_LOG_DIR=$dir java=() id
    mapfile -d '' java < <(java_cmd)
    render "$SRC/kafka/server.properties.template" "$props" KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_LOG_DIR || return 1
    if [[ ! -f $dir/meta.properties ]]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        if ! id=$("${java[@]}" kafka.tools.StorageTool random-uuid 2>>"$log") || [[ ${#id} -ne 22 ]]; then
            err "kafka: StorageTool random-uuid failed (see $(rel "$log"))"
            return 1
        fi
        if ! "${java[@]}" kafka.tools.StorageTool format -t "$id" -c "$props" >>"$log" 2>&1; then
            err "kafka: formatting the storage in $(rel "$dir") failed (see $(rel "$log"))"
            return 1
        fi
        echo "$id" >"$DATA/kafka-cluster-id"
        say "kafka: formatted KRaft storage in $(rel "$dir") (cluster id $id)"
    fi
    launch kafka "${java[@]}" kafka.Kafka "$props"
}

start_ferretdb() {
    echo "$FERRETDB_BACKEND" >"$RUN/ferretdb.backend"
    # Go's collector ran a quarter of FerretDB's CPU under load (a pprof profile of `make bench-pipeline`:
    # mark workers 19%, sweeping 10%): every document is converted through short-lived BSON and JSON values.
    # A collection when the heap has grown 4x instead of 2x, bounded by a soft memory limit (ADR 0058).
    local gc=(env GOGC="${FERRETDB_GOGC:-400}" GOMEMLIMIT="${FERRETDB_GOMEMLIMIT:-1GiB}")
    if [[ $FERRETDB_BACKEND == postgresql ]]; then
        launch ferretdb "${gc[@]}" "$FERRET_BIN" -port "$FERRETDB_PORT" -backend postgresql \
            -postgresql-url "$(pg_url)"
    else
        mkdir -p "$DATA/ferretdb"
        launch ferretdb "${gc[@]}" "$FERRET_BIN" -port "$FERRETDB_PORT" -backend sqlite -data-dir "$DATA/ferretdb"
    fi
}

start_gateway() {
    local nginx conf=$NGX/nginx.conf log=$LOGS/gateway.log
    nginx=$(find_nginx) || { err "gateway: nginx is missing: apt-get install nginx"; return 1; }
    mkdir -p "$NGX/tmp" "$NGX/logs"
    # shellcheck disable=SC2034 # used by render via ${!name}
    local STACK_RUN=$RUN STACK_LOGS=$LOGS STACK_NGINX=$NGX
    render "$SRC/nginx/nginx.conf.template" "$conf" \
        GATEWAY_PORT INGEST_PORT STATUS_PORT STACK_RUN STACK_LOGS STACK_NGINX || return 1
    if ! "$nginx" -t -q -p "$NGX/" -c "$conf" -e stderr >>"$log" 2>&1; then
        err "gateway: nginx rejected $(rel "$conf") (see $(rel "$log"))"
        tail -n 5 "$log" >&2
        return 1
    fi
    launch gateway "$nginx" -p "$NGX/" -c "$conf" -e stderr
}

start_service() {
    local inst=$1 part port var
    part=$(part_of "$inst")
    port=$(inst_port "$inst")
    var="${part^^}_HTTP_PORT"
    local envs=("$var=$port" "BC_TOPIC_PREFIX=$BC_TOPIC_PREFIX" "PYTHONUNBUFFERED=1")
    # Connection settings, unless the caller set them.
    [[ -n ${BC_KAFKA_BOOTSTRAP:-} ]] || envs+=("BC_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT")
    [[ -n ${BC_MONGO_URL:-} ]] || envs+=("BC_MONGO_URL=mongodb://127.0.0.1:$FERRETDB_PORT/")
    if [[ $part == dialer ]]; then
        envs+=("DIALER_INSTANCE_ID=$inst")
        # Simulated calls 20x faster than real time (a 30 s call takes 1.5 s), so e2e tests and the chaos
        # run finish quickly; and the provider's append-only record of every dial (bench/chaos.py reads it).
        envs+=("DIALER_SIM_TIME_SCALE=${DIALER_SIM_TIME_SCALE:-0.05}")
        envs+=("DIALER_SIM_DIAL_LOG=${DIALER_SIM_DIAL_LOG:-$LOGS/dials.jsonl}")
    fi
    launch "$inst" env "${envs[@]}" "$PY" -m "$part"
}

start_inst() {
    case $(part_of "$1") in
        kafka) start_kafka ;;
        postgres) start_postgres ;;
        ferretdb) start_ferretdb ;;
        gateway) start_gateway ;;
        *) start_service "$1" ;;
    esac
}

probe_inst() {  # <instance> <timeout> <pid>
    local inst=$1 t=$2 pid=$3 port
    port=$(inst_port "$inst")
    case $(part_of "$inst") in
        kafka) "$PY" "$PROBE" kafka --bootstrap "127.0.0.1:$port" --timeout "$t" --pid "$pid" ;;
        postgres) probe_postgres "$t" "$pid" ;;
        ferretdb) "$PY" "$PROBE" mongo --uri "mongodb://127.0.0.1:$port/" --timeout "$t" --pid "$pid" ;;
        gateway) "$PY" "$PROBE" http --url "http://127.0.0.1:$port/gateway/healthz" --timeout "$t" --pid "$pid" ;;
        *) "$PY" "$PROBE" http --url "http://127.0.0.1:$port/readyz" --timeout "$t" --pid "$pid" ;;
    esac
}

last_run_log() {  # the last 20 lines an instance logged since its latest start
    awk '/^===== .* stack.sh: starting /{n=0; delete a} {a[n++]=$0} END {for (i = (n > 20 ? n - 20 : 0); i < n; i++) print "    " a[i]}' "$LOGS/$1.log" 2>/dev/null
}

wait_healthy() {  # <instance> <t0_ms> <how>
    local inst=$1 t0=$2 how=$3 pid t rc out
    pid=$(pid_of "$inst") || {
        err "$inst: exited right after start; last lines of $(rel "$LOGS/$inst.log"):"
        last_run_log "$inst" >&2
        return 1
    }
    t=$(inst_timeout "$inst")
    out=$(probe_inst "$inst" "$t" "$pid" 2>&1); rc=$?
    case $rc in
        0) say "$(printf '%-11s healthy   pid %-8s port %-6s (%s, %s)' "$inst" "$pid" "$(inst_port "$inst")" "$how" "$(secs_since "$t0")")"; return 0 ;;
        3) err "$inst: process $pid exited during startup; last lines of $(rel "$LOGS/$inst.log"):"
           last_run_log "$inst" >&2 ;;
        *) err "$inst: not healthy after ${t}s (${out##*$'\n'}); see $(rel "$LOGS/$inst.log") (raise STACK_TIMEOUT_$(part_of "$inst" | tr a-z A-Z) if it is just slow)" ;;
    esac
    return 1
}

check_ports_free() {  # <instance>
    local pv name port owner
    for pv in $(inst_ports "$1"); do
        name=${pv%%=*}; port=${pv#*=}
        if port_busy "$port"; then
            owner=$(port_owner "$port")
            err "$1: port $port ($name) is already in use by another process${owner:+ $owner}: stop it, or choose another port (e.g. $name=...)"
            return 1
        fi
    done
}

# ------------------------------------------------------------------------------------------------
# topics

create_topics() {
    local spec rc out
    if ! (cd "$ROOT" && "$PY" -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('shared.topics') else 1)") 2>/dev/null; then
        say "kafka: topics: module shared.topics does not exist yet: no topics created (add it; up creates them idempotently)"
        return 0
    fi
    if ! spec=$(cd "$ROOT" && BC_TOPIC_PREFIX=$BC_TOPIC_PREFIX "$PY" -m shared.topics 2>"$LOGS/topics.log"); then
        err "kafka: topics: '$(rel "$PY") -m shared.topics' failed (see $(rel "$LOGS/topics.log")):"
        tail -n 10 "$LOGS/topics.log" | sed 's/^/    /' >&2
        return 1
    fi
    if [[ -z ${spec//[[:space:]]/} ]]; then
        say "kafka: topics: shared.topics listed no topics"
        return 0
    fi
    out=$("$PY" "$PROBE" topics --bootstrap "127.0.0.1:$KAFKA_PORT" --prefix "$BC_TOPIC_PREFIX" <<<"$spec" 2>&1); rc=$?
    if ((rc != 0)); then
        err "kafka: topics: creating topics failed: $out"
        return 1
    fi
    say "kafka: topics (prefix '$BC_TOPIC_PREFIX'):"
    printf '%s\n' "$out"
}

# ------------------------------------------------------------------------------------------------
# up

STARTED=()        # instances this `up` started (stopped again on failure)
SUP_STARTED=""

cleanup_after_failure() {
    trap - INT TERM
    local i
    if ((${#STARTED[@]} > 0)) || [[ -n $SUP_STARTED ]]; then
        err "up failed: stopping what this run started: ${STARTED[*]} ${SUP_STARTED:+supervisor}"
    fi
    [[ -n $SUP_STARTED ]] && stop_inst supervisor >/dev/null
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        stop_inst "${STARTED[i]}" >/dev/null
    done
}

fail_up() {
    cleanup_after_failure
    say "up: FAILED after $(secs_since "$UP_T0")"
    exit 1
}

# start_phase <instance...>: start every not-yet-running instance, then wait for all of them
# (the health waits run in parallel; results are printed in order).
start_phase() {
    local inst pid t0s=() hows=() waits=() i=0 rc=0 insts=("$@") tmp
    tmp=$(mktemp -d "$RUN/.wait.XXXXXX")
    for inst in "${insts[@]}"; do
        t0s[i]=$(now_ms)
        if pid=$(pid_of "$inst"); then
            hows[i]="already running"
        else
            rm -f "$RUN/$inst.stopping"
            start_inst "$inst" || { rm -rf "$tmp"; fail_up; }
            STARTED+=("$inst")
            hows[i]="started"
        fi
        i=$((i + 1))
    done
    for ((i = 0; i < ${#insts[@]}; i++)); do
        wait_healthy "${insts[i]}" "${t0s[i]}" "${hows[i]}" >"$tmp/$i.out" 2>"$tmp/$i.err" &
        waits[i]=$!
    done
    for ((i = 0; i < ${#insts[@]}; i++)); do
        wait "${waits[i]}" || rc=1
        cat "$tmp/$i.out"
        cat "$tmp/$i.err" >&2
    done
    rm -rf "$tmp"
    ((rc == 0)) || fail_up
}

cmd_up() {
    UP_T0=$(now_ms)
    trap 'err "interrupted"; fail_up' INT TERM
    mkdir -p "$CACHE" "$DATA" "$LOGS" "$RUN"

    local parts=${STACK_PARTS:-$ALL_PARTS} insts=() inst infra=() svcs=()
    resolve_instances $parts >/dev/null || exit 2
    mapfile -t insts < <(resolve_instances $parts)
    ((${#insts[@]} > 0)) || { err "STACK_PARTS selects no part"; exit 2; }
    say "up: parts: ${insts[*]}"

    # 1. prerequisites of every selected part, before anything is fetched or started
    need_python "stack" "aiokafka, pymongo" || fail_up
    for inst in "${insts[@]}"; do
        case $(part_of "$inst") in
            kafka) check_java || fail_up ;;
            ferretdb) check_go || fail_up; check_ferret_backend || fail_up ;;
            postgres) : ;;
            gateway) : ;;
            *) check_service "$inst" || fail_up ;;
        esac
        if ! pid_of "$inst" >/dev/null; then
            check_ports_free "$inst" || fail_up
        fi
        if is_service "$inst"; then svcs+=("$inst"); else infra+=("$inst"); fi
    done

    # 2. artefacts (Maven and Go in parallel; both are cached after the first run)
    local jobs=() names=() j rc=0
    for inst in "${infra[@]}"; do
        case $inst in
            kafka) ensure_kafka_libs & jobs+=($!); names+=(kafka) ;;
            ferretdb) ensure_ferret_bin & jobs+=($!); names+=(ferretdb) ;;
            postgres) ensure_postgres || fail_up ;;
            gateway) ensure_nginx || fail_up ;;
        esac
    done
    for j in "${!jobs[@]}"; do
        wait "${jobs[j]}" || rc=1
    done
    ((rc == 0)) || fail_up

    # 3. infrastructure (FerretDB after PostgreSQL and its database; the rest meanwhile), then topics, then services
    if [[ " ${infra[*]} " == *" postgres "* && " ${infra[*]} " == *" ferretdb "* ]]; then
        mapfile -t infra < <(printf '%s\n' "${infra[@]}" | grep -vx ferretdb)
        start_phase "${infra[@]}"
        ensure_pg_database || fail_up
        infra=(ferretdb)
    elif [[ " ${infra[*]} " == *" postgres "* ]]; then
        start_phase "${infra[@]}"
        ensure_pg_database || fail_up
        infra=()
    fi
    ((${#infra[@]} > 0)) && start_phase "${infra[@]}"
    if [[ " ${insts[*]} " == *" kafka "* ]]; then
        create_topics || fail_up
    fi
    ((${#svcs[@]} > 0)) && start_phase "${svcs[@]}"

    # 4. supervisor (restarts parts that die unexpectedly)
    printf '%s\n' "${insts[@]}" >"$RUN/parts"
    if [[ ${STACK_SUPERVISE:-1} != 0 ]]; then
        if pid=$(pid_of supervisor); then
            say "$(printf '%-11s running   pid %s' supervisor "$pid")"
        else
            launch supervisor "$SRC/supervise.sh" || fail_up
            SUP_STARTED=1
            say "$(printf '%-11s started   pid %s (log %s)' supervisor "$(<"$RUN/supervisor.pid")" "$(rel "$LOGS/supervisor.log")")"
        fi
    fi
    trap - INT TERM
    say "up: all ${#insts[@]} parts healthy in $(secs_since "$UP_T0")"
}

# ------------------------------------------------------------------------------------------------
# down, status, restart, logs

known_instances() {  # every instance that has a pid file, in stop order
    local order="dialer dispatcher status ingest gateway ferretdb postgres kafka" p f
    for p in $order; do
        for f in "$RUN/$p.pid" "$RUN/$p"-[0-9]*.pid; do
            [[ -f $f ]] && basename "$f" .pid
        done
    done
}

# Processes of this stack still running: matched by command line, and only those carrying our
# BC_STACK_ROOT marker (set by launch), so a service an engineer started by hand is not counted.
leftover_processes() {
    local pat="$KAFKA_LIBS|$FERRET_BIN|postgres -D $PG_DATA|$NGX/|$SELF _supervise|^$PY -m (ingest|status|dispatcher|dialer)( |$)"
    local pid rest
    while read -r pid rest; do
        [[ $pid == "$$" ]] && continue
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "BC_STACK_ROOT=$ROOT" || continue
        printf '%s %s\n' "$pid" "$rest"
    done < <(pgrep -af "$pat" 2>/dev/null)
}

cmd_down() {
    local t0 inst left
    t0=$(now_ms)
    mkdir -p "$RUN"
    # The supervisor first, so nothing gets restarted while we stop.
    if [[ -f $RUN/supervisor.pid ]]; then stop_inst supervisor; fi
    for inst in $(known_instances); do
        touch "$RUN/$inst.stopping"
        stop_inst "$inst"
        rm -f "$RUN/$inst.stopping"
    done
    rm -f "$RUN/ferretdb.backend"
    left=$(leftover_processes)
    if [[ -n $left ]]; then
        err "down: stack processes still running:"
        printf '    %s\n' "$left" >&2
        exit 1
    fi
    say "down: no stack process remains ($(secs_since "$t0"))"
}

status_instances() {
    local parts
    if [[ -n ${STACK_PARTS:-} ]]; then
        resolve_instances $STACK_PARTS
    elif [[ -s $RUN/parts ]]; then
        cat "$RUN/parts"
    else
        resolve_instances $ALL_PARTS
    fi
}

cmd_status() {
    local inst pid state bad=0 insts=()
    status_instances >/dev/null || exit 2
    mapfile -t insts < <(status_instances)
    for inst in "${insts[@]}"; do
        if pid=$(pid_of "$inst"); then
            if probe_inst "$inst" 0 "$pid" >/dev/null 2>&1; then state=healthy; else state=unhealthy; bad=1; fi
        else
            pid=-; state=down; bad=1
        fi
        printf '%-11s %-10s pid %-8s port %s\n' "$inst" "$state" "$pid" "$(inst_port "$inst")"
    done
    if pid=$(pid_of supervisor); then
        printf '%-11s %-10s pid %-8s\n' supervisor running "$pid"
    else
        printf '%-11s %-10s pid %-8s\n' supervisor down -
    fi
    return $bad
}

cmd_restart() {
    local target=${1:-} insts=() inst t0
    [[ -n $target ]] || { err "usage: stack.sh restart <part>  (parts: $ALL_PARTS)"; exit 2; }
    if [[ $target == dialer-[0-9]* ]]; then insts=("$target")
    else
        resolve_instances "$target" >/dev/null || exit 2
        # `restart ferretdb` leaves its PostgreSQL running; `restart postgres` restarts only that.
        mapfile -t insts < <(resolve_instances "$target" | { [[ $target == postgres ]] && cat || grep -vx postgres; })
        ((${#insts[@]} > 0)) || { err "restart: no '$target' part with BC_FERRETDB_BACKEND=$FERRETDB_BACKEND"; exit 2; }
    fi
    mkdir -p "$CACHE" "$DATA" "$LOGS" "$RUN"
    UP_T0=$(now_ms)
    for inst in "${insts[@]}"; do
        touch "$RUN/$inst.stopping"
        stop_inst "$inst"
    done
    case $(part_of "${insts[0]}") in
        kafka) check_java && ensure_kafka_libs || { rm -f "$RUN"/*.stopping; exit 1; } ;;
        ferretdb) check_go && ensure_ferret_bin || { rm -f "$RUN"/*.stopping; exit 1; } ;;
        postgres) ensure_postgres || { rm -f "$RUN"/*.stopping; exit 1; } ;;
        gateway) ensure_nginx || exit 1 ;;
    esac
    for inst in "${insts[@]}"; do
        rm -f "$RUN/$inst.stopping"
        is_service "$inst" && { check_service "$inst" || exit 1; }
        check_ports_free "$inst" || exit 1
    done
    # a failed restart stops what it started (the part is then down)
    start_phase "${insts[@]}"
    [[ ${insts[0]} == postgres ]] && { ensure_pg_database || exit 1; }
    say "restart: ${insts[*]} healthy in $(secs_since "$UP_T0")"
}

cmd_logs() {
    local target=${1:-} follow="" n=100 files=() inst
    [[ -n $target ]] || { err "usage: stack.sh logs <part> [-f] [-n N]"; exit 2; }
    shift
    while (($#)); do
        case $1 in
            -f|--follow) follow=1 ;;
            -n) n=$2; shift ;;
            *) err "logs: unknown option $1"; exit 2 ;;
        esac
        shift
    done
    case $target in
        supervisor|kafka-fetch|ferretdb-build|postgres-init|postgres-install|gateway-access|gateway-install|topics|dialer-[0-9]*) files=("$LOGS/$target.log") ;;
        *) is_part "$target" || { err "unknown part '$target'"; exit 2; }
           for inst in $(instances_of "$target"); do files+=("$LOGS/$inst.log"); done ;;
    esac
    if [[ -n $follow ]]; then exec tail -n "$n" -F "${files[@]}"; fi
    tail -n "$n" "${files[@]}"
}

# ------------------------------------------------------------------------------------------------
# supervisor (run by stack/supervise.sh)

cmd_supervise() {
    local interval=${STACK_SUPERVISE_INTERVAL:-2} max=${STACK_SUPERVISE_MAX_RESTARTS:-5} window=300
    local log=$LOGS/supervisor.log inst pid now
    declare -A hist=()
    slog() { printf '%s %s\n' "$(date -Is)" "$*" >>"$log"; }
    trap 'slog "supervisor stopping (pid $$)"; exit 0' TERM INT
    slog "supervisor started (pid $$), watching: $(tr '\n' ' ' <"$RUN/parts" 2>/dev/null)"
    while :; do
        for inst in $(cat "$RUN/parts" 2>/dev/null); do
            [[ -e $RUN/$inst.stopping ]] && continue
            [[ -f $RUN/$inst.pid ]] || continue      # stopped on purpose (down/restart)
            pid_of "$inst" >/dev/null && continue
            pid=$(<"$RUN/$inst.pid")
            now=$(date +%s)
            # forget restarts older than the window
            local kept="" s
            for s in ${hist[$inst]:-}; do ((now - s < window)) && kept+="$s "; done
            hist[$inst]=$kept
            if (($(wc -w <<<"$kept") >= max)); then
                slog "$inst (pid $pid) died again: $max restarts within ${window}s, giving up (see $(rel "$LOGS/$inst.log"))"
                rm -f "$RUN/$inst.pid"
                continue
            fi
            hist[$inst]+="$now "
            slog "$inst (pid $pid) died unexpectedly; restarting (see $(rel "$LOGS/$inst.log"))"
            kill -KILL -- "-$pid" 2>/dev/null   # leftovers of its process group (e.g. nginx workers)
            if (
                STARTED=()
                fail_up() { cleanup_after_failure; exit 1; }
                UP_T0=$(now_ms)
                check_ports_free "$inst" || exit 1
                start_phase "$inst"
            ) >>"$log" 2>&1; then
                slog "$inst restarted (pid $(cat "$RUN/$inst.pid" 2>/dev/null))"
            else
                slog "$inst restart FAILED (see above and $(rel "$LOGS/$inst.log"))"
            fi
        done
        sleep "$interval" &
        wait $! 2>/dev/null
    done
}

# ------------------------------------------------------------------------------------------------

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        restart) cmd_restart "$@" ;;
        logs) cmd_logs "$@" ;;
        _supervise) mkdir -p "$LOGS" "$RUN"; cmd_supervise ;;
        -h|--help|help|"") sed -n '2,30p' "$SELF" | sed 's/^# \{0,1\}//'; [[ -n $cmd ]] ;;
        *) err "unknown command '$cmd' (up, down, status, restart <part>, logs <part>)"; exit 2 ;;
    esac
}

main "$@"
