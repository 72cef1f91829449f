#!/usr/bin/env bash
# The main job: the daemon on a demo set of schedules firing every few seconds, a plain rq
# worker running them, and a live view of the runs. Ctrl-C stops everything cleanly.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
BIN="${BTU_VENV:-$ROOT/.venv}/bin"
WORK="$(mktemp -d /tmp/btu-demo-XXXXXX)"
DB="${BTU_DEMO_DB:-btu_demo}"
REDIS_URL="${BTU_DEMO_REDIS:-redis://127.0.0.1:6379/13}"

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

"$BIN/btu-scheduler" init-db --db-name "$DB" --demo
redis-cli -u "$REDIS_URL" flushdb >/dev/null

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping (daemon log: $WORK/daemon.log, worker log: $WORK/worker.log)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup INT TERM EXIT

"$BIN/btu-scheduler" run --config "$WORK/btu.toml" > "$WORK/daemon.log" 2>&1 &
pids+=($!)
(cd "$ROOT" && exec "$BIN/rq" worker -u "$REDIS_URL" default > "$WORK/worker.log" 2>&1) &
pids+=($!)
for _ in $(seq 1 50); do "$BIN/btu-scheduler" ping --socket "$WORK/btu.sock" >/dev/null 2>&1 && break; sleep 0.2; done
"$BIN/btu-scheduler" status --socket "$WORK/btu.sock" || true
echo
echo "demo: live view of runs (Ctrl-C to stop); set BTU_DEMO_SECONDS to stop by itself"
"$BIN/btu-scheduler" watch --config "$WORK/btu.toml" --seconds "${BTU_DEMO_SECONDS:-0}" || true
