#!/usr/bin/env bash
# Run the whole test suite against real MariaDB, Redis and rq workers.
#   bash scripts/test.sh              # everything (unit, daemon end-to-end, faults short mode, bench smoke)
#   bash scripts/test.sh tests/test_socket.py -k slow   # any pytest arguments
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
# -rfEs: every failure and error, and every skipped test's reason (what to set to run it), in the closing summary.
exec "${BTU_VENV:-$ROOT/.venv}/bin/python" -m pytest -q -rfEs -p no:cacheprovider "${@:-tests}"
