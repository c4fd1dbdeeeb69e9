#!/usr/bin/env bash
# Installs a single-node Slurm (Debian's slurm-wlm) and munge for the integration tests.
# Safe to run again: does nothing when sbatch, slurmctld, slurmd and munged are present.
# The tests' fixture (tests/integration/services/slurm.py) writes slurm.conf in a scratch
# directory and starts and stops the daemons on loopback; nothing is started here.
set -euo pipefail
need=(sbatch squeue scontrol scancel slurmctld slurmd munged)
missing=0
for b in "${need[@]}"; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || missing=1
done
if [ "$missing" = 0 ]; then
    echo "install-slurm: slurm-wlm and munge already installed"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
echo "install-slurm: installed $(dpkg-query -W -f='${Version}' slurm-wlm) and munge"
