#!/usr/bin/env bash
# Runs the task microbenchmark and its raw-MPI baseline and prints one table.
#
#   bash bench/run_task_bench.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR (default: build) must already hold bin/raympi, bench/tasks/task_bench and
# bench/baseline/mpi_pingpong (this script builds nothing):
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build -j2 --target raympi_launcher task_bench mpi_pingpong
# OUT_DIR (default: a fresh temporary folder) receives rows.csv, one JSON per configuration and
# each run's log.
#
# Runs, one after the other, each with the whole job on this machine:
#   baseline   mpirun -n 2 mpi_pingpong                      8 B half round trip
#   1node      mpirun -n 1 raympi task_bench                 GCS+raylet rank, driver, workers
#   2vnodes    mpirun -n 2 raympi --ranks-per-node 1 ...     2 virtual nodes of 1 CPU each
# and the async scenario of both again with RAYMPI_PIPELINE_DEPTH=8.
# REPEATS=N (default 1) runs the whole set N times, interleaved, and reports per row the median
# over the repetitions and its range (use 3 or more on a machine that others share). Extra
# task_bench flags can be passed in TASK_BENCH_ARGS; each run is bounded by RUN_TIMEOUT seconds
# (default 300). WAIT_QUIET=S waits up to S seconds before each run for the machine to be idle
# (other jobs skew every figure here, the MPI baseline most).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
build="$(cd "${1:-$repo/build}" 2>/dev/null && pwd)" || {
  echo "run_task_bench: build folder '${1:-$repo/build}' does not exist" >&2
  exit 2
}
out="${2:-$(mktemp -d /tmp/raympi-task-bench.XXXXXX)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
timeout_s="${RUN_TIMEOUT:-300}"
repeats="${REPEATS:-1}"
wait_quiet="${WAIT_QUIET:-0}"
read -r -a extra <<<"${TASK_BENCH_ARGS:-}"

launcher="$build/bin/raympi"
bench="$build/bench/tasks/task_bench"
pingpong="$build/bench/baseline/mpi_pingpong"
for f in "$launcher" "$bench" "$pingpong"; do
  if [[ ! -x "$f" ]]; then
    echo "run_task_bench: $f is missing; build it first:" >&2
    echo "  cmake --build $build -j2 --target raympi_launcher task_bench mpi_pingpong" >&2
    exit 2
  fi
done

# shellcheck source=../scripts/mpi-env.sh
source "$repo/scripts/mpi-env.sh"

rows="$out/all_rows.csv"  # every run's rows; rows.csv holds the medians
echo "name,value,unit,baseline,ratio" >"$rows"
failed=0
noisy=0

# CPU busy percentage of the whole machine over one second (from /proc/stat).
busy_percent() {
  local a b c d e f g t1 i1
  read -r _ a b c d e f g _ </proc/stat
  t1=$((a + b + c + d + e + f + g)) i1=$((d + e))
  sleep 1
  read -r _ a b c d e f g _ </proc/stat
  echo $((100 - 100 * (d + e - i1) / (a + b + c + d + e + f + g - t1 + 1)))
}

# run NAME COMMAND...: runs under timeout, keeps the log, appends the result rows.
# The benchmark needs the machine to itself: say so when something else is running.
run() {
  local name="$1"
  shift
  local busy waited=0
  busy="$(busy_percent)"
  while ((busy > 10 && waited < wait_quiet)); do
    busy="$(busy_percent)"
    waited=$((waited + 1))
  done
  echo "== $name (machine ${busy}% busy before): $*" >&2
  if ((busy > 20)); then
    echo "run_task_bench: warning: another job uses ${busy}% of the CPUs; $name will read low" >&2
    noisy=1
  fi
  local rc=0
  timeout "$timeout_s" "$@" >"$out/$name.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "run_task_bench: $name failed (exit $rc); log: $out/$name.log" >&2
    tail -20 "$out/$name.log" >&2
    failed=1
    return 0
  fi
  grep -E '^[A-Za-z0-9_.]+,[-0-9.e+]+,[^,]*,[-0-9.e+]*,[-0-9.e+]*$' "$out/$name.log" >>"$rows" || true
}

for ((r = 1; r <= repeats; ++r)); do
  run "baseline.$r" mpirun -n 2 "$pingpong"
  half_rtt="$(awk -F, '$1 == "mpi.pingpong_8B.half_rtt" {v = $2} END {print v}' "$rows")"
  mpi_args=()
  [[ -n "$half_rtt" ]] && mpi_args=(--mpi-half-rtt-us "$half_rtt")

  run "1node.$r" mpirun -n 1 "$launcher" "$bench" --label 1node --only sync,async \
    --json "$out/1node.$r.json" "${mpi_args[@]}" "${extra[@]}"
  RAYMPI_PIPELINE_DEPTH=8 run "1node_depth8.$r" mpirun -x RAYMPI_PIPELINE_DEPTH -n 1 \
    "$launcher" "$bench" --label 1node --only async --json "$out/1node_depth8.$r.json" \
    "${extra[@]}"
  run "2vnodes.$r" mpirun -n 2 "$launcher" --ranks-per-node 1 "$bench" --label 2vnodes \
    --only sync,async --json "$out/2vnodes.$r.json" "${mpi_args[@]}" "${extra[@]}"
  RAYMPI_PIPELINE_DEPTH=8 run "2vnodes_depth8.$r" mpirun -x RAYMPI_PIPELINE_DEPTH -n 2 \
    "$launcher" --ranks-per-node 1 "$bench" --label 2vnodes --only async \
    --json "$out/2vnodes_depth8.$r.json" "${extra[@]}"
done

# Per row: the median over the repetitions, its range, and the ratio of the median to the
# median baseline (plain awk: no gawk extensions).
awk -F, -v OFS=, '
  function median(list, n,   v, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; ++i) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; --j) {
      t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
    }
    lo = v[1]; hi = v[n]
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  NR == 1 { next }
  {
    if (!($1 in vals)) { order[++count] = $1; unit[$1] = $3 }
    vals[$1] = vals[$1] " " $2
    if ($4 != "") base[$1] = base[$1] " " $4
  }
  END {
    print "name,value,unit,baseline,ratio,min,max"
    for (k = 1; k <= count; ++k) {
      name = order[k]
      b = ""
      if (name in base) b = median(base[name])
      m = median(vals[name])
      printf "%s,%.3f,%s,%s,%s,%.3f,%.3f\n", name, m, unit[name],
        (b == "" ? "" : sprintf("%.3f", b)), (b == "" ? "" : sprintf("%.3f", m / b)), lo, hi
    }
  }' "$rows" >"$out/rows.csv"

os="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
mpi="$(mpirun --version 2>/dev/null | head -1)"
rev="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "raympi task microbenchmark: $(nproc) cores, $os, $mpi, raympi $rev"
echo "rows: $out/rows.csv (medians of $repeats repetition(s)); every run: $rows"
echo
awk -F, '
  NR == 1 { printf "%-40s %11s %-8s %10s %7s  %s\n", "benchmark", "value", "unit", "baseline", "ratio", "range"; next }
  { printf "%-40s %11.2f %-8s %10s %7s  %s\n", $1, $2, $3,
      ($4 == "" ? "-" : sprintf("%.2f", $4)), ($5 == "" ? "-" : sprintf("%.2f", $5)),
      ($6 == $7 ? "" : sprintf("%.2f-%.2f", $6, $7)) }' "$out/rows.csv"
cat <<'NOTE'

baselines: *.sync.us_per_task vs the MPI 8 B round trip (2 x the half round trip above);
*.tasks_per_s vs Ray's published single-node figures (~1,000 sync, ~8,000 async tasks/s).
ratio = value / baseline: above 1 is faster than Ray for tasks/s, and is the slowdown over
raw MPI for us_per_task.
NOTE
((noisy)) && echo "warning: the machine was busy during some runs (see above); rerun when quiet"
exit "$failed"
