#!/usr/bin/env bash
# slurm-local.sh — a real single-node Slurm cluster (with accounting) on this
# machine, for cfgen's integration tests.
#
# Usage (as root):
#   scripts/slurm-local.sh install   # apt-get the packages (idempotent)
#   scripts/slurm-local.sh up        # write confs, start all daemons, wait until ready
#   scripts/slurm-local.sh status    # show which daemons run, and sinfo
#   scripts/slurm-local.sh down      # stop every daemon we started (by recorded pid)
#   scripts/slurm-local.sh purge     # down, then delete the state folder
#   scripts/slurm-local.sh env       # print the `export ...` lines clients need
#
# Everything lives under one state folder ($CFGEN_SLURM_DIR, default
# /tmp/cfgen-slurm): confs, munge key, MariaDB data dir, Slurm state, logs, pids.
# There is no systemd: every daemon is started in the foreground mode of its own
# program, in the background of this script (under setsid, so it outlives the
# caller), and its pid is recorded in $STATE/pids/<name>.pid.
#
# Daemons (start order): munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd.
#
# Clients: `export SLURM_CONF=$STATE/etc/slurm.conf` always works. In addition,
# `up` makes /etc/slurm/slurm.conf a symlink to that file (unless a real,
# foreign slurm.conf is already there), so sbatch/sacct/squeue called without
# extra env (e.g. by submitit from Python) find the cluster too. `down` removes
# that symlink again if it still points at our conf.
#
# Tunables (environment):
#   CFGEN_SLURM_DIR       state folder                      (/tmp/cfgen-slurm)
#   CFGEN_SLURM_TIMEOUT   seconds to wait for readiness     (60)
#   CFGEN_SLURM_DB_PORT   MariaDB TCP port on 127.0.0.1     (3316; not 3306, so
#                         a system MariaDB can coexist)
#   CFGEN_SLURM_CPUS      CPUs of the node                  (nproc)
#   CFGEN_SLURM_MEM_MB    RealMemory of the node, in MB     (4096: two array tasks at the default mem_gb=2)
#   CFGEN_SLURM_CLUSTER   ClusterName                       (cfgen)
#   CFGEN_SLURM_ACCOUNT   account registered for root       (cfgen)

set -euo pipefail

STATE="${CFGEN_SLURM_DIR:-/tmp/cfgen-slurm}"
TIMEOUT="${CFGEN_SLURM_TIMEOUT:-60}"
DB_PORT="${CFGEN_SLURM_DB_PORT:-3316}"
CPUS="${CFGEN_SLURM_CPUS:-$(nproc)}"
MEM_MB="${CFGEN_SLURM_MEM_MB:-4096}"
CLUSTER="${CFGEN_SLURM_CLUSTER:-cfgen}"
ACCOUNT="${CFGEN_SLURM_ACCOUNT:-cfgen}"

ETC="$STATE/etc"
LOG="$STATE/log"
PIDS="$STATE/pids"
MUNGE_DIR="$STATE/munge"
MUNGE_SOCKET_DIR=/run/munge           # libmunge's compiled-in default socket dir
DB_DIR="$STATE/mysql"                 # MariaDB data dir
DB_RUN="$STATE/mysql-run"             # MariaDB socket + pid file
DB_SOCKET="$DB_RUN/mysqld.sock"
SLURM_CONF_FILE="$ETC/slurm.conf"
SLURMDBD_CONF_FILE="$ETC/slurmdbd.conf"
SYSTEM_SLURM_CONF=/etc/slurm/slurm.conf
NODE=localhost                        # NodeName; the real host name is NOT used

# Every daemon we manage, in start order, and the process name (comm) that a
# recorded pid must still have for us to consider it ours.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

PACKAGES=(munge mariadb-server slurmdbd slurmctld slurmd slurm-client)

# Slurm daemons find slurmdbd.conf next to $SLURM_CONF; clients use it too.
export SLURM_CONF="$SLURM_CONF_FILE"

log() { printf 'slurm-local: %s\n' "$*" >&2; }

die() {
    log "ERROR: $*"
    exit 1
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it starts munged/mariadbd/slurm daemons)"
}

# ---------------------------------------------------------------- install ----

cmd_install() {
    need_root
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "all packages already installed: ${PACKAGES[*]}"
        return 0
    fi
    log "installing: ${missing[*]}"

    # Keep package postinst scripts from starting munge/mariadb/slurm services:
    # invoke-rc.d consults /usr/sbin/policy-rc.d, and exit code 101 = "denied".
    # Any existing policy-rc.d is put back afterwards.
    local policy=/usr/sbin/policy-rc.d backup=""
    if [[ -e $policy ]]; then
        backup="$(mktemp /usr/sbin/policy-rc.d.cfgen-bak.XXXXXX)"
        cp -p "$policy" "$backup"
    fi
    # shellcheck disable=SC2064  # expand $policy/$backup now, on purpose
    trap "if [[ -n '$backup' ]]; then mv -f '$backup' '$policy'; else rm -f '$policy'; fi" EXIT
    printf '#!/bin/sh\n# written by cfgen scripts/slurm-local.sh during install\nexit 101\n' >"$policy"
    chmod 755 "$policy"

    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"
    log "install done"
}

# ---------------------------------------------------------- pid handling ----

pidfile() { printf '%s/%s.pid' "$PIDS" "$1"; }

# Prints the recorded pid of daemon $1 if that process is alive (not a zombie)
# and still is that daemon (guards against pid reuse); returns 1 otherwise.
daemon_pid() {
    local name="$1" f pid comm
    f="$(pidfile "$name")"
    [[ -s $f ]] || return 1
    pid="$(<"$f")"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ $comm == "$name" ]] || return 1
    # a killed daemon stays a zombie until init reaps it (slowly on some machines): not running
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    printf '%s\n' "$pid"
}

is_running() { daemon_pid "$1" >/dev/null; }

# started_alive NAME: the process we just started for daemon NAME still exists (and is no
# zombie), whatever its name: right after start_daemon it may still be setsid or setpriv on
# its way to exec'ing the daemon, which is_running would wrongly call dead.
started_alive() {
    local f pid state
    f="$(pidfile "$1")"
    [[ -s $f ]] || return 1
    pid="$(<"$f")"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n $state && $state != Z ]]
}

# start_daemon NAME CMD...: run CMD (which must stay in the foreground and exec
# into the daemon NAME) in the background, detached from our session, with
# stdout/stderr appended to $LOG/NAME.out, and record its pid.
start_daemon() {
    local name="$1"
    shift
    if is_running "$name"; then
        log "$name already running (pid $(daemon_pid "$name"))"
        return 0
    fi
    # setsid execs (does not fork) because a background child of a
    # non-interactive shell is not a process-group leader, so $! is the daemon.
    setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
    echo "$!" >"$(pidfile "$name")"
    log "started $name (pid $!)"
}

# fail_with_log NAME MSG LOGFILE...: report, show the tails of the logs, exit 1.
fail_with_log() {
    local name="$1" msg="$2" f
    shift 2
    log "ERROR: $name: $msg"
    for f in "$@" "$LOG/$name.out"; do
        if [[ -s $f ]]; then
            printf '\n----- tail of %s -----\n' "$f" >&2
            tail -n 30 "$f" >&2
        fi
    done
    printf '\nslurm-local: state is in %s; run "%s down" to stop what did start.\n' "$STATE" "$0" >&2
    exit 1
}

# wait_for NAME LOGFILE DESCRIPTION CHECK...: poll CHECK until it succeeds,
# failing early if daemon NAME died, and after $TIMEOUT seconds.
wait_for() {
    local name="$1" logfile="$2" what="$3"
    shift 3
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if [[ -n $name ]] && ! started_alive "$name"; then
            fail_with_log "$name" "died while waiting for: $what" "$logfile"
        fi
        if ((SECONDS >= deadline)); then
            fail_with_log "${name:-cluster}" "timed out after ${TIMEOUT}s waiting for: $what" "$logfile"
        fi
        sleep 0.5
    done
}

# stop_daemon NAME: SIGTERM the recorded pid, wait (bounded) for it to exit,
# SIGKILL as a last resort. Idempotent.
stop_daemon() {
    local name="$1" pid i
    if ! pid="$(daemon_pid "$name")"; then
        rm -f "$(pidfile "$name")"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do # up to 30 s (MariaDB flushes on shutdown)
        is_running "$name" || break
        sleep 0.5
    done
    if is_running "$name"; then
        log "$name did not exit after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            is_running "$name" || break
            sleep 0.5
        done
    fi
    is_running "$name" && die "could not stop $name (pid $pid)"
    rm -f "$(pidfile "$name")"
}

# ------------------------------------------------------------------ confs ----

write_confs() {
    install -d -m 755 "$STATE" "$ETC" "$LOG" "$PIDS" "$STATE/slurmctld" "$STATE/slurmd"

    # Password of the MariaDB user slurmdbd logs in as; made once, then kept.
    if [[ ! -s $ETC/dbpass ]]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$ETC/dbpass")
    fi
    local dbpass
    dbpass="$(<"$ETC/dbpass")"

    cat >"$SLURM_CONF_FILE.tmp" <<EOF
# Written by cfgen scripts/slurm-local.sh — regenerated on every 'up'.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld/slurmctld.pid
SlurmdPidFile=$STATE/slurmd/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Timers: short, so that cancelled/ended jobs leave the node quickly in tests.
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
# Scheduling: several small jobs may share the node, by CPU.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Accounting: needed so that sacct reports final states (submitit relies on it;
# without it, it waits forever on a cancelled job).
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStoragePort=6819
JobCompType=jobcomp/none
NodeName=$NODE CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    mv -f "$SLURM_CONF_FILE.tmp" "$SLURM_CONF_FILE"
    chmod 644 "$SLURM_CONF_FILE"

    # slurmdbd.conf holds the DB password: mode 600, owned by SlurmUser (root).
    (
        umask 077
        cat >"$SLURMDBD_CONF_FILE.tmp" <<EOF
# Written by cfgen scripts/slurm-local.sh — regenerated on every 'up'.
AuthType=auth/munge
DbdHost=$NODE
DbdPort=6819
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$dbpass
StorageLoc=slurm_acct_db
EOF
    )
    mv -f "$SLURMDBD_CONF_FILE.tmp" "$SLURMDBD_CONF_FILE"
    chmod 600 "$SLURMDBD_CONF_FILE"

    # Default client conf location -> ours (only if free or already a symlink).
    install -d -m 755 "$(dirname "$SYSTEM_SLURM_CONF")"
    if [[ -L $SYSTEM_SLURM_CONF || ! -e $SYSTEM_SLURM_CONF ]]; then
        ln -sfn "$SLURM_CONF_FILE" "$SYSTEM_SLURM_CONF"
    else
        log "WARNING: $SYSTEM_SLURM_CONF is a real file, left alone: clients must export SLURM_CONF"
    fi
}

# ------------------------------------------------------------------ munge ----

munge_ok() { munge -n -s 0 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    id munge >/dev/null 2>&1 || die "user 'munge' missing — run '$0 install' first"
    install -d -o munge -g munge -m 700 "$MUNGE_DIR"
    # /run/munge is where clients (libmunge, Slurm's auth/munge) look for the
    # socket; munged wants it owned by munge and not world-writable.
    install -d -o munge -g munge -m 755 "$MUNGE_SOCKET_DIR"
    if [[ ! -s $MUNGE_DIR/munge.key ]]; then
        # 1 KiB random key; munged insists on owner munge and mode 0400/0600.
        (umask 077 && head -c 1024 /dev/urandom >"$MUNGE_DIR/munge.key")
    fi
    chown munge:munge "$MUNGE_DIR/munge.key"
    chmod 400 "$MUNGE_DIR/munge.key"

    if ! is_running munged && munge_ok; then
        # Some other munged (e.g. the system's) already serves /run/munge. All
        # our daemons and clients would use it, which works; keep it.
        log "a munged not started by us already answers on $MUNGE_SOCKET_DIR; using it"
        return 0
    fi
    # A stale socket/lock from a killed munged blocks a new one.
    if ! is_running munged; then
        rm -f "$MUNGE_SOCKET_DIR/munge.socket.2" "$MUNGE_SOCKET_DIR/munge.socket.2.lock"
    fi
    # setpriv execs munged as the munge user directly (no forking wrapper), so
    # the recorded pid is munged's own.
    start_daemon munged setpriv --reuid=munge --regid=munge --init-groups \
        /usr/sbin/munged --foreground \
        --key-file="$MUNGE_DIR/munge.key" \
        --log-file="$MUNGE_DIR/munged.log" \
        --pid-file="$MUNGE_DIR/munged.pid" \
        --seed-file="$MUNGE_DIR/munged.seed" \
        --socket="$MUNGE_SOCKET_DIR/munge.socket.2"
    wait_for munged "$MUNGE_DIR/munged.log" "munge credential round-trip" munge_ok
}

# ---------------------------------------------------------------- mariadb ----

# Run SQL from stdin as MariaDB root (unix_socket auth, via our socket).
db_sql() { mariadb --no-defaults --protocol=socket -S "$DB_SOCKET" -u root -N -B; }

start_mariadb() {
    id mysql >/dev/null 2>&1 || die "user 'mysql' missing — run '$0 install' first"
    install -d -o mysql -g mysql -m 750 "$DB_RUN"
    if [[ ! -d $DB_DIR/mysql ]]; then
        log "initialising MariaDB data dir $DB_DIR"
        install -d -o mysql -g mysql -m 750 "$DB_DIR"
        # root@localhost authenticates by unix_socket (we are root): no password.
        if ! mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$LOG/mariadb-install-db.log" 2>&1; then
            rm -rf "$DB_DIR"
            fail_with_log mariadbd "mariadb-install-db failed" "$LOG/mariadb-install-db.log"
        fi
    fi
    # --no-defaults: ignore /etc/mysql/*.cnf so nothing clashes with a system
    # MariaDB (its datadir/socket/port). mariadbd starts as root and switches
    # to the mysql user itself, keeping its pid.
    start_daemon mariadbd /usr/sbin/mariadbd --no-defaults \
        --user=mysql \
        --datadir="$DB_DIR" \
        --socket="$DB_SOCKET" \
        --pid-file="$DB_RUN/mariadbd.pid" \
        --port="$DB_PORT" \
        --bind-address=127.0.0.1 \
        --skip-name-resolve \
        --log-error="$DB_DIR/mariadbd.err" \
        --innodb-buffer-pool-size=64M \
        --innodb-lock-wait-timeout=900
    wait_for mariadbd "$DB_DIR/mariadbd.err" "MariaDB to answer on $DB_SOCKET" \
        mariadb-admin --no-defaults -S "$DB_SOCKET" -u root ping

    # The DB user slurmdbd uses (TCP from 127.0.0.1). Idempotent; the password
    # is re-set so it always matches $ETC/dbpass.
    local dbpass
    dbpass="$(<"$ETC/dbpass")"
    db_sql <<EOF || fail_with_log mariadbd "could not create the slurm DB user" "$DB_DIR/mariadbd.err"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$dbpass';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$dbpass';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$dbpass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$dbpass';
GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

# ------------------------------------------------------------------ slurm ----

sacctmgr_ok() { sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1; }

register_accounting() {
    if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
        log "registering cluster '$CLUSTER' in slurmdbd"
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    if ! sacctmgr -n -P show account format=account | grep -qx "$ACCOUNT"; then
        log "adding account '$ACCOUNT'"
        sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="cfgen tests" Organization=cfgen >/dev/null
    fi
    if ! sacctmgr -n -P show assoc where user=root account="$ACCOUNT" cluster="$CLUSTER" format=user | grep -qx root; then
        sacctmgr -i add user root Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
    fi
}

node_idle() {
    local st
    st="$(sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null)" || return 1
    # idle, or mix/alloc if jobs (e.g. from a previous up) are still running.
    [[ $st == idle || $st == mix || $st == alloc ]]
}

sacct_ok() { sacct -a -n -X -S now-1hours >/dev/null 2>&1; }

start_slurm() {
    start_daemon slurmdbd /usr/sbin/slurmdbd -D
    wait_for slurmdbd "$LOG/slurmdbd.log" "slurmdbd to answer sacctmgr" sacctmgr_ok
    register_accounting || fail_with_log slurmdbd "sacctmgr registration failed" "$LOG/slurmdbd.log"

    start_daemon slurmctld /usr/sbin/slurmctld -D -f "$SLURM_CONF_FILE"
    wait_for slurmctld "$LOG/slurmctld.log" "slurmctld to answer (scontrol ping)" \
        bash -c 'scontrol ping | grep -q UP'

    # The node is called "localhost", not by this machine's host name, so
    # slurmd must be told which NodeName it is.
    start_daemon slurmd /usr/sbin/slurmd -D -N "$NODE" -f "$SLURM_CONF_FILE"
    wait_for slurmd "$LOG/slurmd.log" "node $NODE to be idle in sinfo" node_idle
    wait_for "" "$LOG/slurmdbd.log" "sacct to answer" sacct_ok
}

# ---------------------------------------------------------------- commands ----

cmd_env() {
    printf 'export SLURM_CONF=%s\n' "$SLURM_CONF_FILE"
}

cmd_up() {
    need_root
    local t0=$SECONDS p
    for p in munged mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sbatch sacctmgr; do
        command -v "$p" >/dev/null 2>&1 || [[ -x /usr/sbin/$p ]] ||
            die "'$p' not found — run '$0 install' first"
    done
    write_confs
    start_munge
    start_mariadb
    start_slurm
    log "up in $((SECONDS - t0))s; state in $STATE"
    cmd_env
    printf 'slurm-local: UP — cluster %s, partition debug, node %s: %s\n' \
        "$CLUSTER" "$NODE" "$(sinfo -h -N -n "$NODE" -o '%t %c CPUs %m MB' 2>/dev/null)"
}

cmd_down() {
    need_root
    # Cancel jobs first: slurmstepd and job processes are not ours to kill by
    # name, and would outlive slurmd. Bounded wait for them to go.
    if is_running slurmctld; then
        local jobs i
        jobs="$(squeue -h -o '%i' 2>/dev/null || true)"
        if [[ -n $jobs ]]; then
            log "cancelling jobs: $(echo "$jobs" | tr '\n' ' ')"
            # shellcheck disable=SC2086  # one id per word on purpose
            scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 40; i++)); do
                [[ -z $(squeue -h -o '%i' 2>/dev/null) ]] && break
                sleep 0.5
            done
        fi
    fi
    local idx
    for ((idx = ${#DAEMONS[@]} - 1; idx >= 0; idx--)); do # reverse start order
        stop_daemon "${DAEMONS[idx]}"
    done
    if [[ -L $SYSTEM_SLURM_CONF && $(readlink "$SYSTEM_SLURM_CONF") == "$SLURM_CONF_FILE" ]]; then
        rm -f "$SYSTEM_SLURM_CONF"
    fi
    log "DOWN (state kept in $STATE; '$0 purge' deletes it)"
}

cmd_purge() {
    cmd_down
    # Guard against deleting something silly if CFGEN_SLURM_DIR is odd.
    [[ $STATE == /* && $STATE != / && -d $STATE ]] || return 0
    rm -rf -- "$STATE"
    log "removed $STATE"
}

cmd_status() {
    local name pid rc=0
    for name in "${DAEMONS[@]}"; do
        if pid="$(daemon_pid "$name")"; then
            printf '%-10s running (pid %s)\n' "$name" "$pid"
        else
            printf '%-10s stopped\n' "$name"
            rc=1
        fi
    done
    if is_running slurmctld; then
        sinfo || true
    fi
    return "$rc"
}

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit 2
}

main() {
    [[ $# -eq 1 ]] || usage
    case "$1" in
    install) cmd_install ;;
    up) cmd_up ;;
    down) cmd_down ;;
    purge) cmd_purge ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
