#!/usr/bin/env bash
# raympi across 2 separate hosts (network namespaces, TCP between them): one raympi node per host,
# with spawned workers and in no-spawn mode (--prelaunched).
#   run_multihost_test.sh <build dir>
# Exit 0: passed; 77: this machine cannot make namespace hosts (skipped, the reason is printed);
# anything else: failed. See docs/multihost-testing.md.
set -u
set -o pipefail

build=${1:?usage: run_multihost_test.sh <build dir>}
build=$(readlink -f "$build")
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
hosts="$here/netns_hosts.sh"
raympi="$build/bin/raympi"
app="$build/tests/mpi/tasks_test"
objects_app="$build/tests/mpi/objects_test"
for f in "$raympi" "$app" "$objects_app"; do
  [ -x "$f" ] || { echo "FAIL: $f is missing (build raympi_launcher, tasks_test, objects_test)"; exit 1; }
done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
t_start=$(now)

reason=$("$hosts" check 2>&1)
rc=$?
if [ $rc -eq 77 ]; then
  echo "SKIPPED: $reason"
  exit 77
elif [ $rc -ne 0 ]; then
  echo "FAIL: netns_hosts.sh check exited $rc: $reason"
  exit 1
fi

# A prefix of its own, so concurrent runs never share a namespace, a host name or a session dir.
prefix="rmp$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
state=$(mktemp -d /tmp/raympi-netns.XXXXXX)
echo "hosts ${prefix}h0 ${prefix}h1, state in $state"
cleanup() { timeout 60 "$hosts" down "$state" >/dev/null 2>&1; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

status=0
fail() { echo "FAIL: $*"; status=1; }
# Runs a command in the background and waits: a signal then reaches the traps at once (bash
# defers traps until a foreground command ends), and the EXIT trap tears the hosts down.
in_bg() { "$@" & wait $!; }

t=$(now)
if ! in_bg timeout 60 "$hosts" up "$prefix" 2 "$state"; then
  echo "FAIL: could not create the hosts"; exit 1
fi
echo "up: $(since "$t")"

# What must be gone afterwards: every process in these namespaces (network or UTS).
ns_ids=""
while read -r name ip pid ns; do
  ns_ids+=" $(readlink "/proc/$pid/ns/net") $(readlink "/proc/$pid/ns/uts")"
done <"$state/hosts.map"
holders=$(cut -d' ' -f3 "$state/hosts.map" | tr '\n' ' ')

cd /tmp || exit 1
# The MPI layer alone first: mpirun on host 0 starts a rank on each host.
t=$(now)
NETNS_RUN_TIMEOUT=45 in_bg "$hosts" run "$state" -- \
  mpirun -n 2 --hostfile "$state/hostfile" --map-by node hostname </dev/null >"$state/seen" 2>&1
rc=$?
seen=$(sort "$state/seen" | tr '\n' ' ')
echo "hosts seen by mpirun -n 2 --map-by node: $seen($(since "$t"))"
[ $rc -eq 0 ] || fail "mpirun of hostname exited $rc"
[ "$seen" = "${prefix}h0 ${prefix}h1 " ] || fail "expected ${prefix}h0 ${prefix}h1"

# raympi: one node per host, each with its own raylet and workers; the driver returns the number
# of failed checks. tasks_test 2 also checks that 2 tasks, each taking a whole node's CPUs, run
# at the same time, which needs a spillback from host 0 to host 1 over TCP.
t=$(now)
log="$state/raympi.log"
NETNS_RUN_TIMEOUT=150 in_bg "$hosts" run "$state" -- \
  mpirun -n 2 --hostfile "$state/hostfile" --map-by node \
  "$raympi" --log-level info "$app" 2 </dev/null >"$log" 2>&1
rc=$?
cat "$log"
echo "raympi across 2 hosts: exit $rc ($(since "$t"))"
[ $rc -eq 0 ] || fail "raympi tasks_test across 2 hosts exited $rc"
# Each raylet names its host: node 0 must be on h0, node 1 on h1.
for i in 0 1; do
  grep -q "node $i: .* host ${prefix}h$i\$" "$log" || fail "node $i did not report host ${prefix}h$i"
done
grep -q "tasks_test: 0 failure(s)" "$log" || fail "tasks_test did not report 0 failures"

# Large objects made on one host and read on the other: one-sided MPI over TCP (osc pt2pt, which
# raympi picks itself for hosts without RDMA devices).
t=$(now)
log="$state/objects.log"
NETNS_RUN_TIMEOUT=150 in_bg "$hosts" run "$state" -- \
  mpirun -n 2 --hostfile "$state/hostfile" --map-by node \
  "$raympi" --num-cpus 2 --object-store-memory 256MiB "$objects_app" local 2 </dev/null >"$log" 2>&1
rc=$?
cat "$log"
echo "raympi objects across 2 hosts: exit $rc ($(since "$t"))"
[ $rc -eq 0 ] || fail "raympi objects_test across 2 hosts exited $rc"
grep -q "objects_test local: 0 failure(s)" "$log" || fail "objects_test did not report 0 failures"

# No-spawn mode across hosts (--prelaunched, as under srun direct launch): 4 ranks per host are
# its raylet, the driver (host 0) and workers that joined MPI on their own host.
t=$(now)
log="$state/prelaunched.log"
NETNS_RUN_TIMEOUT=150 in_bg "$hosts" run "$state" -- \
  mpirun -n 8 --hostfile "$state/hostfile" --map-by ppr:4:node --oversubscribe \
  "$raympi" --prelaunched --log-level info "$app" 2 1 </dev/null >"$log" 2>&1
rc=$?
cat "$log"
echo "raympi --prelaunched across 2 hosts: exit $rc ($(since "$t"))"
[ $rc -eq 0 ] || fail "raympi --prelaunched tasks_test across 2 hosts exited $rc"
grep -q "no-spawn mode: 8 ranks on 2 node(s) run the driver and 5 worker(s)" "$log" ||
  fail "the no-spawn job did not have 2 nodes and 5 workers"
grep -q "node 1: .* host ${prefix}h1\$" "$log" || fail "node 1 did not report host ${prefix}h1"
grep -q "tasks_test: 0 failure(s)" "$log" || fail "tasks_test --prelaunched did not report 0 failures"

# Tear down, then check that nothing is left.
t=$(now)
# Processes started after this moment cannot be ours (the kernel may reuse a namespace's id).
down_ticks=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", $1 * hz }' /proc/uptime)
trap - EXIT
in_bg timeout 60 "$hosts" down "$state" || fail "down failed"
echo "down: $(since "$t")"
left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-")
[ -z "$left" ] || fail "namespaces left: $left"
for pid in $holders; do
  state_of_pid=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
  case "$state_of_pid" in ""|Z|X) ;; *) fail "holder $pid still runs" ;; esac
done
procs=""
# One find over /proc: "<dir>/ns <namespace id>" for every process's net and UTS namespace.
while read -r nsdir id; do
  [ -n "$id" ] || continue                                          # not readable: not ours
  case " $ns_ids " in *" $id "*) ;; *) continue ;; esac
  p=${nsdir%/ns}
  start=$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f20)   # field 22: start time
  [ -n "$start" ] && [ "$start" -le "$down_ticks" ] || continue
  case "$procs" in *"(pid ${p#/proc/})"*) continue ;; esac
  procs+="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") (pid ${p#/proc/})"$'\n'
done < <(find /proc/[0-9]*/ns -maxdepth 1 \( -name net -o -name uts \) -printf '%h %l\n' 2>/dev/null)
[ -z "$procs" ] || fail "processes left on the fake hosts:"$'\n'"$procs"
ls -d /tmp/ompi."$prefix"* >/dev/null 2>&1 && fail "Open MPI session dirs left: $(ls -d /tmp/ompi."$prefix"*)"
[ -e "$state" ] && fail "state dir $state left"
[ $status -eq 0 ] && echo "nothing left: no namespaces, holders, processes or session dirs of $prefix"

echo "total: $(since "$t_start")"
[ $status -eq 0 ] && echo "PASSED" || echo "FAILED"
exit $status
