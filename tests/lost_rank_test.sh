#!/usr/bin/env bash
# lost_rank_test.sh <case> <launcher> <app>: a runtime rank is lost mid-job. Every case checks
# that the job ends by itself (no hang), says what happened, and leaves no process and no
# shared memory behind; each case adds what the user must see.
#   node_stop           node 1's raylet is stopped (SIGSTOP): the GCS declares it lost after
#                       the heartbeat timeout, its work is redone elsewhere, the job exits
#                       non-zero.                                    (app: node_loss_test)
#   node_kill           node 1's raylet is killed (SIGKILL) under plain mpirun: mpirun ends the
#                       job at once, non-zero.                       (app: node_loss_test)
#   node_kill_recovery  the same under mpirun --enable-recovery: the job goes on without node 1,
#                       its work is redone elsewhere, raympi prints the job's exit code (mpirun
#                       reports 0 whatever it is).                   (app: node_loss_test)
#   gcs_kill            rank 0 (the GCS and node 0's raylet) is killed under plain mpirun.
#   gcs_kill_recovery   the same under --enable-recovery: node 1's raylet notices the silent
#                       GCS and ends its node.                       (app: gcs_loss)
set -uo pipefail
case_name=$1
launcher=$2
app=$3
mpirun_flags=()
app_args=()
case $case_name in
  node_stop) ;;
  node_kill) app_args=(kill) ;;
  node_kill_recovery) mpirun_flags=(--enable-recovery); app_args=(kill) ;;
  gcs_kill) ;;
  gcs_kill_recovery) mpirun_flags=(--enable-recovery) ;;
  *) echo "unknown case $case_name"; exit 2 ;;
esac
# Into a file, not a pipe: a process that outlived mpirun would hold a pipe open forever.
log=$(mktemp /tmp/raympi-lost-rank.XXXXXX.log)
trap 'rm -f "$log"' EXIT
start=$SECONDS
RAYMPI_NODE_TIMEOUT_MS=1500 timeout -k 5 60 mpiexec "${mpirun_flags[@]}" -n 2 "$launcher" \
  --ranks-per-node 1 --object-store-memory 256MiB "$app" "${app_args[@]}" >"$log" 2>&1 </dev/null
rc=$?
out=$(cat "$log")
fail() { echo "FAIL ($case_name): $1"; echo "$out" | grep -v -e '^\[vm' -e 'PMIX ERROR'; exit 1; }
expect() { grep -q -- "$1" <<<"$out" || fail "$2"; }
[ $((SECONDS - start)) -lt 55 ] || fail "the job hung (ended by timeout, exit $rc)"
case $case_name in
  node_stop)
    [ $rc -ne 0 ] || fail "a job that lost a node exited 0"
    expect "node_loss_test: 0 failure(s)" "the driver's checks failed"
    expect "node 1 was lost during the job (no heartbeat" "no message naming the lost node" ;;
  node_kill | gcs_kill)
    [ $rc -ne 0 ] || fail "a job that lost a runtime rank exited 0"
    expect "exited on signal 9" "no message from mpirun naming the killed rank" ;;
  node_kill_recovery)
    expect "node_loss_test: 0 failure(s)" "the driver's checks failed"
    expect "node 1 was lost during the job (no heartbeat" "no message naming the lost node"
    expect "raympi: job exit code 1" "no line giving the job's exit code" ;;
  gcs_kill_recovery)
    expect "raylet of node 0 (pid [0-9]*, the GCS's rank) ended before the job did" \
      "the driver's side did not say the GCS's rank ended"
    expect "nothing from the GCS (rank 0) for" "node 1 did not say it lost the GCS" ;;
esac
# The job's processes: programs, their supervisors, the raylets (not this script, whose own
# arguments name the program too; ctest runs these cases one at a time). Zombies are not
# counted: they no longer run.
left=$(pgrep -f -- "^$app --raympi-bootstrap|--raympi-supervise=.* $app|^$launcher .* $app" || true)
[ -z "$left" ] || fail "processes left: $(ps -o pid,stat,args -p "$(echo $left | tr ' ' ,)")"
# Segments whose raylet is gone (those of jobs running beside this one have live raylets).
stale=$("$(dirname "$0")/stale_shm.sh" raympi-p)
[ -z "$stale" ] || fail "left in /dev/shm: $stale"
echo "ok ($case_name): exit $rc, ended by itself, nothing left running or in /dev/shm"
