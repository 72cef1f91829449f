#!/usr/bin/env bash
# The main job: the daemon on a demo set of schedules firing every few seconds, a plain rq
# worker running them, and a live view of the runs. Ctrl-C stops everything cleanly.
#
# It erases nothing it did not create: by default its own redis-server on a free port (stopped at
# the end) and its own MariaDB database (created now, dropped at the end). Settings:
#   BTU_DEMO_REDIS=redis://host:port/db  use that Redis database instead; refused unless it is empty
#                                        (the demo's keys stay there afterwards)
#   BTU_DEMO_DB=name                     the database's name (default btu_demo_<random>); refused
#                                        when it exists already
#   BTU_DEMO_KEEP_DB=1                   keep the database at the end
#   BTU_DEMO_SECONDS=N                   stop by itself after N seconds of live view
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "demo: $*"; }

say "preparing .venv (installs BTU and its test tools the first time, about 30 s) and MariaDB"
BTU_SETUP_REDIS="$([ -n "${BTU_DEMO_REDIS:-}" ] && echo 1 || echo 0)" bash "$ROOT/scripts/setup_env.sh"
BIN="${BTU_VENV:-$ROOT/.venv}/bin"
DB="${BTU_DEMO_DB:-btu_demo_$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')}"
[[ "$DB" =~ ^[A-Za-z0-9_]{1,64}$ ]] || { echo "demo: BTU_DEMO_DB='$DB' is not a database name ([A-Za-z0-9_], at most 64)" >&2; exit 2; }
sql() { mariadb -uroot -h127.0.0.1 -N -B -e "$1"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/btu-demo-XXXXXX")"
pids=()
redis_pid=""
created_db=""
cleanup() {
  trap - INT TERM EXIT
  echo
  if [ ${#pids[@]} -eq 0 ] && [ -z "$redis_pid" ]; then
    rm -rf "$WORK"  # refused before it started anything: nothing to look at
  elif [ ${#pids[@]} -gt 0 ]; then
    say "stopping (daemon log: $WORK/daemon.log, worker log: $WORK/worker.log)"
  fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    say "stopped its redis-server (pid $redis_pid)"
  elif [ -n "${BTU_DEMO_REDIS:-}" ]; then
    say "its keys (btu:*, rq:*) stay in BTU_DEMO_REDIS=$BTU_DEMO_REDIS"
  fi
  if [ -n "$created_db" ]; then
    if [ "${BTU_DEMO_KEEP_DB:-0}" = 1 ]; then
      say "kept database $created_db (BTU_DEMO_KEEP_DB=1; drop it with: mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE $created_db')"
    else
      sql "DROP DATABASE IF EXISTS \`$created_db\`" && say "dropped database $created_db"
    fi
  fi
}
trap cleanup INT TERM EXIT

if [ -n "${BTU_DEMO_REDIS:-}" ]; then
  REDIS_URL="$BTU_DEMO_REDIS"
  keys="$(redis-cli -u "$REDIS_URL" dbsize 2>&1)" || { echo "demo: cannot reach BTU_DEMO_REDIS=$REDIS_URL: $keys" >&2; exit 4; }
  if [ "$keys" != 0 ]; then
    echo "demo: BTU_DEMO_REDIS=$REDIS_URL holds $keys keys the demo did not create; it erases nothing:" \
      "point BTU_DEMO_REDIS at an empty database, or unset it and the demo starts its own redis-server" >&2
    exit 1
  fi
  say "Redis: $REDIS_URL (BTU_DEMO_REDIS, empty; the demo's keys stay there afterwards)"
else
  port="$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
    --logfile "$WORK/redis.log" --daemonize no &
  redis_pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "demo: its redis-server did not start (log: $WORK/redis.log)" >&2; exit 1; }
  REDIS_URL="redis://127.0.0.1:$port/0"
  say "Redis: its own redis-server at $REDIS_URL (pid $redis_pid, stopped at the end)"
fi

if [ -n "$(sql "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$DB'")" ]; then
  echo "demo: MariaDB database $DB exists already; the demo makes its own: set BTU_DEMO_DB to a new name" >&2
  exit 1
fi
say "MariaDB: database $DB on 127.0.0.1:3306 (created now, dropped at the end unless BTU_DEMO_KEEP_DB=1)"
created_db="$DB"
"$BIN/btu-scheduler" init-db --db-name "$DB" --demo

cat > "$WORK/btu.toml" <<TOML
job_mode = "plain"
redis_url = "$REDIS_URL"
socket_path = "$WORK/btu.sock"
full_refresh_interval = 60
log_level = "INFO"

[sites."demo.localhost"]
db_name = "$DB"
db_user = "root"
db_host = "127.0.0.1"
TOML

say "starting the daemon and an rq worker (files in $WORK)"
"$BIN/btu-scheduler" run --config "$WORK/btu.toml" > "$WORK/daemon.log" 2>&1 &
pids+=($!)
(cd "$ROOT" && exec "$BIN/rq" worker -u "$REDIS_URL" default > "$WORK/worker.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 50); do "$BIN/btu-scheduler" ping --socket "$WORK/btu.sock" >/dev/null 2>&1 && break; sleep 0.2; done
"$BIN/btu-scheduler" status --socket "$WORK/btu.sock" || true
echo
say "live view of runs (Ctrl-C to stop); set BTU_DEMO_SECONDS to stop by itself"
"$BIN/btu-scheduler" watch --config "$WORK/btu.toml" --seconds "${BTU_DEMO_SECONDS:-0}" || true
