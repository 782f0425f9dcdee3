#!/usr/bin/env bash
# summary_test.sh <launcher> <app>: a 2-node job with --summary and --summary-json must print the
# summary table and write a complete JSON summary naming both nodes and every task.
set -euo pipefail
launcher=$1
app=$2
json=$(mktemp /tmp/raympi-summary.XXXXXX.json)
trap 'rm -f "$json" "$json.partial"' EXIT
out=$(timeout 120 mpiexec -n 2 "$launcher" --ranks-per-node 1 --summary --summary-json "$json" "$app" 2 2>&1)
grep -q "raympi job summary: [0-9]* tasks" <<<"$out" || { echo "no summary table:"; echo "$out"; exit 1; }
grep -q '"node": 1' "$json" || { echo "node 1 missing from $json:"; cat "$json"; exit 1; }
grep -q '"utilisation"' "$json" || { echo "no utilisation in $json"; exit 1; }
grep -qE '"store_?[cC]apacity"' "$json" || { echo "no object store figures in $json"; exit 1; }
grep -q "store left (MiB)" <<<"$out" || { echo "no object store column in the table:"; echo "$out"; exit 1; }
tasks=$(sed -n 's/^ "tasks": "\([0-9]*\)".*/\1/p' "$json")
[ "${tasks:-0}" -ge 150 ] || { echo "expected >= 150 tasks in the summary, got '$tasks'"; cat "$json"; exit 1; }
[ ! -e "$json.partial" ] || { echo "a partial summary file was left behind"; exit 1; }
echo "summary ok: $tasks tasks"
