#!/usr/bin/env bash
# bench/relay.sh — relay overhead of pgscope, measured against PostgreSQL directly and against
# pgbouncer (session mode), with pgbench and a Django page, on this machine only (127.0.0.1).
#
# It builds pgscope (release) unless PGSCOPE_BIN is set, starts a throwaway PostgreSQL 15, a
# pgbouncer and pgscope in front of it, runs the pgbench workloads below against the three
# targets interleaved (every round runs every workload on every target, in rotating order), and
# prints median TPS, the per-round ratios and the added 1-client latency. Raw numbers go to a
# CSV whose path it prints. Everything it starts is stopped on exit. See bench/README.md.
#
# Usage: bench/relay.sh [--quick] [--help]
#        bench/relay.sh --report CSV...   the table again from earlier runs' relay.csv files,
#                                         their rounds pooled (runs nothing; needs no root)
#   env ROUNDS (5)  DURATION (10 s)  SCALE (10)  PGSCOPE_BIN  PGSCOPE_ARGS  PGSCOPE_SKIP=1  OUT_DIR
#       QUIET_WAIT (30 s): before each run, wait up to this long while a compiler runs (0: never)
#       BACKENDS (fresh): every run starts on new PostgreSQL backends, for every target (pgbouncer
#                         is told to RECONNECT first); "kept" lets pgbouncer keep its warm backends
#       DJANGO (1): 0 leaves out the Django row (it needs the test virtualenv, which
#                   tests/setup.sh makes when it is missing: $PGSCOPE_TEST_PYTHON, else
#                   ${PGSCOPE_VENV:-~/.cache/pgscope/venv}/bin/python)
#   --quick                 ROUNDS=1 DURATION=3 (smoke check)
#   --dev-fake-pgscope      (development of this script only) run a SECOND pgbouncer in
#                           pgscope's column instead of pgscope; its numbers mean nothing about pgscope
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# report SCOPE_ON CSV...: the table over the rounds of one or more CSVs of this script (each
# file's rounds are kept apart, so runs can be pooled). scope_on=0: no pgscope columns.
report() {
    local scope_on=$1; shift
    awk -F, -v scope_on="$scope_on" '
function median(arr, n,    i, j, t, tmp) {
    if (n == 0) return "";
    for (i = 1; i <= n; i++) tmp[i] = arr[i];
    for (i = 2; i <= n; i++) { t = tmp[i]; for (j = i - 1; j >= 1 && tmp[j] > t; j--) tmp[j+1] = tmp[j]; tmp[j+1] = t }
    return (n % 2) ? tmp[(n+1)/2] : (tmp[n/2] + tmp[n/2+1]) / 2;
}
function med_of(w, t, field,    j, i, n, a) {   # median over rounds of field for (w,t)
    n = 0; for (j = 1; j <= nr; j++) { i = R[j]; if ((w SUBSEP t SUBSEP i) in V && V[w,t,i,field] != "") a[++n] = V[w,t,i,field] }
    return median(a, n);
}
function ratios(w, t1, t2, field, a,    j, i, n) {   # per-round t1/t2 into a; returns how many
    n = 0; for (j = 1; j <= nr; j++) { i = R[j];
        if (V[w,t1,i,field] > 0 && V[w,t2,i,field] > 0) a[++n] = V[w,t1,i,field] / V[w,t2,i,field] }
    return n;
}
function med_ratio(w, t1, t2, field,    n, a) {   # median over rounds of t1/t2
    n = ratios(w, t1, t2, field, a);
    return median(a, n);
}
# 90% percentile-bootstrap interval of the median of the per-round pgscope/pgbouncer ratios
# (2000 resamples, fixed seed so that a report is reproducible). It says how far the median
# could move with other rounds of the same noise; a row whose interval lies below 1 is slower
# than pgbouncer beyond the noise, one whose interval spans 1 is not resolved.
function boot(w,    n, a, b, k, s, m) {
    n = ratios(w, "pgscope", "pgbouncer", "tps", a);
    if (n < 3) return "-";
    srand(1);
    for (b = 1; b <= 2000; b++) { for (k = 1; k <= n; k++) s[k] = a[int(rand() * n) + 1]; m[b] = median(s, n) }
    sort_in_place(m, 2000);
    return sprintf("%.2f-%.2f", m[100], m[1900]);
}
function sort_in_place(arr, n,    gap, i, j, t) {   # shell sort
    for (gap = int(n / 2); gap > 0; gap = int(gap / 2))
        for (i = gap + 1; i <= n; i++) { t = arr[i]; for (j = i; j > gap && arr[j-gap] > t; j -= gap) arr[j] = arr[j-gap]; arr[j] = t }
}
function med_diff(w, t1, t2, field,    j, i, n, a) {
    n = 0; for (j = 1; j <= nr; j++) { i = R[j];
        if (V[w,t1,i,field] != "" && V[w,t2,i,field] != "") a[++n] = V[w,t1,i,field] - V[w,t2,i,field] }
    return median(a, n);
}
function ratio_range(w,    n, a, k, lo, hi) {   # min-max of per-round pgscope/pgbouncer
    n = ratios(w, "pgscope", "pgbouncer", "tps", a);
    for (k = 1; k <= n; k++) { if (k == 1 || a[k] < lo) lo = a[k]; if (k == 1 || a[k] > hi) hi = a[k] }
    return n ? sprintf("%.2f-%.2f", lo, hi) : "-";
}
function wins(w,    n, a, k, won) {
    n = ratios(w, "pgscope", "pgbouncer", "tps", a);
    won = 0; for (k = 1; k <= n; k++) if (a[k] > 1) won++;
    return won "/" n;
}
function cpu_us(w, t,    j, i, n, a) {   # median proxy CPU microseconds per transaction
    n = 0; for (j = 1; j <= nr; j++) { i = R[j];
        if (V[w,t,i,"cpu"] != "" && V[w,t,i,"txn"] > 0) a[++n] = V[w,t,i,"cpu"] * 1e6 / V[w,t,i,"txn"] }
    return median(a, n);
}
function fmt(x, f) { return (x == "") ? "-" : sprintf(f, x) }
FNR == 1 { file++; next }
{
    w = $2; t = $3; r = file ":" $1;
    if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
    if (!(r in rseen)) { rseen[r] = 1; R[++nr] = r }
    V[w,t,r] = 1; V[w,t,r,"tps"] = $8; V[w,t,r,"lat"] = $9; V[w,t,r,"txn"] = $10; V[w,t,r,"cpu"] = $12;
    if ($15 != 0 || $8 == "" || ($11 != "" && $11 != 0)) bad[w] = 1;
    if ($14 != 0) foreign[w] = 1;
}
END {
    if (file > 1) printf "pooled over %d CSV files, %d rounds in all\n\n", file, nr;
    cols = "%-20s %9s %9s %9s %7s %9s %9s %7s %7s %7s %5s %7s %7s %7s";   # one format for the header and the rows
    printf cols "  %s\n", "workload", "direct", "pgbouncer", "pgscope", "scp/pgb", "(90% CI)", "(range)", "scp/dir", "scp/off", "off/pgb", "wins", "cpu pgb", "cpu scp", "cpu off", "";
    printf cols "\n", "", "tps", "tps", "tps", "", "", "", "", "", "", "", "us/tx", "us/tx", "us/tx";
    for (i = 1; i <= nw; i++) {
        w = order[i];
        d = med_of(w, "direct", "tps"); b = med_of(w, "pgbouncer", "tps"); s = scope_on ? med_of(w, "pgscope", "tps") : "";
        rb = scope_on ? med_ratio(w, "pgscope", "pgbouncer", "tps") : "";
        rd = scope_on ? med_ratio(w, "pgscope", "direct", "tps") : "";
        mark = "";
        if (rb != "" && rb < 1) mark = "<< pgscope slower than pgbouncer";
        if (bad[w]) mark = mark " (errors: see CSV)";
        if (foreign[w]) mark = mark " (foreign load)";
        ro = scope_on ? med_ratio(w, "pgscope", "scope-off", "tps") : "";
        rob = scope_on ? med_ratio(w, "scope-off", "pgbouncer", "tps") : "";
        printf cols "  %s\n", w, fmt(d, "%.0f"), fmt(b, "%.0f"), fmt(s, "%.0f"),
            fmt(rb, "%.3f"), scope_on ? boot(w) : "-", scope_on ? ratio_range(w) : "-", fmt(rd, "%.3f"), fmt(ro, "%.3f"), fmt(rob, "%.3f"), scope_on ? wins(w) : "-",
            fmt(cpu_us(w, "pgbouncer"), "%.1f"), scope_on ? fmt(cpu_us(w, "pgscope"), "%.1f") : "-",
            scope_on ? fmt(cpu_us(w, "scope-off"), "%.1f") : "-", mark;
    }
    w = "latency-select-c1";
    if (w in seen) {
        ld = med_of(w, "direct", "lat") * 1000;
        printf "\n1-client -S latency (median of rounds): direct %.1f us", ld;
        printf ", pgbouncer %.1f us (%+.1f us/query)", med_of(w, "pgbouncer", "lat") * 1000, med_diff(w, "pgbouncer", "direct", "lat") * 1000;
        if (scope_on) printf ", pgscope %.1f us (%+.1f us/query)", med_of(w, "pgscope", "lat") * 1000, med_diff(w, "pgscope", "direct", "lat") * 1000;
        printf "\n";
    }
    w = "django-n1-c1";
    if (w in seen) {
        printf "Django page n1/fk/ (21 queries; median of rounds): direct %.2f ms", med_of(w, "direct", "lat");
        printf ", pgbouncer %.2f ms (%+.0f us/page)", med_of(w, "pgbouncer", "lat"), med_diff(w, "pgbouncer", "direct", "lat") * 1000;
        if (scope_on) printf ", pgscope %.2f ms (%+.0f us/page)", med_of(w, "pgscope", "lat"), med_diff(w, "pgscope", "direct", "lat") * 1000;
        printf "\n";
    }
}' "$@"
    echo
    echo "ratios: medians of per-round ratios; (90% CI) = bootstrap interval of the scp/pgb median;"
    echo "(range) = lowest-highest per-round pgscope/pgbouncer; scp/off = pgscope against the same"
    echo "build with --analysis off (scope-off column), off/pgb = that build (the relay alone) against"
    echo "pgbouncer; wins = rounds where pgscope beat pgbouncer;"
    echo "cpu = the proxy process's own CPU time per pgbench transaction (user+sys, all threads)"
}

if [[ ${1:-} == --report ]]; then
    shift
    (( $# > 0 )) || { echo "relay.sh: --report needs at least one CSV file" >&2; exit 2; }
    for csv in "$@"; do
        [[ -r $csv ]] || { echo "relay.sh: --report: cannot read '$csv'" >&2; exit 2; }
        [[ $(head -1 "$csv") == round,workload,target,* ]] || { echo "relay.sh: --report: '$csv' is not a relay.csv of this script" >&2; exit 2; }
    done
    on=0; grep -q ',pgscope,' "$@" && on=1
    report "$on" "$@"
    exit 0
fi

QUICK=0
FAKE_SCOPE=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --dev-fake-pgscope) FAKE_SCOPE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "relay.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done
if [[ $QUICK == 1 ]]; then ROUNDS=1; DURATION=3; fi
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
SCALE=${SCALE:-10}
PGSCOPE_SKIP=${PGSCOPE_SKIP:-0}
PGSCOPE_ARGS=${PGSCOPE_ARGS:-}
QUIET_WAIT=${QUIET_WAIT:-30}
BACKENDS=${BACKENDS:-fresh}
DJANGO=${DJANGO:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "relay.sh: ROUNDS must be a positive integer" >&2; exit 2; }
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "relay.sh: DURATION must be whole seconds" >&2; exit 2; }
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || { echo "relay.sh: QUIET_WAIT must be whole seconds" >&2; exit 2; }
[[ $BACKENDS == fresh || $BACKENDS == kept ]] || { echo "relay.sh: BACKENDS must be fresh or kept" >&2; exit 2; }
[[ $DJANGO == 0 || $DJANGO == 1 ]] || { echo "relay.sh: DJANGO must be 0 or 1" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
PGBENCH=$PGBIN/pgbench; [[ -x $PGBENCH ]] || PGBENCH=$(command -v pgbench)
PSQL=$PGBIN/psql; [[ -x $PSQL ]] || PSQL=$(command -v psql)
PG_USER=postgres          # OS user that runs postgres and pgbouncer (both refuse root)
DB=postgres
export PGSSLMODE=disable PGGSSENCMODE=disable PGCONNECT_TIMEOUT=10
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD 2>/dev/null || true

log() { printf '[relay.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (it starts postgres and pgbouncer as user $PG_USER)"
id "$PG_USER" >/dev/null 2>&1 || die "user $PG_USER does not exist (install postgresql-15)"
[[ -x $PGBIN/initdb && -x $PGBIN/pg_ctl ]] || die "PostgreSQL binaries not found in $PGBIN"

# ---------------------------------------------------------------- cleanup ---------------------
WORK=$(mktemp -d /tmp/pgscope-relay.XXXXXX)
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/pgscope-relay-out.XXXXXX)}
mkdir -p "$OUT_DIR/logs"
chmod 755 "$WORK"
PIDS=()               # background services we started (pgbouncer, pgscope)
PG_STARTED=0
CURRENT_BENCH=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -n $CURRENT_BENCH ]] && kill "$CURRENT_BENCH" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $PG_STARTED == 1 ]]; then
        setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups \
            "$PGBIN/pg_ctl" -D "$WORK/pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    cp "$WORK"/*.log "$OUT_DIR/logs/" 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg() { setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups "$@"; }

# ---------------------------------------------------------------- ports -----------------------
TAKEN_PORTS=" "
port_in_use() {
    ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q . && return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    return 1
}
free_port() {
    local p
    for _ in $(seq 200); do
        p=$(( 30000 + RANDOM % 30000 ))
        [[ $TAKEN_PORTS == *" $p "* ]] && continue
        port_in_use "$p" && continue
        TAKEN_PORTS+="$p "
        echo "$p"; return 0
    done
    die "no free port found in 30000-59999"
}
wait_ready() {   # name port pid: wait until a real login through 127.0.0.1:port works
    local name=$1 port=$2 pid=${3:-}
    for _ in $(seq 100); do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            die "$name exited during start-up (log: $OUT_DIR/logs/)"
        fi
        "$PSQL" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d "$DB" -XAtqc 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$name did not accept connections on 127.0.0.1:$port within 10 s"
}

# ---------------------------------------------------------------- pgscope binary --------------
SCOPE_ON=1
[[ $PGSCOPE_SKIP == 1 ]] && SCOPE_ON=0
[[ $FAKE_SCOPE == 1 ]] && SCOPE_ON=1
SCOPE_BIN=""
if [[ $SCOPE_ON == 1 && $FAKE_SCOPE == 0 ]]; then
    if [[ -n ${PGSCOPE_BIN:-} ]]; then
        SCOPE_BIN=$PGSCOPE_BIN
    else
        export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pgscope/target}
        log "building pgscope (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
        CARGO_BUILD_JOBS=2 cargo build --release --quiet --manifest-path "$REPO/Cargo.toml" \
            || die "cargo build --release failed (set PGSCOPE_BIN to bench an existing binary, or PGSCOPE_SKIP=1)"
        SCOPE_BIN=$CARGO_TARGET_DIR/release/pgscope
    fi
    [[ -x $SCOPE_BIN ]] || die "pgscope binary not found at $SCOPE_BIN"
    # bench a private copy: a rebuild during the run must not change what is measured
    cp "$SCOPE_BIN" "$WORK/pgscope"
    SCOPE_ID="$SCOPE_BIN ($(stat -c '%y' "$SCOPE_BIN" | cut -d. -f1), sha256 $(sha256sum "$SCOPE_BIN" | cut -c1-12))"
fi

# ---------------------------------------------------------------- pgbouncer -------------------
if ! command -v pgbouncer >/dev/null 2>&1; then
    log "installing Debian's pgbouncer package"
    busy_before=0; port_in_use 6432 && busy_before=1
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then       # keep the packaged service from starting
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    ( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer ) \
        >"$OUT_DIR/logs/apt.log" 2>&1 || { [[ $made_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d; die "apt-get install pgbouncer failed (see $OUT_DIR/logs/apt.log)"; }
    [[ $made_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d
    # if the packaged service came up anyway, stop and disable it (it listens on 6432)
    if [[ $busy_before == 0 ]] && port_in_use 6432; then
        log "stopping the packaged pgbouncer service on port 6432"
        if [[ $(ps -p 1 -o comm= 2>/dev/null) == systemd ]]; then
            systemctl disable --now pgbouncer >/dev/null 2>&1 || true
        else
            service pgbouncer stop >/dev/null 2>&1 || /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
        fi
    fi
    command -v pgbouncer >/dev/null 2>&1 || die "pgbouncer still not found after installing it"
fi
PGBOUNCER=$(command -v pgbouncer)

# ---------------------------------------------------------------- PostgreSQL ------------------
PG_PORT=$(free_port)
chown "$PG_USER:" "$WORK"
mkdir -p "$WORK/sock"; chown "$PG_USER:" "$WORK/sock"
log "initdb + start PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
as_pg "$PGBIN/initdb" -D "$WORK/pgdata" -U "$PG_USER" --auth=trust -E UTF8 --no-sync \
    >"$WORK/initdb.log" 2>&1 || { cp "$WORK/initdb.log" "$OUT_DIR/logs/"; die "initdb failed"; }
cat >>"$WORK/pgdata/postgresql.conf" <<EOF
# --- bench/relay.sh ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/sock'
max_connections = 200
shared_buffers = 512MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 4GB
checkpoint_timeout = 30min
autovacuum = off
log_min_messages = warning
EOF
cat >"$WORK/pgdata/pg_hba.conf" <<EOF
local all all trust
host  all all 127.0.0.1/32 trust
EOF
as_pg "$PGBIN/pg_ctl" -D "$WORK/pgdata" -l "$WORK/postgres.log" -w -t 60 start >/dev/null \
    || die "PostgreSQL did not start (log: $OUT_DIR/logs/postgres.log)"
PG_STARTED=1
wait_ready postgres "$PG_PORT"

log "pgbench -i -s $SCALE"
"$PGBENCH" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$DB" >"$WORK/pgbench-init.log" 2>&1 \
    || die "pgbench -i failed (log: $OUT_DIR/logs/pgbench-init.log)"
"$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$DB" -XAtq -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null

# ---------------------------------------------------------------- proxies ---------------------
# Each proxy runs in its own session, as PostgreSQL does (pg_ctl starts it in one), the way
# separate services run in production. With autogroup scheduling (Linux's default for
# desktop and server kernels alike: /proc/sys/kernel/sched_autogroup_enabled) a session is a
# scheduling group: a proxy started in this script's session would share pgbench's CPU share,
# and how it batches its events (and so its CPU per transaction) would depend on pgbench's
# load more than on its own work. All proxies are started the same way.
start_pgbouncer() {   # name port -> sets LAST_PID
    local name=$1 port=$2 dir=$WORK/$1
    mkdir -p "$dir"
    printf '"%s" ""\n' "$PG_USER" >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = $PG_USER
pool_mode = session
max_client_conn = 200
default_pool_size = 64
logfile =
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
EOF
    chown -R "$PG_USER:" "$dir"
    # setsid and setpriv exec, so $! is pgbouncer's own pid (a shell function would add a subshell)
    setsid setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups \
        "$PGBOUNCER" "$dir/pgbouncer.ini" </dev/null >>"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    wait_ready "$name" "$port" "$LAST_PID"
}

BOUNCER_PORT=$(free_port)
start_pgbouncer pgbouncer "$BOUNCER_PORT"
BOUNCER_PID=$LAST_PID
BOUNCER_PORTS=("$BOUNCER_PORT")
log "pgbouncer $("$PGBOUNCER" --version 2>/dev/null | head -1 | awk '{print $NF}') (session mode) on 127.0.0.1:$BOUNCER_PORT, pid $BOUNCER_PID"

TARGETS=(direct pgbouncer)
declare -A PORT_OF=([direct]=$PG_PORT [pgbouncer]=$BOUNCER_PORT)
declare -A PID_OF=([direct]="" [pgbouncer]=$BOUNCER_PID)

if [[ $SCOPE_ON == 1 ]]; then
    SCOPE_PORT=$(free_port)
    if [[ $FAKE_SCOPE == 1 ]]; then
        log "DEV MODE: a second pgbouncer stands in for pgscope — its column says nothing about pgscope"
        start_pgbouncer pgscope "$SCOPE_PORT"
        SCOPE_PID=$LAST_PID
        BOUNCER_PORTS+=("$SCOPE_PORT")
        SCOPE_ID="(dev mode: second pgbouncer, not pgscope)"
    else
        HTTP_PORT=$(free_port)
        extra=()
        if "$WORK/pgscope" --help 2>/dev/null | grep -q -- '--http-listen'; then
            extra+=(--http-listen "127.0.0.1:$HTTP_PORT")
        fi
        # shellcheck disable=SC2206  # PGSCOPE_ARGS is split on white space on purpose
        user_args=($PGSCOPE_ARGS)
        setsid env -u PGSCOPE_BIN -u PGSCOPE_ARGS -u PGSCOPE_SKIP \
            "$WORK/pgscope" --listen "127.0.0.1:$SCOPE_PORT" --upstream "127.0.0.1:$PG_PORT" \
            "${extra[@]}" "${user_args[@]}" </dev/null >"$WORK/pgscope.log" 2>&1 &
        SCOPE_PID=$!
        PIDS+=("$SCOPE_PID")
        wait_ready pgscope "$SCOPE_PORT" "$SCOPE_PID"
        # The same build with analysis off: what the statistics cost, measured in the same run.
        OFF_PORT=$(free_port)
        OFF_HTTP_PORT=$(free_port)
        off_extra=()
        [[ ${#extra[@]} -gt 0 ]] && off_extra=(--http-listen "127.0.0.1:$OFF_HTTP_PORT")
        setsid env -u PGSCOPE_BIN -u PGSCOPE_ARGS -u PGSCOPE_SKIP \
            "$WORK/pgscope" --listen "127.0.0.1:$OFF_PORT" --upstream "127.0.0.1:$PG_PORT" \
            "${off_extra[@]}" "${user_args[@]}" --analysis off </dev/null >"$WORK/pgscope-off.log" 2>&1 &
        OFF_PID=$!
        PIDS+=("$OFF_PID")
        wait_ready pgscope-off "$OFF_PORT" "$OFF_PID"
        log "pgscope --analysis off on 127.0.0.1:$OFF_PORT, pid $OFF_PID"
        TARGETS+=(scope-off)
        PORT_OF[scope-off]=$OFF_PORT
        PID_OF[scope-off]=$OFF_PID
    fi
    log "pgscope on 127.0.0.1:$SCOPE_PORT, pid $SCOPE_PID: $SCOPE_ID ${PGSCOPE_ARGS:+args: $PGSCOPE_ARGS}"
    TARGETS+=(pgscope)
    PORT_OF[pgscope]=$SCOPE_PORT
    PID_OF[pgscope]=$SCOPE_PID
fi
NT=${#TARGETS[@]}

# ---------------------------------------------------------------- workloads -------------------
# name | clients | threads | pgbench flags, or django:ROUTE for a page of the Django demo project
# (tests/django) requested by bench/django_load.py, one request after another on one persistent
# connection; a transaction is then one request. n1/fk/ is its N+1 page: 21 queries, one after
# another, so the proxy's added latency counts 21 times per page.
WORKLOADS=(
    "select-simple-c8|8|2|-S"
    "select-simple-c32|32|2|-S"
    "select-extended-c8|8|2|-S -M extended"
    "select-extended-c32|32|2|-S -M extended"
    "select-prepared-c8|8|2|-S -M prepared"
    "tpcb-c8|8|2|"
    "latency-select-c1|1|1|-S"
)
[[ $DJANGO == 1 ]] && WORKLOADS+=("django-n1-c1|1|1|django:n1/fk/")
# ONLY=name,name: run just these workloads (to look at one row with more rounds).
if [[ -n ${ONLY:-} ]]; then
    picked=()
    for wl in "${WORKLOADS[@]}"; do
        [[ ,$ONLY, == *",${wl%%|*},"* ]] && picked+=("$wl")
    done
    (( ${#picked[@]} > 0 )) || die "ONLY=$ONLY names no workload (${WORKLOADS[*]%%|*})"
    WORKLOADS=("${picked[@]}")
fi

# The Django row: the test virtualenv's Python (made by tests/setup.sh if it is missing), and the
# demo project's database, migrated and seeded directly against PostgreSQL.
django_python() {
    local py=${PGSCOPE_TEST_PYTHON:-${PGSCOPE_VENV:-$HOME/.cache/pgscope/venv}/bin/python}
    [[ -x $py ]] && "$py" -c 'import django, psycopg' 2>/dev/null && echo "$py"
}
DJANGO_DB=app
if [[ ${WORKLOADS[*]} == *django:* ]]; then
    DJANGO_PY=$(django_python || true)
    if [[ -z $DJANGO_PY ]]; then
        log "no test virtualenv with Django: running tests/setup.sh (log: $OUT_DIR/logs/setup.log)"
        bash "$REPO/tests/setup.sh" >"$OUT_DIR/logs/setup.log" 2>&1 || die "tests/setup.sh failed (see $OUT_DIR/logs/setup.log)"
        DJANGO_PY=$(django_python || true)
        [[ -n $DJANGO_PY ]] || die "still no Python with Django after tests/setup.sh (set PGSCOPE_TEST_PYTHON, or DJANGO=0)"
    fi
    log "Django demo database: migrate + seed (directly)"
    "$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$DB" -XAtq -c "CREATE DATABASE $DJANGO_DB" >/dev/null
    for cmd in migrate seed; do
        env PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER="$PG_USER" PGDATABASE="$DJANGO_DB" \
            "$DJANGO_PY" "$REPO/tests/django/manage.py" "$cmd" >>"$WORK/django-setup.log" 2>&1 \
            || die "manage.py $cmd failed (log: $OUT_DIR/logs/django-setup.log)"
    done
fi

cpu_ticks() {   # utime+stime of a process (all its threads), in clock ticks; empty if none
    [[ -n $1 && -r /proc/$1/stat ]] || { echo ""; return; }
    local s; s=$(</proc/"$1"/stat); s=${s##*) }
    # after "pid (comm) ": field 3 is state, so utime/stime (fields 14/15) are words 12/13
    awk '{print $12 + $13}' <<<"$s"
}
foreign_load() {   # compilers etc. that would distort the measurement
    ps -eo comm= 2>/dev/null | awk '$1 ~ /^(rustc|cargo|cc1|cc1plus|collect2|ld|ld\.lld|ld\.gold|mold)$/ {n++} END {print n+0}'
}
# A backend's first touch of each shared-buffer page is a page fault in that process (fork does
# not copy the page tables of shared memory): a new backend pays about one fault per page it
# reads, 100 000 faults in a 6-second run at 32 clients, about 3% of that run's CPU. Direct and
# pgscope runs always start on new backends; pgbouncer keeps its server connections from one run
# to the next, so without this its runs after the first start warm. BACKENDS=fresh (the default)
# closes them first (RECONNECT: close each server connection once released) so that every run
# of every target starts alike, and waits until no client backend is left from the previous
# run, whose exit would otherwise run into the next measurement.
fresh_backends() {
    local port waited=0 n keep
    if [[ $BACKENDS == fresh ]]; then
        for port in "${BOUNCER_PORTS[@]}"; do
            "$PSQL" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d pgbouncer -XAtq -c RECONNECT >/dev/null \
                || die "pgbouncer RECONNECT failed on port $port"
        done
    fi
    while :; do
        keep=0   # BACKENDS=kept: pgbouncer's own backends stay; wait for the others only
        if [[ $BACKENDS == kept ]]; then
            for port in "${BOUNCER_PORTS[@]}"; do
                keep=$(( keep + $("$PSQL" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d pgbouncer -XAtq \
                    -c 'SHOW SERVERS' | grep -c . || true) ))
            done
        fi
        n=$("$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$DB" -XAtq -c \
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        (( n <= keep )) && return
        (( waited < 100 )) || die "$(( n - keep )) client backend(s) still open 10 s after the previous run"
        sleep 0.1; waited=$(( waited + 1 ))
    done
}
reset_tpcb() {   # what pgbench does before a TPC-B run without -n, done outside the measurement
    "$PSQL" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$DB" -XAtq \
        -c 'VACUUM pgbench_branches' -c 'VACUUM pgbench_tellers' -c 'TRUNCATE pgbench_history' >/dev/null
}

CSV=$OUT_DIR/relay.csv
echo "round,workload,target,position,clients,threads,duration_s,tps,latency_ms,transactions,failed,proxy_cpu_s,loadavg1,foreign_procs,exit_code" >"$CSV"
CLK=$(getconf CLK_TCK)

NW=${#WORKLOADS[@]}
total_runs=$(( ROUNDS * NW * NT ))
est=$(( total_runs * (DURATION + 1) ))
log "targets: ${TARGETS[*]}; $ROUNDS rounds x $NW workloads x $NT targets x ${DURATION}s ≈ $(( est / 60 ))m$(( est % 60 ))s"
fl=$(foreign_load)
[[ $fl != 0 ]] && log "warning: $fl compiler/linker process(es) running right now — numbers will be noisy"

run=0
for (( r = 1; r <= ROUNDS; r++ )); do
    for (( w = 0; w < NW; w++ )); do
        IFS='|' read -r wname clients threads flags <<<"${WORKLOADS[$w]}"
        for (( k = 0; k < NT; k++ )); do
            t=${TARGETS[$(( (r - 1 + w + k) % NT ))]}
            run=$(( run + 1 ))
            [[ $wname == tpcb-* ]] && reset_tpcb
            fresh_backends
            waited=0
            while (( waited < QUIET_WAIT )) && [[ $(foreign_load) != 0 ]]; do sleep 1; waited=$(( waited + 1 )); done
            pid=${PID_OF[$t]}
            c0=$(cpu_ticks "$pid")
            load=$(cut -d' ' -f1 /proc/loadavg)
            fl0=$(foreign_load)
            out=$OUT_DIR/logs/r${r}-${wname}-${t}.txt
            if [[ $flags == django:* ]]; then
                env PGUSER="$PG_USER" PGDATABASE="$DJANGO_DB" "$DJANGO_PY" "$REPO/bench/django_load.py" \
                    --port "${PORT_OF[$t]}" --route "${flags#django:}" --duration "$DURATION" >"$out" 2>&1 &
            else
                # shellcheck disable=SC2086  # flags is a word list
                "$PGBENCH" -n $flags -c "$clients" -j "$threads" -T "$DURATION" \
                    -h 127.0.0.1 -p "${PORT_OF[$t]}" -U "$PG_USER" "$DB" >"$out" 2>&1 &
            fi
            CURRENT_BENCH=$!
            rc=0; wait "$CURRENT_BENCH" || rc=$?
            CURRENT_BENCH=""
            c1=$(cpu_ticks "$pid")
            fl1=$(foreign_load)
            tps=$(awk '/^tps = /{print $3; exit}' "$out")
            lat=$(awk '/^latency average = /{print $4; exit}' "$out")
            txn=$(awk -F': ' '/^number of transactions actually processed/{split($2,a,"/"); print a[1]; exit}' "$out")
            failed=$(awk -F': ' '/^number of failed transactions/{split($2,a," "); print a[1]; exit}' "$out")
            cpu=""
            [[ -n $c0 && -n $c1 ]] && cpu=$(awk -v a="$c0" -v b="$c1" -v k="$CLK" 'BEGIN{printf "%.2f", (b-a)/k}')
            fproc=$(( fl0 > fl1 ? fl0 : fl1 ))
            echo "$r,$wname,$t,$k,$clients,$threads,$DURATION,${tps:-},${lat:-},${txn:-},${failed:-},$cpu,$load,$fproc,$rc" >>"$CSV"
            note=""
            [[ $rc != 0 || -z $tps ]] && note="  FAILED (exit $rc, see $out)"
            [[ -n $failed && $failed != 0 ]] && note+="  failed transactions: $failed"
            [[ $fproc != 0 ]] && note+="  [foreign load: $fproc]"
            printf '[%3d/%d] round %d %-20s %-9s tps %8.0f  lat %7s ms%s\n' \
                "$run" "$total_runs" "$r" "$wname" "$t" "${tps:-0}" "${lat:-?}" "$note" >&2
        done
    done
done

# ---------------------------------------------------------------- report ----------------------
for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || log "warning: service pid $pid died during the run"; done

echo
echo "pgscope relay benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  pgbench -n -j 2 -T $DURATION, scale $SCALE, $ROUNDS round(s), targets interleaved in rotating order"
echo "  PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (fsync=off), pgbouncer $("$PGBOUNCER" --version 2>/dev/null | head -1 | awk '{print $NF}') session mode"
if [[ $BACKENDS == fresh ]]; then
    echo "  every run starts on new backends (pgbouncer told to RECONNECT before each run)"
else
    echo "  BACKENDS=kept: pgbouncer's runs reuse the warm backends of its earlier runs"
fi
[[ $SCOPE_ON == 1 ]] && echo "  pgscope: $SCOPE_ID${PGSCOPE_ARGS:+ args: $PGSCOPE_ARGS}"
[[ $SCOPE_ON == 0 ]] && echo "  pgscope: skipped (PGSCOPE_SKIP=1)"
echo
report "$SCOPE_ON" "$CSV"
echo "raw per-round numbers: $CSV  (pgbench output and service logs: $OUT_DIR/logs/)"
