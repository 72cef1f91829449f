"""The command line fails with one line naming what failed and where, and a documented exit code
(README, "Command line"), never a traceback: Redis down (a real port where nothing listens), a
site's database down, bad option values; ``enqueue-now`` refuses a disabled schedule and says when
this second's run was already enqueued."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from rq import Queue

from btu.contracts.redis_keys import KEYS

from .conftest import SITE
from .services import REPO, write_toml

RECORD = "tests.run_tasks.record"
EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 4


def cli(*args: str) -> subprocess.CompletedProcess:
	environment = {k: v for k, v in os.environ.items() if not k.startswith("BTU_")}
	return subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", *args],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env=environment,
		timeout=60,
	)


def one_line_failure(result: subprocess.CompletedProcess, code: int) -> str:
	"""The single stderr line of a failed command (checked: no traceback, the exit code)."""
	assert "Traceback" not in result.stderr, result.stderr
	lines = result.stderr.strip().splitlines()
	assert len(lines) == 1, result.stderr
	assert result.returncode == code, (result.returncode, result.stderr)
	return lines[0]


@pytest.fixture
def dead_port():
	"""A TCP port bound but never listening: every connection to it is refused, and no other
	process can take it during the test."""
	holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
	holder.bind(("127.0.0.1", 0))
	yield holder.getsockname()[1]
	holder.close()


@pytest.fixture
def config_with_dead_redis(daemon_config, dead_port):
	daemon_config(redis_url=f"redis://127.0.0.1:{dead_port}/0")
	return daemon_config.path, f"redis://127.0.0.1:{dead_port}/0"


@pytest.mark.parametrize(
	"command",
	[("list",), ("watch", "--seconds", "2"), ("enqueue-now", "TS-ERR1")],
	ids=["list", "watch", "enqueue-now"],
)
def test_redis_down_is_one_line_naming_the_url_and_exit_4(site_db, config_with_dead_redis, command):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-ERR1", "BTU-00001", "0 0 1 1 *", "UTC")
	path, url = config_with_dead_redis
	line = one_line_failure(cli(*command, "--config", path), EXIT_UNREACHABLE)
	assert line == f"btu-scheduler: cannot reach Redis at {url}: Connection refused"


def test_a_database_down_is_one_line_naming_the_site_and_exit_4(workdir, redis_url, dead_port):
	path = write_toml(
		os.path.join(workdir, "btu.toml"),
		{"job_mode": "plain", "redis_url": redis_url, "socket_path": os.path.join(workdir, "btu.sock")},
		{SITE: {"db_name": "btu_nowhere", "db_user": "root", "db_host": "127.0.0.1", "db_port": dead_port}},
	)
	line = one_line_failure(cli("enqueue-now", "TS-1", "--config", path), EXIT_UNREACHABLE)
	assert line.startswith(
		f"btu-scheduler: cannot reach the database of site {SITE} (btu_nowhere@127.0.0.1:{dead_port}): "
	)
	# list carries on without the database (the site's zone falls back to the default).
	result = cli("list", "--config", path)
	assert result.returncode == 0 and f"site {SITE} (0 schedules, times in UTC)" in result.stdout, result


def test_enqueue_now_refuses_a_disabled_schedule_unless_forced(site_db, daemon_config, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-OFF", "BTU-00001", "0 0 1 1 *", "UTC", enabled=0)
	queue = Queue("default", connection=redis_client)
	line = one_line_failure(cli("enqueue-now", "TS-OFF", "--config", daemon_config.path), EXIT_FAILED)
	assert line == (
		f"btu-scheduler: schedule TS-OFF of site {SITE} is disabled; enable it in Desk, "
		"or pass --force to run it once anyway"
	)
	assert queue.count == 0
	result = cli("enqueue-now", "TS-OFF", "--force", "--config", daemon_config.path)
	assert result.returncode == 0 and result.stdout.startswith("enqueued btu-TS-OFF-"), result
	assert [job_id.startswith("btu-TS-OFF-") for job_id in queue.job_ids] == [True]


def test_enqueue_now_exits_1_when_this_seconds_run_was_already_enqueued(site_db, daemon_config, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-TWICE", "BTU-00001", "0 0 1 1 *", "UTC")
	# The run of every second the command may start in is already marked, as the scheduler marks it.
	now = int(time.time())
	for second in range(now, now + 30):
		redis_client.hset(KEYS.fired(SITE, second), "TS-TWICE", f"btu-earlier-{second}")
		redis_client.expire(KEYS.fired(SITE, second), 120)
	line = one_line_failure(cli("enqueue-now", "TS-TWICE", "--config", daemon_config.path), EXIT_FAILED)
	assert line.startswith(
		"btu-scheduler: schedule TS-TWICE already has a run for this second (btu-TS-TWICE-"
	)
	assert line.endswith("); not enqueued again (try again in a second)")
	assert Queue("default", connection=redis_client).count == 0


def test_next_runs_reads_a_zone_in_any_case():
	for spelling in ("utc", "Utc", "UTC"):
		result = cli("next-runs", "--cron", "0 12 * * *", "--tz", spelling, "--after", "2026-01-01T00:00:00Z")
		assert result.returncode == 0 and result.stdout.split()[0] == "2026-01-01T12:00:00Z", result
	result = cli(
		"next-runs", "--cron", "0 12 * * *", "--tz", "europe/paris", "--after", "2026-01-01T00:00:00Z"
	)
	assert result.returncode == 0 and result.stdout.split()[0] == "2026-01-01T11:00:00Z", result
	line = one_line_failure(cli("next-runs", "--cron", "@daily", "--tz", "europe/nowhere"), EXIT_USAGE)
	assert line.startswith("btu-scheduler: Unknown time zone 'europe/nowhere'; expected an IANA name")


def test_next_runs_after_that_is_no_date_gives_an_example():
	line = one_line_failure(cli("next-runs", "--cron", "@daily", "--after", "yesterday"), EXIT_USAGE)
	assert line.startswith("btu-scheduler: --after 'yesterday' is not an ISO-8601 date-time; expected")
	assert "2026-12-24T14:00:00Z" in line


def test_status_of_a_daemon_that_is_down_says_how_to_start_it_for_the_set_up(daemon_config, tmp_path):
	plain = cli("status", "--config", daemon_config.path)
	assert plain.returncode == 1 and "daemon    DOWN" in plain.stdout
	assert f"start it  btu-scheduler run --config {daemon_config.path} " in plain.stdout, plain.stdout
	assert "bench start" not in plain.stdout
	neither = cli("status", "--socket", str(tmp_path / "none.sock"))
	assert neither.returncode == 1
	assert "start it  in a bench: bench start" in neither.stdout, neither.stdout
	assert "outside a bench: btu-scheduler run --config <your btu.toml>" in neither.stdout
