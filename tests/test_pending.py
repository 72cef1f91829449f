"""A next run as the daemon confirmed it: its fire time with the rule that produced it (issue 21 item 9).

``btu-scheduler list`` and the status reply must not show an old rule's time as the schedule's next
run, nor a past time as "upcoming", without saying so. Real daemon, MariaDB and Redis."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from btu.contracts.pending import (
	CONFIRMED,
	NOT_PLANNED,
	OVERDUE,
	UNCONFIRMED,
	Pending,
	confirmation,
	timing_of_row,
)
from btu.contracts.runs import wall_time_to_timestamp
from btu.scheduler_daemon.specs import spec_from_row

from .conftest import SITE
from .services import REPO, wait_for
from .test_prepared import row

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"


@pytest.mark.parametrize(
	"changes",
	[
		{"cron_string": "*/2 * * * *"},
		{"cron_string": "0 9 * * 1-5", "cron_timezone": "Europe/Paris"},
		{"cron_string": "30 2 * * *", "cron_timezone": ""},  # the default zone
		{"run_frequency": "Daily", "minute": 5, "hour": 7, "cron_string": ""},
		{"run_frequency": "Once", "run_at": "2027-03-14 02:30:00", "cron_timezone": "America/New_York"},
	],
)
def test_the_timing_of_a_row_is_the_one_the_daemon_stores(changes):
	"""What the Desk compares with ``btu:<site>:timings``: the daemon's own spec's timing."""
	values = row("TS-1", "* * * * *", **changes)
	assert timing_of_row(values, "Asia/Tokyo") == spec_from_row("a", values, "Asia/Tokyo").timing


def test_confirmation_states():
	zone_rule = "*/2 * * * *|UTC"
	now = 1_800_000_000
	assert confirmation(Pending("A", now + 60, zone_rule), zone_rule, now) == CONFIRMED
	assert confirmation(Pending("A", now - 31, zone_rule), zone_rule, now) == OVERDUE
	assert confirmation(Pending("A", now + 60, "* * * * *|UTC"), zone_rule, now) == UNCONFIRMED
	assert confirmation(Pending("A", None, None), zone_rule, now) == NOT_PLANNED
	assert confirmation(None, zone_rule, now) == NOT_PLANNED
	assert confirmation(Pending("A", now - 31, zone_rule), None, now) == OVERDUE  # rule not checked
	once = Pending("O", 1, f"@once {wall_time_to_timestamp('2027-03-14 02:30', 'UTC')}|UTC")
	assert (once.rule, once.zone) == ("once", "UTC")


def test_list_and_status_say_when_a_next_run_is_overdue_or_not_for_the_current_rule(
	site_db, start_daemon, daemon_config, redis_client
):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-000009", "BTU-00001", "* * * * * *")
	daemon = start_daemon()

	def cli(*args: str) -> str:
		result = subprocess.run(
			[sys.executable, "-m", "btu.scheduler_daemon", *args, "--config", daemon_config.path],
			capture_output=True,
			text=True,
			cwd=str(REPO),
			timeout=60,
		)
		assert result.returncode == 0, result.stderr
		return result.stdout

	def listed() -> str:
		lines = [line for line in cli("list").splitlines() if "TS-000009" in line]
		assert len(lines) == 1, lines
		return lines[0]

	def status_run() -> dict:
		runs = daemon.request("status").data["sites"][SITE]["next_runs"]
		return next(run for run in runs if run["schedule"] == "TS-000009")

	wait_for(lambda: daemon.request("status").data["counters"]["runs_enqueued"] >= 1, 20, what="a run")
	run = status_run()
	assert run["timing"] == "* * * * * *|UTC" and run["overdue"] is False, run
	assert listed().endswith("confirmed"), listed()

	# Paused (BTU Configuration): the daemon holds a fire time that passes and is not fired.
	site_db.execute(
		"INSERT INTO `tabSingles` (doctype, field, value) VALUES ('BTU Configuration', 'pause_all_schedules', '1')"
	)
	assert daemon.request("refresh").ok
	wait_for(lambda: daemon.request("status").data["sites"][SITE]["paused"], 10, what="the site paused")
	held = status_run()["fire_time"]
	time.sleep(max(0.0, held + 32 - time.time()))
	assert status_run()["overdue"] is True
	assert "OVERDUE by" in listed() and "daemon not firing?" in listed(), listed()

	# Stopped, then the rule edited: the time Redis holds is the old rule's, and list says so.
	daemon.stop()
	site_db.update_schedule("TS-000009", cron_string="*/2 * * * *")
	line = listed()
	assert "NOT CONFIRMED: planned by * * * * * * (UTC); the schedule now says */2 * * * * (UTC)" in line, (
		line
	)
