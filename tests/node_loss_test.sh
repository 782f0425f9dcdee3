#!/usr/bin/env bash
# node_loss_test.sh <launcher> <app>: node 1's raylet is stopped mid-job. The driver's checks must
# pass (tasks retried, objects rebuilt), the job must end (not hang) with a message naming the
# lost node and a non-zero exit, and no process of the job may be left.
set -uo pipefail
launcher=$1
app=$2
# Into a file, not a pipe: a process that outlived mpirun would hold a pipe open forever.
log=$(mktemp /tmp/raympi-node-loss.XXXXXX.log)
trap 'rm -f "$log"' EXIT
start=$SECONDS
RAYMPI_NODE_TIMEOUT_MS=1500 timeout -k 5 60 mpiexec -n 2 "$launcher" --ranks-per-node 1 \
  --object-store-memory 256MiB "$app" >"$log" 2>&1 </dev/null
rc=$?
out=$(cat "$log")
fail() { echo "FAIL: $1"; echo "$out" | grep -v '^\[vm'; exit 1; }
[ $((SECONDS - start)) -lt 55 ] || fail "the job hung (ended by timeout, exit $rc)"
[ $rc -ne 0 ] || fail "a job that lost a node exited 0"
grep -q "node_loss_test: 0 failure(s)" <<<"$out" || fail "the driver's checks failed"
grep -q "node 1 was lost during the job (no heartbeat" <<<"$out" || fail "no message naming the lost node"
# The job's processes: programs, their supervisors, the raylets (not this script, whose own
# arguments name the program too).
left=$(pgrep -f -- "^$app --raympi-bootstrap|--raympi-supervise=.* $app|^$launcher --ranks-per-node" || true)
[ -z "$left" ] || fail "processes left: $(ps -o pid,stat,args -p "$(echo $left | tr ' ' ,)")"
echo "ok: exit $rc, node 1 lost, results right, nothing running"
