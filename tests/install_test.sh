#!/usr/bin/env bash
# install_test.sh <build dir> <source dir>: installs raympi into a temporary prefix, builds
# examples/out_of_tree against it with find_package(raympi), and runs it with the installed
# launcher. Fails on any step.
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d /tmp/raympi-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$src/examples/out_of_tree" -B "$work/app" -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/app" > "$work/build.log"
timeout 60 "$work/prefix/bin/raympi" "$work/app/monte_carlo"
