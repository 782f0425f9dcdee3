#!/usr/bin/env bash
# Builds raympi and runs the whole test suite (unit and multi-rank), each test under a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
source scripts/mpi-env.sh
cd build
ctest --output-on-failure --timeout 300 "$@"
