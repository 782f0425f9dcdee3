#!/usr/bin/env bash
# Installs the peer runtimes that bench/run compares raympi with, from Debian packages only
# (no pip, nothing from the network but apt): Dask distributed, mpi4py (whose futures module
# runs on the Open MPI the project already uses) and numpy for the array benchmarks.
#
#   sudo bash bench/install-peers.sh        # or as root
#
# The peers run under Debian's /usr/bin/python3: the `python3` on a PATH may be another
# Python that does not see Debian's packages.
set -euo pipefail
packages=(python3-distributed python3-mpi4py python3-numpy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-peers: all installed (${packages[*]})"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-peers: needs root to apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-peers: installed ${missing[*]}"
