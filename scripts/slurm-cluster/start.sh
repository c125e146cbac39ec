#!/usr/bin/env bash
# Start a single-node Slurm 22.05 test cluster from Debian packages.
#
#   scripts/slurm-cluster/start.sh [--no-accounting]
#
# Runs as root on Debian 12 without systemd or cgroups. Installs what is
# missing, writes /etc/slurm/{slurm.conf,gres.conf,slurmdbd.conf}, starts
# munged, MariaDB (127.0.0.1) and slurmdbd (unless --no-accounting),
# slurmctld and slurmd, and waits until node "localhost" is idle.
# Idempotent: what already runs is left alone. See README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

usage() {
    sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

ACCOUNTING=1
case "${QMIO_CLUSTER_ACCOUNTING:-1}" in
0 | no | false) ACCOUNTING=0 ;;
esac
for arg in "$@"; do
    case "$arg" in
    --no-accounting) ACCOUNTING=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        die "unknown argument: $arg"
        ;;
    esac
done

[[ "$(id -u)" -eq 0 ]] || die "start.sh must run as root"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "QMIO_CLUSTER_TIMEOUT must be a number of seconds"

# wait_until DESC LOGS WATCH CMD...: retry CMD every 0.1 s for up to
# $TIMEOUT s. LOGS is a space-separated list of files whose tail is shown on
# failure. WATCH is NAME:PIDFILE (or "-"): once PIDFILE names a pid that is no
# longer a live NAME process, the daemon has died and waiting stops at once.
wait_until() {
    local desc="$1" logs="$2" watch="$3" deadline pid why=""
    shift 3
    deadline=$(($(now_us) + TIMEOUT * 1000000))
    until "$@" >/dev/null 2>&1; do
        # (a daemon started through setsid still shows as "setsid" until its exec is done,
        # which takes a while when its binary is not in the page cache)
        if [[ "$watch" != "-" ]] && pid="$(read_pidfile "${watch#*:}")" &&
            ! proc_alive "$pid" "${watch%%:*}" && ! proc_alive "$pid" setsid; then
            why="${watch%%:*} (pid $pid) exited"
        elif (($(now_us) > deadline)); then
            why="not up after ${TIMEOUT}s"
        fi
        if [[ -n "$why" ]]; then
            local -a files
            read -r -a files <<<"$logs"
            show_tail "${files[@]}"
            die "$desc: $why"
        fi
        sleep 0.1
    done
}

# run_daemon NAME LOGS CMD...: run a self-daemonising command; on failure
# show its output and log.
run_daemon() {
    local name="$1" logs="$2" out
    shift 2
    out="$STATE_DIR/$name.out"
    # 9>&-: the daemon must not inherit the lock of lock_state.
    if ! "$@" </dev/null >"$out" 2>&1 9>&-; then
        local -a files
        read -r -a files <<<"$logs"
        show_tail "$out" "${files[@]}"
        die "$name: '$*' failed"
    fi
}

# ---------------------------------------------------------------- packages
install_packages() {
    local -a want=(slurmctld slurmd slurm-client munge) missing=()
    local p need_update=0 tmp_policy=0
    ((ACCOUNTING)) && want+=(slurmdbd mariadb-server)
    for p in "${want[@]}"; do
        if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]]; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        step "packages: already installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    # No package lists at all (a fresh image): update first. Stale lists are
    # caught below, when the install fails.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        need_update=1
        step "packages: apt-get update"
        apt-get update >"$STATE_DIR/apt.log" 2>&1 || {
            show_tail "$STATE_DIR/apt.log"
            die "apt-get update failed"
        }
    fi
    # Keep the packages' maintainer scripts from starting services.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        tmp_policy=1
    fi
    step "packages: installing ${missing[*]}"
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1; then
        if ((need_update == 0)); then
            step "packages: install failed, retrying after apt-get update"
            apt-get update >>"$STATE_DIR/apt.log" 2>&1 || true
            apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE_DIR/apt.log" 2>&1 || {
                ((tmp_policy)) && rm -f /usr/sbin/policy-rc.d
                show_tail "$STATE_DIR/apt.log"
                die "apt-get install failed"
            }
        else
            ((tmp_policy)) && rm -f /usr/sbin/policy-rc.d
            show_tail "$STATE_DIR/apt.log"
            die "apt-get install failed"
        fi
    fi
    ((tmp_policy)) && rm -f /usr/sbin/policy-rc.d
    step "packages: installed"
}

# ---------------------------------------------------------------- host name
fix_hosts() {
    local h
    h="$(hostname)"
    if getent hosts "$h" >/dev/null 2>&1; then
        return
    fi
    if printf '127.0.0.1\t%s\n' "$h" >>/etc/hosts 2>/dev/null; then
        step "hosts: added '$h' to /etc/hosts"
    else
        warn "host name '$h' does not resolve and /etc/hosts is not writable (slurmd will be slow)"
    fi
}

# ---------------------------------------------------------------- config
# hardware_line: "CPUs=.. Boards=.. ... RealMemory=.." from slurmd -C,
# with RealMemory lowered by 5% (at least 256 MB) so the node is never
# drained for "low RealMemory".
hardware_line() {
    local line mem safe
    line="$(slurmd -C 2>/dev/null | head -n 1)"
    [[ "$line" == NodeName=* ]] || die "slurmd -C gave no hardware line: '$line'"
    line="${line#NodeName=* }"
    if [[ "$line" =~ RealMemory=([0-9]+) ]]; then
        mem="${BASH_REMATCH[1]}"
        safe=$((mem / 20))
        ((safe < 256)) && safe=256
        ((mem - safe > 0)) && mem=$((mem - safe))
        line="${line/RealMemory=${BASH_REMATCH[1]}/RealMemory=$mem}"
    fi
    printf '%s' "$line"
}

render() {
    local t
    t="$(cat "$1")"
    t="${t//@SPOOL_DIR@/$SPOOL_DIR}"
    t="${t//@RUN_DIR@/$RUN_DIR}"
    t="${t//@LOG_DIR@/$LOG_DIR}"
    t="${t//@HARDWARE@/${HARDWARE:-}}"
    t="${t//@ACCOUNTING@/${ACCOUNTING_BLOCK:-}}"
    printf '%s\n' "$t"
}

# install_conf DEST MODE CONTENT: write DEST if its content differs.
# Returns 0 when it wrote, 1 when DEST was already up to date.
install_conf() {
    local dest="$1" mode="$2" content="$3" tmp
    if [[ -f "$dest" ]] && [[ "$(cat "$dest")" == "${content%$'\n'}" ]]; then
        chmod "$mode" "$dest"
        return 1
    fi
    if [[ -f "$dest" ]] && ! grep -q 'Generated by qmio-hpc' "$dest" && [[ ! -e "$dest.qmio-orig" ]]; then
        cp -p "$dest" "$dest.qmio-orig"
        warn "kept the previous $dest as $dest.qmio-orig"
    fi
    tmp="$(mktemp "$dest.XXXXXX")"
    printf '%s' "$content" >"$tmp"
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
    return 0
}

SLURM_CHANGED=0
DBD_CHANGED=0
write_config() {
    HARDWARE="$(hardware_line)"
    if ((ACCOUNTING)); then
        ACCOUNTING_BLOCK="$(cat "$HERE/accounting.conf.in")"
    else
        ACCOUNTING_BLOCK="$(cat "$HERE/no-accounting.conf.in")"
    fi
    install -d -m 0755 "$SLURM_ETC"
    install_conf "$SLURM_ETC/slurm.conf" 0644 "$(render "$HERE/slurm.conf.in")" && SLURM_CHANGED=1
    install_conf "$SLURM_ETC/gres.conf" 0644 "$(cat "$HERE/gres.conf")" && SLURM_CHANGED=1
    if ((ACCOUNTING)); then
        # slurmdbd refuses a slurmdbd.conf readable by others.
        install_conf "$SLURM_ETC/slurmdbd.conf" 0600 "$(render "$HERE/slurmdbd.conf.in")" && DBD_CHANGED=1
    fi
    local what="unchanged"
    ((SLURM_CHANGED || DBD_CHANGED)) && what="written"
    step "config: $SLURM_ETC/slurm.conf $what (NodeName=localhost $HARDWARE, accounting=$([[ $ACCOUNTING == 1 ]] && echo on || echo off))"
}

make_dirs() {
    install -d -m 0755 "$STATE_DIR" "$RUN_DIR" "$LOG_DIR" "$SPOOL_DIR"
    install -d -m 0755 "$SPOOL_DIR/slurmctld" "$SPOOL_DIR/slurmd"
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    [[ -d /var/log/munge ]] || install -d -o munge -g munge -m 0700 /var/log/munge
    [[ -d /var/lib/munge ]] || install -d -o munge -g munge -m 0711 /var/lib/munge
    if ((ACCOUNTING)); then
        install -d -o mysql -g mysql -m 0755 "$MYSQL_RUN"
        [[ -d "$MYSQL_LOG_DIR" ]] || install -d -o mysql -g mysql -m 0750 "$MYSQL_LOG_DIR"
    fi
}

# ---------------------------------------------------------------- daemons
munge_ok() {
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1
}

start_munged() {
    local pid
    if pid="$(recorded_pid munged)"; then
        step "munged: already running (pid $pid)"
        return
    fi
    if munge_ok; then
        step "munged: already running, not started by this script (stop.sh leaves it alone)"
        return
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key >/dev/null
        step "munged: created /etc/munge/munge.key"
    fi
    rm -f "$MUNGE_RUN/munged.pid"
    run_daemon munged "$MUNGE_LOG" runuser -u munge -- /usr/sbin/munged
    wait_until "munged" "$MUNGE_LOG" "munged:$MUNGE_RUN/munged.pid" munge_ok
    pid="$(read_pidfile "$MUNGE_RUN/munged.pid")" || die "munged: no pid file $MUNGE_RUN/munged.pid"
    record_pid munged "$pid"
    step "munged: started as user munge (pid $pid)"
}

mariadb_ok() {
    mariadb-admin --socket="$MYSQL_SOCKET" --connect-timeout=2 ping >/dev/null 2>&1
}

start_mariadb() {
    local pid
    if pid="$(recorded_pid mariadbd)"; then
        step "mariadb: already running (pid $pid)"
        return
    fi
    if mariadb_ok; then
        step "mariadb: already running, not started by this script (stop.sh leaves it alone)"
        return
    fi
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE_DIR/mariadb-install-db.out" 2>&1 || {
            show_tail "$STATE_DIR/mariadb-install-db.out"
            die "mariadb-install-db failed"
        }
        step "mariadb: initialised /var/lib/mysql"
    fi
    # mariadbd does not daemonise: run it in its own session, detached.
    setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 \
        --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_RUN/mysqld.pid" \
        --log-error="$MYSQL_LOG" --innodb-buffer-pool-size=512M \
        --innodb-lock-wait-timeout=900 \
        </dev/null >"$STATE_DIR/mariadbd.out" 2>&1 9>&- &
    pid=$!
    record_pid mariadbd "$pid"
    wait_until "mariadb" "$STATE_DIR/mariadbd.out $MYSQL_LOG" "mariadbd:$(pid_file mariadbd)" mariadb_ok
    pid="$(read_pidfile "$MYSQL_RUN/mysqld.pid")" || true
    proc_alive "$pid" mariadbd && record_pid mariadbd "$pid"
    pid="$(recorded_pid mariadbd)" || die "mariadb: answers but pid unknown"
    step "mariadb: started on 127.0.0.1:3306 (pid $pid)"
}

dbd_ok() {
    timeout 10 sacctmgr -n -P show cluster format=Cluster >/dev/null 2>&1
}

start_slurmdbd() {
    local pid
    if pid="$(recorded_pid slurmdbd)"; then
        if ((DBD_CHANGED)); then
            stop_pid slurmdbd "$pid" 15
            rm -f "$(pid_file slurmdbd)"
            step "slurmdbd: stopped for the new slurmdbd.conf (pid $pid)"
        else
            step "slurmdbd: already running (pid $pid)"
        fi
    fi
    if ! recorded_pid slurmdbd >/dev/null; then
        if dbd_ok; then
            step "slurmdbd: already running, not started by this script (stop.sh leaves it alone)"
        else
            rm -f "$RUN_DIR/slurmdbd.pid"
            run_daemon slurmdbd "$LOG_DIR/slurmdbd.log" slurmdbd
            wait_until "slurmdbd" "$LOG_DIR/slurmdbd.log" "slurmdbd:$RUN_DIR/slurmdbd.pid" dbd_ok
            pid="$(read_pidfile "$RUN_DIR/slurmdbd.pid")" || die "slurmdbd: no pid file $RUN_DIR/slurmdbd.pid"
            record_pid slurmdbd "$pid"
            step "slurmdbd: started (pid $pid)"
        fi
    fi
    if ! sacctmgr -n -P show cluster format=Cluster 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
        sacctmgr -i add cluster "$CLUSTER_NAME" >"$STATE_DIR/sacctmgr.out" 2>&1 || {
            show_tail "$STATE_DIR/sacctmgr.out"
            die "sacctmgr add cluster $CLUSTER_NAME failed"
        }
        step "slurmdbd: added cluster $CLUSTER_NAME"
    fi
}

ctld_ok() {
    timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP'
}

start_slurmctld() {
    local pid pid2
    if pid="$(recorded_pid slurmctld)"; then
        if ((SLURM_CHANGED)); then
            # slurmd goes first, it is restarted right after.
            if pid2="$(recorded_pid slurmd)"; then
                stop_pid slurmd "$pid2" 10
                rm -f "$(pid_file slurmd)"
                step "slurmd: stopped for the new slurm.conf (pid $pid2)"
            fi
            stop_pid slurmctld "$pid" 15
            rm -f "$(pid_file slurmctld)"
            step "slurmctld: stopped for the new slurm.conf (pid $pid)"
        else
            step "slurmctld: already running (pid $pid)"
            return
        fi
    elif ctld_ok; then
        ((SLURM_CHANGED)) && warn "slurm.conf changed but slurmctld was not started by this script: not restarted"
        step "slurmctld: already running, not started by this script (stop.sh leaves it alone)"
        return
    fi
    rm -f "$RUN_DIR/slurmctld.pid"
    run_daemon slurmctld "$LOG_DIR/slurmctld.log" slurmctld
    wait_until "slurmctld" "$LOG_DIR/slurmctld.log" "slurmctld:$RUN_DIR/slurmctld.pid" ctld_ok
    pid="$(read_pidfile "$RUN_DIR/slurmctld.pid")" || die "slurmctld: no pid file $RUN_DIR/slurmctld.pid"
    record_pid slurmctld "$pid"
    step "slurmctld: started (pid $pid)"
}

node_state() {
    timeout 10 sinfo -h -N -n localhost -o '%T' 2>/dev/null | head -n 1
}

node_ready() {
    case "$(node_state)" in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
    esac
}

# A live slurmd this script did not start (zombies waiting to be reaped do
# not count: pgrep lists them too).
foreign_slurmd() {
    local p
    for p in $(pgrep -x slurmd || true); do
        proc_alive "$p" slurmd && return 0
    done
    return 1
}

start_slurmd() {
    local pid state
    if pid="$(recorded_pid slurmd)"; then
        if ((SLURM_CHANGED)); then
            stop_pid slurmd "$pid" 10
            rm -f "$(pid_file slurmd)"
            step "slurmd: stopped for the new slurm.conf (pid $pid)"
        else
            step "slurmd: already running (pid $pid)"
        fi
    fi
    if ! recorded_pid slurmd >/dev/null; then
        if foreign_slurmd; then
            step "slurmd: already running, not started by this script (stop.sh leaves it alone)"
        else
            rm -f "$RUN_DIR/slurmd.pid"
            run_daemon slurmd "$LOG_DIR/slurmd.log" slurmd -N localhost
            local i
            for ((i = 0; i < 50; i++)); do
                pid="$(read_pidfile "$RUN_DIR/slurmd.pid")" && proc_alive "$pid" slurmd && break
                pid=""
                sleep 0.1
            done
            [[ -n "$pid" ]] || {
                show_tail "$STATE_DIR/slurmd.out" "$LOG_DIR/slurmd.log"
                die "slurmd: did not start"
            }
            record_pid slurmd "$pid"
            step "slurmd: started (pid $pid)"
        fi
    fi
    # A node left DOWN/DRAINED by an earlier run is put back to service.
    state="$(node_state)"
    case "$state" in
    down* | drain* | fail*)
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        step "node: was $state, resumed"
        ;;
    esac
    wait_until "node localhost ($(node_state || true))" "$LOG_DIR/slurmd.log $LOG_DIR/slurmctld.log" "slurmd:$RUN_DIR/slurmd.pid" node_ready
    step "node: localhost is $(node_state)"
}

cluster_registered() {
    [[ -n "$(timeout 10 sacctmgr -n -P show cluster "$CLUSTER_NAME" format=ControlHost 2>/dev/null)" ]] &&
        timeout 10 sacct -n -X -S now >/dev/null 2>&1
}

check_accounting() {
    wait_until "accounting (slurmctld registered with slurmdbd, sacct answers)" \
        "$LOG_DIR/slurmctld.log $LOG_DIR/slurmdbd.log" - cluster_registered
    step "accounting: sacct answers, cluster $CLUSTER_NAME registered"
}

# ---------------------------------------------------------------- main
lock_state
step "start: state dir $STATE_DIR, accounting=$([[ $ACCOUNTING == 1 ]] && echo on || echo off)"
install_packages
fix_hosts
make_dirs
write_config
start_munged
if ((ACCOUNTING)); then
    start_mariadb
    start_slurmdbd
fi
start_slurmctld
start_slurmd
((ACCOUNTING)) && check_accounting
step "cluster up in $(elapsed)s (partitions: compute (default), qpu; gres qpu:1)"
