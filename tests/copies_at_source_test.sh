#!/usr/bin/env bash
# copies_at_source_test.sh <launcher> <objects_test> <expect>: objects_test on 2 virtual nodes
# with --summary-json; `expect` "some" wants objects copied straight out of the other node's
# store (RAYMPI_SAME_HOST_PINS on), "none" wants every pull through the source raylet.
set -euo pipefail
launcher=$1
app=$2
expect=$3
json=$(mktemp /tmp/raympi-copies.XXXXXX.json)
trap 'rm -f "$json" "$json.partial"' EXIT
timeout 150 mpiexec -n 2 "$launcher" --ranks-per-node 1 --num-cpus 2 \
  --object-store-memory 256MiB --summary-json "$json" "$app" local 2
# The sum over the nodes of a summary field, given as a regex of its JSON name.
sum_field() {
  grep -oE "\"$1\": \"?[0-9]+" "$json" | grep -oE '[0-9]+$' | awk '{s += $1} END {print s + 0}'
}
copied=$(sum_field 'objects_?[cC]opied_?[aA]t_?[sS]ource')
pulled=$(sum_field 'objects_?[pP]ulled')
echo "pulled $pulled, copied at the source $copied"
[ "$pulled" -gt 0 ] || { echo "no pulls at all: the test no longer crosses nodes"; cat "$json"; exit 1; }
case $expect in
  some) [ "$copied" -gt 0 ] || { echo "no object was copied at the source"; cat "$json"; exit 1; } ;;
  none) [ "$copied" -eq 0 ] || { echo "copies at the source although turned off"; exit 1; } ;;
  *) echo "expect 'some' or 'none', not '$expect'"; exit 2 ;;
esac
