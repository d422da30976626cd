#!/bin/sh
# The one-node SLURM of `make test-slurm` (tests/slurm_cluster.py) needs Debian's slurmctld, slurmd,
# slurmdbd, munge and MariaDB. Installs them with apt-get when one is missing (root, Debian or Ubuntu);
# otherwise says what is missing and stops. Nothing is started here, and nothing is configured:
# the test starts its own private daemons and removes them at the end.
set -eu
PATH="$PATH:/usr/sbin:/sbin"
missing=""
for program in slurmctld slurmd slurmdbd sbatch sacct sacctmgr munged mungekey mariadbd mariadb-install-db; do
  command -v "$program" >/dev/null 2>&1 || missing="$missing $program"
done
[ -z "$missing" ] && exit 0
echo "make test-slurm: not installed:$missing; installing slurm-wlm slurmdbd munge mariadb-server" >&2
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "make test-slurm needs root and apt-get to install them (or install slurm-wlm, slurmdbd, munge and mariadb-server yourself)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' own services from starting where there is no init system;
# where there is one, they start with the system's configuration, which the test does not use.
apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd munge mariadb-server >/dev/null
