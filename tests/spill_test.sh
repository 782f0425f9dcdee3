#!/usr/bin/env bash
# spill_test.sh <spill base> <regex> <command...>: runs a job that spills into <spill base>
# (a fresh, empty folder); it must pass, print <regex>, and leave nothing in <spill base>: each
# node's spill directory is removed at the end of the job.
set -uo pipefail
base=$1
regex=$2
shift 2
rm -rf "$base"
mkdir -p "$base"
log=$(mktemp /tmp/raympi-spill-test.XXXXXX.log)
trap 'rm -f "$log"; rm -rf "$base"' EXIT
timeout 110 "$@" >"$log" 2>&1
code=$?
cat "$log"
[ $code -eq 0 ] || { echo "the job failed with exit code $code"; exit 1; }
grep -qE "$regex" "$log" || { echo "the output does not match '$regex'"; exit 1; }
left=$(ls -A "$base")
[ -z "$left" ] || { echo "left in the spill folder $base: $left"; exit 1; }
echo "spill ok"
