#!/usr/bin/env bash
# Cluster scheduling figures: 10,000 no-op tasks on 1 node, spread over 4 virtual nodes
# (default strategy and SPREAD) and over 2 separate hosts made of network namespaces (TCP
# between them; needs root, else skipped with the reason), with the ratio to the single-node
# figure; then 10,000 tasks of 1 ms on 4 virtual nodes with the job summary, to show the
# utilisation of every node.
#
#   bash bench/run_cluster_bench.sh [BUILD_DIR]
#
# Runs on this machine only (virtual nodes share its cores). Builds nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:-$here/../build}" && pwd)"
source "$here/../scripts/mpi-env.sh"
launcher="$build/bin/raympi"
bench="$build/bench/tasks/task_bench"
out=$(mktemp -d /tmp/raympi-cluster-bench.XXXXXX)

median_of() {  # the async median row of a task_bench log
  sed -n 's/^[^,]*\.async\.tasks_per_s_median,\([0-9.]*\),.*/\1/p' "$1" | head -1
}
run() {  # name, ranks, raympi flags..., -- task_bench flags...
  local name=$1 ranks=$2
  shift 2
  local flags=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  timeout 600 mpirun -n "$ranks" "$launcher" "${flags[@]}" "$bench" --label "$name" --only async \
    --async-runs 3 "$@" > "$out/$name.log" 2>&1
}

run 1node 1 -- --async-tasks 10000
run 4vnodes 4 --ranks-per-node 1 -- --async-tasks 10000
run 4vnodes_spread 4 --ranks-per-node 1 -- --async-tasks 10000 --spread 1
names="1node 4vnodes 4vnodes_spread"
hosts="$here/../tests/netns/netns_hosts.sh"
if reason=$("$hosts" check 2>&1); then
  prefix="rmb$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  state=$(mktemp -d /tmp/raympi-netns-bench.XXXXXX)
  trap 'timeout 60 "$hosts" down "$state" >/dev/null 2>&1 || true' EXIT
  timeout 60 "$hosts" up "$prefix" 2 "$state" > "$out/netns_up.log" 2>&1
  NETNS_RUN_TIMEOUT=600 "$hosts" run "$state" -- mpirun -n 2 --hostfile "$state/hostfile" \
    --map-by node "$launcher" "$bench" --label 2hosts --only async --async-runs 3 \
    --async-tasks 10000 < /dev/null > "$out/2hosts.log" 2>&1
  timeout 60 "$hosts" down "$state" > /dev/null 2>&1
  trap - EXIT
  names="$names 2hosts"
else
  echo "2 namespace hosts: skipped ($reason)"
fi
base=$(median_of "$out/1node.log")
printf '%-26s %12s %8s\n' "configuration" "tasks/s" "ratio"
for name in $names; do
  v=$(median_of "$out/$name.log")
  printf '%-26s %12.0f %8.2f\n' "$name" "$v" "$(awk -v a="$v" -v b="$base" 'BEGIN{print a/b}')"
done
echo
echo "10,000 tasks of 1 ms on 4 virtual nodes, job summary:"
timeout 600 mpirun -n 4 "$launcher" --ranks-per-node 1 --summary "$bench" --label util \
  --only async --async-runs 1 --warmup 1 --async-tasks 10000 --task-us 1000 --spread 1 \
  > "$out/util.log" 2>&1
grep -A6 "raympi job summary" "$out/util.log"
echo "(logs in $out)"
