"""Smoke test of the benchmark: ``bench/run --quick`` at tiny sizes prints the table and writes the JSON.

Runs the real thing (virtualenvs under bench/.venvs, a private redis-server, real MariaDB databases,
the daemon, rq cron and rq-scheduler); asserts rows and exact counts, never timings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SIZES = [5, 12]
EDITS = 4
SYSTEMS = {"BTU daemon", "rq cron", "rq-scheduler"}
PROBE = "limit probe"
PROBE_LAYOUTS = 2  # bench/limit_probe.py: a marker key a run, markers in one hash a fire time
ROWS_PER_SIZE = 4 + PROBE_LAYOUTS


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mariadb_available):
	out = tmp_path_factory.mktemp("bench")
	proc = subprocess.run(
		[
			str(REPO / "bench" / "run"),
			"--quick",
			"--sizes",
			",".join(map(str, SIZES)),
			"--edits",
			str(EDITS),
			"--out",
			str(out),
		],
		capture_output=True,
		text=True,
		timeout=600,
		cwd=str(REPO),
	)
	assert proc.returncode == 0, proc.stderr[-4000:]
	data = json.loads((out / "latest-quick.json").read_text())
	return proc.stdout, data


def test_table_has_one_row_per_system_and_size(quick_run):
	stdout, data = quick_run
	rows = [
		line for line in stdout.splitlines() if line.startswith("| ") and not line.startswith("| scheduler")
	]
	assert len(rows) == len(SIZES) * ROWS_PER_SIZE, stdout
	for n in SIZES:
		assert sum(f"| {n:,} |" in row for row in rows) == ROWS_PER_SIZE, stdout
	assert sum("*limit probe*" in row for row in rows) == len(SIZES) * PROBE_LAYOUTS, stdout
	assert sum("BTU daemon" in row for row in rows) == len(SIZES)
	assert sum("rq cron" in row for row in rows) == len(SIZES)
	assert sum("rq-scheduler" in row and "interval 60 s" in row for row in rows) == len(SIZES)
	assert sum("rq-scheduler" in row and "interval 1 s" in row for row in rows) == len(SIZES)
	results = [r for r in data["results"] if r["system"] != PROBE]
	assert {r["system"] for r in results} == SYSTEMS
	assert sorted((r["system"], r["n"], r.get("interval")) for r in results) == sorted(
		[
			(s, n, i)
			for n in SIZES
			for s, i in (
				("BTU daemon", None),
				("rq cron", None),
				("rq-scheduler", 60.0),
				("rq-scheduler", 1.0),
			)
		]
	)


def test_btu_enqueues_exactly_n_runs_per_fire_time(quick_run):
	_, data = quick_run
	for r in (r for r in data["results"] if r["system"] == "BTU daemon"):
		assert "error" not in r, r.get("error")
		assert r["runs_per_fire"] == [r["n"], r["n"]]
		assert r["missing"] == 0 and r["duplicates"] == 0
		for fire in r["fires"]:
			assert fire["runs"] == fire["schedules"] == r["n"]
		assert r["edits"] == min(EDITS, r["n"] // 2)  # bench edits at most half the schedules
		assert r["lateness_p99_ms"] is not None and r["peak_rss_mb"] > 0
	largest = max(SIZES)
	btu_largest = next(r for r in data["results"] if r["system"] == "BTU daemon" and r["n"] == largest)
	assert btu_largest["edits_during_refresh"] >= 1


def test_peer_counts_add_up(quick_run):
	_, data = quick_run
	for r in (r for r in data["results"] if r["system"] in SYSTEMS - {"BTU daemon"}):
		assert "error" not in r, r.get("error")
		for fire in r["fires"]:
			assert fire["schedules"] + fire["missing"] == r["n"]
			assert fire["runs"] == fire["schedules"] + fire["duplicates"]
		assert r["missing"] == sum(f["missing"] for f in r["fires"])


def test_limit_probe_made_every_run_visible(quick_run):
	_, data = quick_run
	probes = [r for r in data["results"] if r["system"] == PROBE]
	assert sorted((r["n"], r["layout"]) for r in probes) == sorted(
		(n, layout) for n in SIZES for layout in ("key", "hash")
	)
	for r in probes:
		assert "error" not in r, r.get("error")
		# limit_probe raises unless the step made all N runs visible; each repeat kept its figure
		assert len(r["server_s_each"]) == r["repeat"] >= 1
