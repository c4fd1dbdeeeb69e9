#!/usr/bin/env bash
# Installs PostgreSQL (Debian's package) for the integration tests of the shared record store.
# Safe to run again: does nothing when initdb, pg_ctl and postgres are present. The tests'
# fixture (tests/integration/services/postgres.py) runs initdb and pg_ctl as the postgres
# user in a scratch directory on a free loopback port; no cluster is started here.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then
    echo "install-postgresql: postgresql already installed"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends postgresql >/dev/null
echo "install-postgresql: installed $(ls /usr/lib/postgresql/)"
