#!/usr/bin/env bash
# pull_path_test.sh <launcher> <objects_test> <field> <expect>: objects_test on 2 virtual nodes
# with --summary-json; `field` is a job-summary counter of how pulls went (objects_copied_at_source,
# objects_pulled_one_sided, objects_copied_by_readers); `expect` "some" wants it above 0 over the
# nodes, "none" wants 0.
# The environment picks the path (RAYMPI_SAME_HOST_PINS, RAYMPI_SAME_HOST_READS, ...): a fast
# path that always fell back would otherwise pass every other test.
set -euo pipefail
launcher=$1
app=$2
field=$3
expect=$4
json=$(mktemp /tmp/raympi-pulls.XXXXXX.json)
trap 'rm -f "$json" "$json.partial"' EXIT
timeout 150 mpiexec -n 2 "$launcher" --ranks-per-node 1 --num-cpus 2 \
  --object-store-memory 256MiB --summary-json "$json" "$app" local 2
# The sum over the nodes of a summary field.
sum_field() {
  grep -oE "\"$1\": \"?[0-9]+" "$json" | grep -oE '[0-9]+$' | awk '{s += $1} END {print s + 0}'
}
counted=$(sum_field "$field")
pulled=$(sum_field objects_pulled)
copied=$(sum_field objects_copied_by_readers)
echo "pulled $pulled, copied by readers $copied, $field $counted"
[ $((pulled + copied)) -gt 0 ] ||
  { echo "no object moved at all: the test no longer crosses nodes"; cat "$json"; exit 1; }
case $expect in
  some) [ "$counted" -gt 0 ] || { echo "no pull counted in $field"; cat "$json"; exit 1; } ;;
  none) [ "$counted" -eq 0 ] || { echo "$field counted pulls although turned off"; exit 1; } ;;
  *) echo "expect 'some' or 'none', not '$expect'"; exit 2 ;;
esac
