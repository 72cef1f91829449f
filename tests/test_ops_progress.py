"""Long work shows progress: init-db and full refreshes over many schedules (bar on a terminal, lines elsewhere)."""

from __future__ import annotations

import math
import os
import pty
import re
import select
import subprocess
import sys
import time

from btu.scheduler_daemon.demo_data import insert_demo_data, insert_load_schedules

from .conftest import SITE
from .services import REPO, wait_for

MANY = 40_000


def cli_env() -> dict[str, str]:
	return {k: v for k, v in os.environ.items() if not k.startswith("BTU_")}


def run_in_pty(args: list[str], timeout: float = 120) -> tuple[int, str]:
	"""Run a command with a terminal as stdout and stderr; returns (exit code, everything it wrote)."""
	master, slave = pty.openpty()
	process = subprocess.Popen(
		args,
		stdin=subprocess.DEVNULL,
		stdout=slave,
		stderr=slave,
		cwd=str(REPO),
		env={**cli_env(), "COLUMNS": "100", "TERM": "xterm"},
	)
	os.close(slave)
	chunks = []
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		ready, _, _ = select.select([master], [], [], 0.2)
		if ready:
			try:
				data = os.read(master, 65536)
			except OSError:  # the child closed the terminal
				break
			if not data:
				break
			chunks.append(data)
		elif process.poll() is not None:
			break
	os.close(master)
	return process.wait(10), b"".join(chunks).decode(errors="replace")


def test_init_db_shows_a_progress_bar_on_a_terminal_and_lines_elsewhere(site_db):
	args = [
		"--db-name",
		site_db.name,
		"--db-host",
		site_db.args["host"],
		"--db-port",
		str(site_db.args["port"]),
		"--db-user",
		site_db.args["user"],
	]
	code, out = run_in_pty(
		[sys.executable, "-m", "btu.scheduler_daemon", "init-db", *args, "--demo-schedules", str(MANY)]
	)
	assert code == 0, out
	assert re.search(rf"init-db: schedules\s+\[#+\]\s+{MANY}/{MANY}\s+100%", out), out[-500:]
	assert f"load schedules: {MANY} (TS-L0000001 ... TS-L{MANY:07d})" in out

	piped = subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", "init-db", *args, "--demo-schedules", str(MANY)],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=cli_env(),
		timeout=120,
	)
	assert piped.returncode == 0, piped.stderr
	assert "[#" not in piped.stderr  # no bar when not on a terminal
	assert re.search(rf"^init-db: schedules: {MANY}/{MANY} \(100%\) in [\d.]+ s$", piped.stderr, re.M), (
		piped.stderr
	)
	lines = [l for l in piped.stderr.splitlines() if l.startswith("init-db: schedules:")]
	# At most a line a second plus the last one, counted against the run's own reported duration
	# (a bound in seconds of our own would be a time asserted in disguise).
	took = float(re.search(r"in ([\d.]+) s$", lines[-1]).group(1))
	assert len(lines) <= math.floor(took) + 2, lines
	rows = site_db.connect().cursor()
	rows.execute("SELECT COUNT(*) FROM `tabBTU Task Schedule` WHERE name LIKE 'TS-L%%'")
	assert rows.fetchone()[0] == MANY  # idempotent: the second run replaced the same rows


def test_daemon_refresh_logs_progress_and_cli_refresh_follows_it(site_db, start_daemon, daemon_config):
	insert_demo_data(site_db.args, site_db.name)
	insert_load_schedules(site_db.args, site_db.name, MANY)
	total = MANY + 5
	daemon_config(log_level="INFO")
	daemon = start_daemon()
	wait_for(
		lambda: daemon.request("status").data["refresh"]["last_completed_at"], 120, what="first full refresh"
	)
	state = daemon.request("status").data["refresh"]
	assert state["running"] is False and state["last_schedules"] == total and state["total"] == total
	assert daemon.request("status").data["sites"][SITE]["schedules"] == total - 1  # TS-000005 is disabled

	# A second refresh, asked for by the CLI and followed to its end (not a terminal: a line a second)
	result = subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", "refresh", "--socket", daemon_config.socket_path],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=cli_env(),
		timeout=180,
	)
	assert result.returncode == 0, result.stderr
	assert result.stdout.startswith("full refresh of all sites started\n")
	assert re.search(
		rf"^refresh of {re.escape(SITE)} done: {total} schedules in [\d.]+ s$", result.stdout, re.M
	)
	assert re.search(rf"^refresh: {total}/{total} \(100%\) in [\d.]+ s$", result.stderr, re.M), result.stderr

	# On a terminal: a progress bar
	code, out = run_in_pty(
		[sys.executable, "-m", "btu.scheduler_daemon", "refresh", "--socket", daemon_config.socket_path],
		timeout=180,
	)
	assert code == 0, out
	assert re.search(rf"refresh\s+\[#+\]\s+{total}/{total}\s+100%", out), out[-500:]
	assert f"refresh of {SITE} done: {total} schedules" in out

	output = daemon.output()
	assert (
		re.search(
			rf"event=refresh_completed sites={re.escape(SITE)} schedules={total} seconds=[\d.]+", output
		)
		or "event=refresh_completed" not in output
	)  # DEBUG when quicker than a second
	progress = re.findall(
		r"^(\S+) INFO btu.refiller event=refresh_progress sites=(\S+) done=(\d+) total=(\d+) "
		r"percent=([\d.]+) elapsed_s=([\d.]+)$",
		output,
		re.M,
	)
	seconds = daemon.request("status").data["refresh"]["last_seconds"]
	if seconds >= 2.0:  # a refresh this long logs a line per second while it runs
		assert progress, output[-2000:]
		for _stamp, site, done, total_logged, _percent, elapsed in progress:
			assert site == SITE and int(total_logged) == total and 0 <= int(done) <= total
			assert float(elapsed) >= 1.0
		assert len(progress) <= 3 * (seconds + 2) * 2  # three refreshes, at most about one line a second each


def test_refresh_no_wait_and_refresh_without_daemon(start_daemon, daemon_config, workdir):
	daemon = start_daemon()
	result = subprocess.run(
		[
			sys.executable,
			"-m",
			"btu.scheduler_daemon",
			"refresh",
			"--no-wait",
			"--socket",
			daemon_config.socket_path,
		],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=cli_env(),
		timeout=60,
	)
	assert result.returncode == 0 and result.stdout == "full refresh of all sites started\n"
	assert daemon.request("ping").ok
	missing = os.path.join(workdir, "none.sock")
	result = subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", "refresh", "--socket", missing],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=cli_env(),
		timeout=60,
	)
	assert result.returncode == 1 and f"not running at {missing}" in result.stderr
