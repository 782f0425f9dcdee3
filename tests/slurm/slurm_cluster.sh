#!/usr/bin/env bash
# A private Slurm cluster on this one machine, for testing raympi's batch templates.
#
#   slurm_cluster.sh check                    exit 0 if Slurm and munge are installed, else 1 + how
#   slurm_cluster.sh up <statedir> <nnodes>   munged, slurmctld and <nnodes> slurmd (n1..nN)
#   slurm_cluster.sh down <statedir>          stop every process of the cluster, remove statedir
#   slurm_cluster.sh pids <statedir>          the cluster's processes still running
#
# Everything lives under <statedir>: the munge key and socket, slurm.conf, spool and state
# folders, logs. Daemons listen on 127.0.0.1 only, on ports picked free at run time, under a
# cluster name unique to this run, so two runs never meet. Clients reach the cluster with
# SLURM_CONF=<statedir>/slurm.conf (up prints it). `down` ends exactly this cluster's
# processes: the daemons and their step daemons carry RAYMPI_SLURM_DAEMON=<statedir> in their
# environment, a job's processes SLURM_JOB_ID and SLURM_CONF=<statedir>/slurm.conf.
# Recipe and its reasons: /work/shared/PLATFORM.md, "A real Slurm on one machine".
set -u
set -o pipefail

die() { echo "slurm_cluster: $*" >&2; exit 1; }

PACKAGES="slurm-wlm slurmctld slurmd slurm-client munge"

# ---------------------------------------------------------------------------------------- check
cmd_check() {
  local tool missing=""
  for tool in munged slurmctld slurmd sbatch scontrol sinfo squeue scancel; do
    command -v "$tool" >/dev/null 2>&1 || missing+=" $tool"
  done
  if [ -n "$missing" ]; then
    echo "slurm_cluster: Slurm is not installed (missing:$missing). Install it with" \
      "'bash scripts/install-deps.sh' or 'apt-get install $PACKAGES' (Debian 12, as root)."
    exit 1
  fi
  [ "$(id -u)" = 0 ] || { echo "slurm_cluster: needs root (slurmd runs jobs as their user)"; exit 1; }
  echo "slurm_cluster: $(slurmctld -V 2>&1), munge $(munged -V 2>&1 | awk '{print $1}')"
}

# A TCP port nobody listens on now. Another run may still take it before our daemon binds: `up`
# then fails with the daemon's log and the caller may try again with new ports.
free_port() {
  local p used
  used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
  done
  return 1
}

# Polls a condition until it holds or <seconds> pass.
wait_for() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# ------------------------------------------------------------------------------------------- up
cmd_up() {
  [ $# -eq 2 ] || die "usage: up <statedir> <nnodes>"
  local state=$1 n=$2 i
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 8 ] || die "nnodes must be 1..8"
  mkdir -p "$state" || die "cannot create $state"
  state=$(readlink -f "$state")
  [ -e "$state/slurm.conf" ] && die "$state is in use (run down first)"
  # munged refuses a socket folder others cannot traverse the way it expects; jobs run as root.
  chmod 0755 "$state"
  mkdir -p "$state/munge" "$state/ctld" "$state/log" "$state/jobs"
  chmod 0755 "$state/munge"
  dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$state/munge/munge.key"
  for ((i = 1; i <= n; i++)); do
    mkdir -p "$state/spool/n$i" "$state/tmp/n$i" "$state/vader/n$i"
  done

  local host ctld_port name
  host=$(hostname -s)
  ctld_port=$(free_port) || die "no free port"
  name="rmp$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  # Emulated nodes share one host name, so the vader segments of two nodes' ranks would have
  # the same names (host, job, local rank): each node's steps get their own backing folder.
  # Not the batch step: mpirun forwards its OMPI_MCA_* variables to every rank, which would give
  # all nodes the first node's folder; the orted that srun starts on each node passes its own.
  cat >"$state/task_prolog.sh" <<EOF
#!/bin/sh
[ -n "\$SLURM_STEP_ID" ] || exit 0
echo "export OMPI_MCA_btl_vader_backing_directory=$state/vader/\$SLURMD_NODENAME"
EOF
  chmod 0755 "$state/task_prolog.sh"
  {
    cat <<EOF
ClusterName=$name
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/%n
TmpFS=$state/tmp/%n
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd-%n.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd-%n.log
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog=$state/task_prolog.sh
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.txt
KillWait=2
EOF
    for ((i = 1; i <= n; i++)); do
      echo "NodeName=n$i NodeHostname=localhost NodeAddr=127.0.0.1 Port=$(free_port) CPUs=$(nproc) RealMemory=2000 State=UNKNOWN"
    done
    echo "PartitionName=test Nodes=n[1-$n] Default=YES MaxTime=INFINITE State=UP"
  } >"$state/slurm.conf"

  export SLURM_CONF="$state/slurm.conf" RAYMPI_SLURM_DAEMON="$state"
  # Foreground daemons, each in its own session, so `down` finds them by pid and environment.
  setsid munged -F --force --socket="$state/munge/munge.socket" \
    --key-file="$state/munge/munge.key" --pid-file="$state/munge/munged.pid" \
    --seed-file="$state/munge/seed" --log-file="$state/log/munged.log" \
    </dev/null >>"$state/log/munged.out" 2>&1 &
  wait_for 10 test -S "$state/munge/munge.socket" ||
    { tail -5 "$state/log/munged.log" "$state/log/munged.out" >&2; die "munged did not start"; }
  setsid slurmctld -D -i </dev/null >>"$state/log/slurmctld.out" 2>&1 &
  for ((i = 1; i <= n; i++)); do
    setsid slurmd -D -N "n$i" </dev/null >>"$state/log/slurmd-n$i.out" 2>&1 &
    done
  # Up when every node is idle.
  nodes_idle() {
    local idle
    idle=$(sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | wc -l)
    [ "$idle" -eq "$n" ]
  }
  if ! wait_for 30 nodes_idle; then
    echo "slurm_cluster: nodes not idle after 30 s; sinfo:" >&2
    sinfo -N >&2 2>&1
    tail -n 5 "$state"/log/*.log >&2
    die "the cluster did not come up"
  fi
  echo "$SLURM_CONF"
}

# ----------------------------------------------------------------------------------------- down
# Every process of the cluster: daemons, step daemons, jobs (see the top of this file).
cluster_pids() {
  local state=$1 confs
  {
    grep -lzxF "RAYMPI_SLURM_DAEMON=$state" /proc/[0-9]*/environ 2>/dev/null
    confs=$(grep -lzxF "SLURM_CONF=$state/slurm.conf" /proc/[0-9]*/environ 2>/dev/null)
    [ -z "$confs" ] || grep -lz '^SLURM_JOB_ID=' $confs 2>/dev/null
  } | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' | sort -u
}

cmd_down() {
  [ $# -eq 1 ] || die "usage: down <statedir>"
  local state=$1 pids
  [ -d "$state" ] || return 0
  state=$(readlink -f "$state")
  if [ -e "$state/slurm.conf" ]; then
    # Jobs first, so no job outlives its cluster; then the daemons.
    SLURM_CONF="$state/slurm.conf" timeout 5 scancel --full --quiet --user=root >/dev/null 2>&1
    pids=$(cluster_pids "$state" | tr '\n' ' ')
    [ -n "${pids// /}" ] && kill -TERM $pids 2>/dev/null
    no_pids_left() { [ -z "$(cluster_pids "$state")" ]; }
    if ! wait_for 10 no_pids_left; then
      pids=$(cluster_pids "$state" | tr '\n' ' ')
      [ -n "${pids// /}" ] && kill -KILL $pids 2>/dev/null
      wait_for 5 no_pids_left || echo "slurm_cluster: still running: $(cluster_pids "$state")" >&2
    fi
  fi
  rm -rf "$state"
}

case ${1:-} in
  check) shift; cmd_check "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  pids) shift; cluster_pids "$(readlink -m "${1:?usage: pids <statedir>}")" ;;
  *) die "usage: slurm_cluster.sh check | up <statedir> <nnodes> | down <statedir>" ;;
esac
