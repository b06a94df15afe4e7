# shellcheck shell=bash
# Shared settings and helpers for tests/devcloud/devcloud. Sourced, never run.
# shellcheck disable=SC2034  # the paths below are used by the sourcing scripts

DEVCLOUD_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$DEVCLOUD_HOME/../.." && pwd)
DEVCLOUD_DIR=${IMAGEGOV_DEVCLOUD_DIR:-$REPO_ROOT/.devcloud}
# A second cloud (another DEVCLOUD_DIR, other ports) may run from the first one's venv.
VENV=${DEVCLOUD_VENV:-$DEVCLOUD_DIR/venv}
STATE=$DEVCLOUD_DIR/state
ETC=$STATE/etc
RUN=$STATE/run
LOGS=$STATE/logs
DATA=$STATE/data
CLOUDS_YAML=$DEVCLOUD_DIR/clouds.yaml
CONSTRAINTS=$DEVCLOUD_HOME/constraints.txt

# Everything binds to loopback only; the address is not configurable on purpose.
HOST=127.0.0.1

# Ports a running cloud was started with are remembered in $RUN/ports.env so that
# status/stop/env keep working when the caller's environment differs.
# `load_ports fresh` (used by start) ignores them: env vars or defaults only.
load_ports() {
    unset KEYSTONE_PORT GLANCE_PORT PG_PORT PLACEMENT_PORT NOVA_PORT NEUTRON_PORT \
        RABBIT_PORT EPMD_PORT RABBIT_DIST_PORT CINDER_PORT CLOUD_PREFIX
    if [[ ${1:-} != fresh && -f $RUN/ports.env ]]; then
        # shellcheck disable=SC1091
        . "$RUN/ports.env"
    fi
    KEYSTONE_PORT=${DEVCLOUD_KEYSTONE_PORT:-${KEYSTONE_PORT:-5000}}
    GLANCE_PORT=${DEVCLOUD_GLANCE_PORT:-${GLANCE_PORT:-9292}}
    PG_PORT=${DEVCLOUD_PG_PORT:-${PG_PORT:-5433}}
    PLACEMENT_PORT=${DEVCLOUD_PLACEMENT_PORT:-${PLACEMENT_PORT:-8778}}
    NOVA_PORT=${DEVCLOUD_NOVA_PORT:-${NOVA_PORT:-8774}}
    NEUTRON_PORT=${DEVCLOUD_NEUTRON_PORT:-${NEUTRON_PORT:-9696}}
    CINDER_PORT=${DEVCLOUD_CINDER_PORT:-${CINDER_PORT:-8776}}
    RABBIT_PORT=${DEVCLOUD_RABBIT_PORT:-${RABBIT_PORT:-5673}}
    # Own epmd and distribution ports so a system RabbitMQ/Erlang cannot collide.
    EPMD_PORT=${DEVCLOUD_EPMD_PORT:-${EPMD_PORT:-4370}}
    RABBIT_DIST_PORT=${DEVCLOUD_RABBIT_DIST_PORT:-${RABBIT_DIST_PORT:-25673}}
    # clouds.yaml entries are <prefix>-admin, <prefix>-alpha...: a second cloud's differ.
    CLOUD_PREFIX=${DEVCLOUD_CLOUD_PREFIX:-${CLOUD_PREFIX:-devcloud}}
    [[ $CLOUD_PREFIX =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "DEVCLOUD_CLOUD_PREFIX: letters, digits, _ . - only"
}

save_ports() {
    mkdir -p "$RUN"
    cat >"$RUN/ports.env" <<EOF
KEYSTONE_PORT=$KEYSTONE_PORT
GLANCE_PORT=$GLANCE_PORT
PG_PORT=$PG_PORT
PLACEMENT_PORT=$PLACEMENT_PORT
NOVA_PORT=$NOVA_PORT
NEUTRON_PORT=$NEUTRON_PORT
CINDER_PORT=$CINDER_PORT
RABBIT_PORT=$RABBIT_PORT
EPMD_PORT=$EPMD_PORT
RABBIT_DIST_PORT=$RABBIT_DIST_PORT
CLOUD_PREFIX=$CLOUD_PREFIX
EOF
}

log() { printf '[devcloud %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Milliseconds since the epoch; bash's EPOCHREALTIME avoids forking date.
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# Seconds with one decimal since a now_ms timestamp.
elapsed() {
    local ms=$(($(now_ms) - $1))
    printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

is_root() { [[ $(id -u) == 0 ]]; }

pg_bindir() {
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
    [[ -n $d ]] || die "PostgreSQL server binaries not found (run: $0 install)"
    echo "$d"
}

# --- process bookkeeping -------------------------------------------------------

pidfile() { echo "$RUN/$1.pid"; }

# Kernel start time of a process (clock ticks since boot): with the PID it
# identifies the process, so a PID reused after a reboot is not taken for ours.
proc_start() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    local -a fields
    read -ra fields <<<"${stat##*) }"
    echo "${fields[19]}"
}

pid_of() {
    local f pid start
    f=$(pidfile "$1")
    [[ -s $f ]] || return 1
    read -r pid start <"$f"
    [[ -z ${start:-} || $(proc_start "$pid") == "$start" ]] || return 1
    echo "$pid"
}

# A zombie counts as gone: in containers whose init does not reap, an exited
# service can linger as one and kill -0 would still succeed.
pid_alive() {
    local stat
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

svc_alive() { pid_alive "$(pid_of "$1")"; }

record_pid() {
    mkdir -p "$RUN"
    echo "$2 $(proc_start "$2")" >"$(pidfile "$1")"
}

# Start a long-running service detached from the caller: own session (so a
# Ctrl-C or a CI step's process-group kill does not take it down half-way, and
# so stop can clean up the whole group), stdin closed and output in its log (a
# service holding the caller's stdout would keep CI pipes open forever).
# Without job control, a background job is not a group leader, so setsid
# execs in place and $! is the service's own PID.
spawn() {
    local name=$1 logfile=$2
    shift 2
    mkdir -p "$RUN" "$(dirname "$logfile")"
    # 9>&-: the service must not inherit (and so hold forever) the devcloud lock.
    setsid "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
    record_pid "$name" $!
    disown $!
}

# Stop services by their recorded PIDs, each with the signal it wants
# (args: NAME:SIGNAL ...), all at once, waiting up to TIMEOUT seconds; then
# kill whatever is left of their process groups (uwsgi workers, helpers).
# The group id is the recorded PID because spawn() used setsid.
stop_services() {
    local timeout=$1 item name sig pid i
    shift
    local -A pids=() sigs=()
    for item in "$@"; do
        name=${item%%:*} sig=${item#*:}
        pid=$(pid_of "$name") || true
        if pid_alive "$pid"; then
            kill "-$sig" "$pid" 2>/dev/null || true
            pids[$name]=$pid sigs[$name]=$sig
        else
            rm -f "$(pidfile "$name")"
        fi
    done
    for ((i = 0; i < timeout * 10; i++)); do
        for name in "${!pids[@]}"; do
            if ! pid_alive "${pids[$name]}"; then
                kill -KILL -- "-${pids[$name]}" 2>/dev/null || true
                rm -f "$(pidfile "$name")"
                log "stopped $name"
                unset "pids[$name]"
            fi
        done
        ((${#pids[@]})) || return 0
        # uwsgi loses a SIGINT that lands while it is still loading the app
        # (Python turns it into a swallowed KeyboardInterrupt): repeat it.
        if ((i % 20 == 19)); then
            for name in "${!pids[@]}"; do
                if [[ ${sigs[$name]} == INT ]]; then kill -INT "${pids[$name]}" 2>/dev/null || true; fi
            done
        fi
        sleep 0.1
    done
    for name in "${!pids[@]}"; do
        log "$name did not stop within ${timeout}s, killing it"
        kill -KILL "${pids[$name]}" 2>/dev/null || true
        kill -KILL -- "-${pids[$name]}" 2>/dev/null || true
        rm -f "$(pidfile "$name")"
    done
}

# --- readiness ----------------------------------------------------------------

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Refuse to start a service whose port something else already holds: its own
# bind would fail, and the readiness poll could be answered by the stranger.
require_free_port() {
    local name=$1 port=$2
    if tcp_open "$HOST" "$port"; then
        die "cannot start $name: $HOST:$port is already in use by another process (set DEVCLOUD_*_PORT, see README.md)"
    fi
}

# One devcloud command at a time per DEVCLOUD_DIR: engineers and CI jobs
# sharing a work tree may call start/stop concurrently.
take_lock() {
    mkdir -p "$DEVCLOUD_DIR"
    exec 9>"$DEVCLOUD_DIR/.lock"
    if ! flock -w 600 9; then
        die "another devcloud command holds $DEVCLOUD_DIR/.lock"
    fi
}

http_code() {
    curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true
}

# Wait until URL answers with a code below 500, or fail with the log's tail.
wait_http() {
    local name=$1 url=$2 logfile=$3 timeout=${4:-60} t0 code
    t0=$(now_ms)
    while :; do
        if [[ -f $(pidfile "$name") ]] && ! svc_alive "$name"; then
            fail_with_log "$name exited during start-up" "$logfile"
        fi
        code=$(http_code "$url")
        if [[ $code =~ ^[1-4][0-9][0-9]$ ]]; then
            log "$name answers at $url (HTTP $code) after $(($(now_ms) - t0))ms"
            return 0
        fi
        if (( $(now_ms) - t0 > timeout * 1000 )); then
            fail_with_log "$name did not answer at $url within ${timeout}s (last HTTP ${code:-none})" "$logfile"
        fi
        sleep 0.2
    done
}

fail_with_log() {
    local msg=$1 logfile=$2
    log "ERROR: $msg"
    if [[ -f $logfile ]]; then
        echo "----- last 40 lines of $logfile -----" >&2
        tail -n 40 "$logfile" >&2
        echo "-----" >&2
    fi
    exit 1
}
