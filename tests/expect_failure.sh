#!/usr/bin/env bash
# expect_failure.sh <regex> <command...>
# Passes when the command exits non-zero and its output matches <regex>: bad input must give a
# clear message and a failing exit code.
regex=$1
shift
out=$("$@" 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
  printf 'expected a failure, got exit 0; output:\n%s\n' "$out"
  exit 1
fi
if ! grep -qE -- "$regex" <<<"$out"; then
  printf 'exit %d, but the output lacks /%s/:\n%s\n' "$rc" "$regex" "$out"
  exit 1
fi
echo "ok: exit $rc with the expected message"
