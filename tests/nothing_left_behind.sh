#!/usr/bin/env bash
# nothing_left_behind.sh <build dir>
# Fails if a finished raympi job of this build left a process, or any job left a segment
# whose raylet is gone. Live jobs of other builds (running at the same time) are not counted.
build=$1
status=0
for entry in $("$(dirname "$0")/stale_shm.sh"); do
  echo "left in /dev/shm: $entry"
  status=1
done
procs=$(pgrep -a -f "$build/" | grep -v -e pgrep -e nothing_left_behind -e ctest || true)
if [ -n "$procs" ]; then
  echo "processes left running:"
  echo "$procs"
  status=1
fi
[ $status -eq 0 ] && echo "nothing left behind"
exit $status
