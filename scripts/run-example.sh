#!/usr/bin/env bash
# Builds raympi and runs the example job on 3 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
source scripts/mpi-env.sh
timeout 120 mpirun -n 3 build/bin/raympi build/examples/hello
