#!/usr/bin/env bash
# Installs the Debian 12 packages raympi needs, if any are missing. Run as root.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev      # MPI: launch, spawn, point-to-point, RMA
  libhwloc-dev hwloc              # node topology: cores, NUMA, memory
  libhdf5-openmpi-dev hdf5-tools  # object spilling (parallel HDF5)
  libprotobuf-dev protobuf-compiler  # control messages
  libcereal-dev                   # serialization of user types
  libcli11-dev                    # the raympi launcher's flags
  libspdlog-dev libfmt-dev        # logging
  libgtest-dev libgmock-dev       # tests
  python3                         # bench/run and its ctest smoke (stdlib only)
  slurm-wlm slurmctld slurmd slurm-client munge  # slurm.sbatch_template: a private Slurm
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages and not root; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
