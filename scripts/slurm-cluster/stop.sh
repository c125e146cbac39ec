#!/usr/bin/env bash
# Stop the single-node Slurm test cluster that start.sh started.
#
#   scripts/slurm-cluster/stop.sh
#
# Cancels every job, then stops only the daemons whose PIDs start.sh
# recorded in $QMIO_CLUSTER_STATE (default /var/run/qmio-slurm-cluster):
# SIGTERM, a grace period, then SIGKILL. Kills leftover slurmstepd
# processes of the stopped slurmd. Idempotent: exits 0 when nothing runs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

case "${1:-}" in
"") ;;
-h | --help)
    sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
*) die "unknown argument: $1" ;;
esac

[[ "$(id -u)" -eq 0 ]] || die "stop.sh must run as root"

if [[ ! -d "$STATE_DIR" ]]; then
    step "stop: no state dir $STATE_DIR, nothing was started: nothing to do"
    exit 0
fi
lock_state
step "stop: state dir $STATE_DIR"

active_jobs() {
    # Pending, running, suspended, completing... everything not finished.
    timeout 10 squeue -h -o '%A' 2>/dev/null
}

# Cancel every job, but only on a cluster this script started.
if recorded_pid slurmctld >/dev/null; then
    jobs_list="$(active_jobs || true)"
    if [[ -n "$jobs_list" ]]; then
        mapfile -t ids <<<"$jobs_list"
        timeout 20 scancel --full "${ids[@]}" >/dev/null 2>&1 || true
        for ((i = 0; i < 100; i++)); do
            [[ -z "$(active_jobs || true)" ]] && break
            sleep 0.1
        done
        left="$(active_jobs | wc -l || true)"
        step "jobs: cancelled ${#ids[@]} (${left:-0} still listed)"
    else
        step "jobs: none active"
    fi
fi

slurmd_stopped=0
recorded_pid slurmd >/dev/null && slurmd_stopped=1

for ((n = ${#DAEMONS[@]} - 1; n >= 0; n--)); do
    name="${DAEMONS[$n]}"
    case "$name" in
    mariadbd) grace=30 ;;
    *) grace=10 ;;
    esac
    stop_recorded "$name" "$grace"
    if [[ "$name" == slurmd ]] && ((slurmd_stopped)); then
        # Steps of jobs still running when slurmd stops survive it.
        steps=()
        for p in $(pgrep -x slurmstepd || true); do
            proc_alive "$p" slurmstepd && steps+=("$p")
        done
        if ((${#steps[@]})); then
            kill -KILL "${steps[@]}" 2>/dev/null || true
            step "slurmstepd: killed leftover pids ${steps[*]}"
        fi
    fi
done

rm -f "$STATE_DIR"/*.pid
step "cluster stopped in $(elapsed)s"
