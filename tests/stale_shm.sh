#!/usr/bin/env bash
# stale_shm.sh [prefix]: prints the segments in /dev/shm named <prefix>... (default raympi-)
# whose raylet is gone (a raylet's segments are named raympi-p<its pid>-...; any other name
# counts as stale), one per line. Segments of jobs running beside it have live raylets; a
# segment whose raylet just ended normally is gone by the second look.
prefix=${1:-raympi-}
for entry in $(ls /dev/shm 2>/dev/null | grep "^$prefix" || true); do
  pid=$(sed -n 's/^raympi-p\([0-9]*\)-.*/\1/p' <<<"$entry")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then continue; fi
  [ -e "/dev/shm/$entry" ] && echo "$entry"
done
exit 0
