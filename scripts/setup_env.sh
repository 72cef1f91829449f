#!/usr/bin/env bash
# Shared set-up for the demo, the tests and CI: a virtualenv with BTU installed, and MariaDB
# and Redis up (started with this machine kind's own commands when they are not running).
# BTU_SETUP_REDIS=0 leaves the machine's Redis alone (the demo and the tests start their own).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BTU_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV and installing BTU with its test tools into it (about 30 s)"
  "$PYTHON" -m venv "$VENV"
fi
# Install (or refresh) the package and its test extras; quiet unless something fails.
"$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test,metrics]" ${BTU_EXTRA_PIP:-} \
  2> >(grep -v -e "^WARNING: Location" >&2)

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not installed" >&2; exit 1; }; }
need redis-server
need mariadbd

if [ "${BTU_SETUP_REDIS:-1}" = 1 ] && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "setup: starting Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! mariadb -uroot -h127.0.0.1 -e "select 1" >/dev/null 2>&1; then
  echo "setup: starting MariaDB on 127.0.0.1:3306"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do
    mariadb -uroot -h127.0.0.1 -e "select 1" >/dev/null 2>&1 && break
    sleep 1
  done
fi
mariadb -uroot -h127.0.0.1 -e "select 1" >/dev/null 2>&1 || { echo "setup: MariaDB did not come up" >&2; exit 1; }
if [ "${BTU_SETUP_REDIS:-1}" = 1 ]; then
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "setup: Redis did not come up" >&2; exit 1; }
fi
