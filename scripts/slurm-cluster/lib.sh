# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared helpers for start.sh and stop.sh (sourced, not run).

# Settings (environment).
STATE_DIR="${QMIO_CLUSTER_STATE:-/var/run/qmio-slurm-cluster}"
TIMEOUT="${QMIO_CLUSTER_TIMEOUT:-60}"
CLUSTER_NAME="qmiotest"
SLURM_ETC="/etc/slurm"
RUN_DIR="/run/slurm"
LOG_DIR="/var/log/slurm"
SPOOL_DIR="/var/lib/slurm"
MUNGE_RUN="/run/munge"
MYSQL_RUN="/run/mysqld"
MYSQL_SOCKET="$MYSQL_RUN/mysqld.sock"
MYSQL_LOG_DIR="/var/log/mysql"
MYSQL_LOG="$MYSQL_LOG_DIR/error.log"
MUNGE_LOG="/var/log/munge/munged.log"

# Daemons, in start order; stop.sh goes through them backwards.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

# Wall clock in microseconds (bash >= 5 EPOCHREALTIME; locale may use a comma).
now_us() {
    local t="${EPOCHREALTIME/[.,]/}"
    printf '%s' "$t"
}
T0="$(now_us)"

elapsed() {
    local us=$(($(now_us) - T0))
    printf '%d.%02d' $((us / 1000000)) $(((us % 1000000) / 10000))
}

step() {
    printf '[%6ss] %s\n' "$(elapsed)" "$*"
}

warn() {
    printf '[%6ss] WARNING: %s\n' "$(elapsed)" "$*" >&2
}

die() {
    printf '[%6ss] ERROR: %s\n' "$(elapsed)" "$*" >&2
    exit 1
}

# Print the last lines of each file given (that exists) to stderr.
show_tail() {
    local f
    for f in "$@"; do
        if [[ -s "$f" ]]; then
            printf -- '----- last lines of %s -----\n' "$f" >&2
            tail -n 25 "$f" >&2 || true
        fi
    done
}

# proc_alive PID NAME: PID is a live (non-zombie) process whose comm is NAME.
proc_alive() {
    local pid="$1" name="$2" comm stat st
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == "$name" ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    st="${stat##*) }"
    st="${st%% *}"
    [[ "$st" != "Z" && "$st" != "X" ]]
}

pid_file() {
    printf '%s/%s.pid' "$STATE_DIR" "$1"
}

# recorded_pid NAME: print the PID this script recorded for NAME if that
# process still runs; drop a stale record and fail otherwise.
recorded_pid() {
    local name="$1" f pid
    f="$(pid_file "$name")"
    [[ -f "$f" ]] || return 1
    pid="$(cat "$f" 2>/dev/null || true)"
    if proc_alive "$pid" "$name"; then
        printf '%s' "$pid"
        return 0
    fi
    rm -f "$f"
    return 1
}

record_pid() {
    printf '%s\n' "$2" >"$(pid_file "$1")"
}

# read_pidfile FILE: print the PID written in a daemon's own pid file.
read_pidfile() {
    local pid
    pid="$({ tr -dc '0-9' <"$1"; } 2>/dev/null || true)"
    [[ -n "$pid" ]] || return 1
    printf '%s' "$pid"
}

# stop_pid NAME PID GRACE: SIGTERM, wait up to GRACE seconds, then SIGKILL.
stop_pid() {
    local name="$1" pid="$2" grace="$3" i
    proc_alive "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        proc_alive "$pid" "$name" || return 0
        sleep 0.1
    done
    warn "$name (pid $pid) ignored SIGTERM for ${grace}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        proc_alive "$pid" "$name" || return 0
        sleep 0.1
    done
    die "$name (pid $pid) survives SIGKILL"
}

# stop_recorded NAME GRACE: stop the daemon if this script recorded it.
# Prints one line; returns 0 whether or not something was stopped.
stop_recorded() {
    local name="$1" grace="$2" pid
    if pid="$(recorded_pid "$name")"; then
        stop_pid "$name" "$pid" "$grace"
        rm -f "$(pid_file "$name")"
        step "$name: stopped (pid $pid)"
    else
        step "$name: not running from this script, nothing to stop"
    fi
}

# lock_state: one start.sh/stop.sh at a time (waits up to 120 s).
lock_state() {
    install -d -m 0755 "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    flock -w 120 9 || die "another start.sh/stop.sh holds $STATE_DIR/lock"
}
