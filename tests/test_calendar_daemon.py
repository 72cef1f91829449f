"""Business calendars and jitter in the real daemon: holiday lists read from MariaDB (BTU's own and
ERPNext's), a list that cannot be read refused by name while other schedules carry on, a list edit
replanning the schedule, and jittered runs enqueued exactly once at their computed times by a real
rq worker's queue."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rq.job import Job

from btu.contracts import jitter
from btu.contracts.calendars import BusinessCalendar
from btu.contracts.fire_times import FireTimes
from btu.contracts.redis_keys import KEYS
from btu.scheduler_daemon.config import SiteConfig
from btu.scheduler_daemon.sql import SiteDatabase

from .conftest import SITE
from .services import wait_for

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"
UTC = timezone.utc


def add_holiday_list(site_db, name: str, days: list[str]) -> None:
	site_db.execute(
		"INSERT INTO `tabBTU Holiday List` (name, creation, modified, owner, modified_by) "
		"VALUES (%s, NOW(6), NOW(6), 'Administrator', 'Administrator')",
		(name,),
	)
	set_holidays(site_db, name, days)


def set_holidays(site_db, name: str, days: list[str]) -> None:
	site_db.execute("DELETE FROM `tabBTU Holiday` WHERE parent = %s", (name,))
	for index, day in enumerate(days, start=1):
		site_db.execute(
			"INSERT INTO `tabBTU Holiday` (name, creation, modified, owner, modified_by, parent, parentfield,"
			" parenttype, idx, holiday_date) VALUES (%s, NOW(6), NOW(6), 'a', 'a', %s, 'holidays',"
			" 'BTU Holiday List', %s, %s)",
			(f"{name}-{index}", name, index, day),
		)


def database_of(site_db) -> SiteDatabase:
	args = site_db.args
	return SiteDatabase(
		SiteConfig(
			name=SITE,
			db_name=site_db.name,
			db_user=args["user"],
			db_password=args["password"],
			db_host=args["host"],
			db_port=args["port"],
		)
	)


def utc_today() -> str:
	return datetime.now(UTC).date().isoformat()


def next_run(redis_client, name: str) -> float | None:
	return redis_client.zscore(KEYS.next_runs(SITE), name)


def test_holiday_lists_are_read_with_their_schedules_and_a_missing_one_is_named(site_db):
	site_db.add_task("BTU-00001", RECORD)
	add_holiday_list(site_db, "Office <script>x</script>", ["2026-12-25", "2027-01-01", "1999-01-01"])
	site_db.add_schedule(
		"TS-1", "BTU-00001", "0 9 * * *", holiday_list="Office <script>x</script>", on_holiday="Skip"
	)
	site_db.add_schedule("TS-2", "BTU-00001", "0 9 * * *", holiday_list="Gone")
	site_db.add_schedule(
		"TS-3", "BTU-00001", "0 9 * * *", holiday_list_doctype="Holiday List", holiday_list="UK"
	)
	site_db.add_schedule("TS-4", "BTU-00001", "0 9 * * *")
	database = database_of(site_db)
	try:
		rows = database.fetch_schedules(["TS-1", "TS-2", "TS-3", "TS-4"])
		streamed = {row["name"]: row for row in database.iter_all_schedules()}
	finally:
		database.close()
	for found in (rows, streamed):
		# Dates long past are not carried (calendars.date_window); the others are, as ISO dates.
		assert found["TS-1"]["holidays"] == ("2026-12-25", "2027-01-01")
		assert found["TS-2"]["holidays_error"] == "its BTU Holiday List 'Gone' does not exist"
		assert found["TS-3"]["holidays_error"] == (
			"this site has no Holiday List DocType (it comes with ERPNext or HRMS); use a BTU Holiday List"
		)
		assert "holidays" not in found["TS-4"] and "holidays_error" not in found["TS-4"]


def test_a_holiday_today_moves_the_run_and_an_edit_of_the_list_brings_it_back(
	site_db, start_daemon, redis_client, start_worker, workdir
):
	out = os.path.join(workdir, "runs.txt")
	site_db.add_task("BTU-00001", RECORD, {"path": out, "label": "ran"})
	today = utc_today()
	add_holiday_list(site_db, "Today", [today])
	site_db.add_schedule("TS-HOLIDAY", "BTU-00001", "* * * * * *", holiday_list="Today", on_holiday="Skip")
	site_db.add_schedule(
		"TS-BROKEN", "BTU-00001", "* * * * * *", holiday_list_doctype="Holiday List", holiday_list="UK"
	)
	site_db.add_schedule("TS-PLAIN", "BTU-00001", "0 0 1 1 *")
	start_worker()
	daemon = start_daemon()
	tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)
	wait_for(lambda: next_run(redis_client, "TS-HOLIDAY") is not None, what="the holiday schedule planned")
	if utc_today() == today:  # (not across midnight UTC)
		assert next_run(redis_client, "TS-HOLIDAY") == tomorrow.timestamp()
	errors = wait_for(lambda: redis_client.hgetall(KEYS.errors(SITE)), what="the broken schedule's error")
	assert b"no Holiday List DocType" in errors[b"TS-BROKEN"]
	assert next_run(redis_client, "TS-PLAIN") is not None  # the others carry on
	assert "event=schedule_invalid" in daemon.output() and "schedule=TS-BROKEN" in daemon.output()

	# The holiday is taken off the list; the daemon is told (BTU Holiday List's on_update does so):
	# the schedule runs again today, every second.
	set_holidays(site_db, "Today", [])
	site_db.update_schedule("TS-HOLIDAY", enabled=1)  # (its row is read again; modified only)
	assert daemon.request("create_task_schedule", "TS-HOLIDAY", SITE).ok
	wait_for(lambda: (next_run(redis_client, "TS-HOLIDAY") or 0) < time.time() + 5, what="today's runs back")
	wait_for(lambda: Path(out).exists() and len(Path(out).read_text().splitlines()) >= 2, 20, what="runs")


def test_jittered_runs_are_enqueued_once_each_at_their_computed_times(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-JITTER", "BTU-00001", "*/4 * * * * *", jitter_seconds=3, queue="jitter")
	start_daemon()
	key = jitter.identity(SITE, "TS-JITTER")
	times = FireTimes("*/4 * * * * *", "UTC", jitter=3, key=key)

	def fire_times() -> list[int]:
		ids = [i.decode() for i in redis_client.lrange("rq:queue:jitter", 0, -1)]
		return [int(job.meta["btu_fire_time"]) for job in Job.fetch_many(ids, connection=redis_client) if job]

	runs = wait_for(lambda: (found := fire_times()) and len(found) >= 8 and found, 60, what="8 runs")
	assert not [t for t, n in Counter(runs).items() if n > 1], "a fire time enqueued twice"
	for fire_ts in runs:
		rule_ts = times.rule_time(fire_ts)
		assert rule_ts % 4 == 0 and times.next_after(fire_ts - 1) == fire_ts, fire_ts
		assert 0 <= fire_ts - rule_ts <= 3
	assert any(fire_ts % 4 for fire_ts in runs), "no run was delayed"
	# Consecutive runs: none of the rule's fire times between the first and the last is missing.
	rule_times = sorted(times.rule_time(t) for t in runs)
	assert rule_times == list(range(rule_times[0], rule_times[-1] + 1, 4))


def test_next_runs_of_a_saved_schedule_are_the_daemons(site_db, daemon_config):
	import subprocess
	import sys

	site_db.add_task("BTU-00001", RECORD)
	add_holiday_list(site_db, "Christmas", ["2026-12-25"])
	site_db.add_schedule(
		"TS-CAL", "BTU-00001", "0 9 * * *", "America/New_York", holiday_list="Christmas", jitter_seconds=60
	)

	def next_runs(*args: str) -> subprocess.CompletedProcess:
		return subprocess.run(
			[
				sys.executable,
				"-m",
				"btu.scheduler_daemon",
				"next-runs",
				"--config",
				daemon_config.path,
				*args,
			],
			capture_output=True,
			text=True,
			timeout=60,
		)

	done = next_runs("--schedule", "TS-CAL", "--after", "2026-12-24T12:00:00Z", "--count", "2")
	assert done.returncode == 0, done.stderr
	times = FireTimes(
		"0 9 * * *",
		"America/New_York",
		BusinessCalendar(("2026-12-25",), "Skip"),
		jitter=60,
		key=jitter.identity(SITE, "TS-CAL"),
	)
	first = times.next_after(datetime(2026, 12, 24, 12, tzinfo=UTC).timestamp())
	expected = [
		datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
		for ts in (first, times.next_after(first))
	]
	assert done.stdout.split() == expected
	assert expected[0].startswith("2026-12-24T14:0") and expected[1].startswith(
		"2026-12-26T14:0"
	)  # 25th skipped
	missing = next_runs("--schedule", "TS-NONE")
	assert missing.returncode == 1 and "schedule 'TS-NONE' not found" in missing.stderr
	both = next_runs("--schedule", "TS-CAL", "--cron", "* * * * *")
	assert both.returncode == 2 and "either --cron or --schedule" in both.stderr
