"""Schedules coming and going, restarts, misfires and a clean stop, on the real daemon."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import redis
from rq.job import Job

from btu import __version__
from btu.contracts.redis_keys import KEYS
from btu.scheduler_daemon.jobs import job_id_for

from .conftest import SITE
from .services import REPO, wait_for

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"


def next_runs(client: redis.Redis) -> dict[str, float]:
	return {k.decode(): v for k, v in client.zrange(KEYS.next_runs(SITE), 0, -1, withscores=True)}


def enqueued_fire_times(client: redis.Redis, schedule: str, queue: str = "default") -> list[int]:
	"""Fire times of the queued jobs of one schedule (no worker runs in these tests)."""
	ids = [i.decode() for i in client.lrange(f"rq:queue:{queue}", 0, -1)]
	jobs = [j for j in Job.fetch_many(ids, connection=client) if j is not None]
	return sorted(j.meta["btu_fire_time"] for j in jobs if j.meta.get("btu_schedule") == schedule)


def test_disable_and_delete_stop_the_runs(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	site_db.add_schedule("TS-000002", "BTU-00001", "* * * * * *")
	daemon = start_daemon()
	wait_for(lambda: len(enqueued_fire_times(redis_client, "TS-000001")) >= 2, what="runs of TS-000001")

	site_db.update_schedule("TS-000001", enabled=0)
	assert daemon.request("cancel_task_schedule", "TS-000001", SITE).ok
	site_db.delete_schedule("TS-000002")
	assert daemon.request("create_task_schedule", "TS-000002", SITE).ok  # row gone -> removed
	wait_for(lambda: not next_runs(redis_client), what="both schedules out of Redis")
	counts = (
		len(enqueued_fire_times(redis_client, "TS-000001")),
		len(enqueued_fire_times(redis_client, "TS-000002")),
	)
	time.sleep(2.5)
	assert (
		len(enqueued_fire_times(redis_client, "TS-000001")),
		len(enqueued_fire_times(redis_client, "TS-000002")),
	) == counts
	assert "event=schedule_removed" in daemon.output()


def test_full_refresh_removes_stale_entries_and_reports_broken_rows(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_task("BTU-00002", RECORD, docstatus=2)
	site_db.add_schedule("TS-000001", "BTU-00001", "0 0 * * *")
	site_db.add_schedule("TS-000002", "BTU-00002", "0 0 * * *")
	site_db.add_schedule("TS-000003", "BTU-00001", "not a cron")
	site_db.add_schedule("TS-000004", "BTU-00001", "0 0 * * *", timezone="Mars/Base")
	site_db.add_schedule("TS-000005", "BTU-00001", "0 0 * * *", overrides="{broken")
	# entries left behind by schedules deleted while the daemon was away
	redis_client.zadd(KEYS.next_runs(SITE), {"TS-GONE": time.time() + 3600})
	redis_client.hset(KEYS.specs(SITE), "TS-GONE", "{}")
	daemon = start_daemon()
	wait_for(lambda: set(next_runs(redis_client)) == {"TS-000001"}, what="only the valid schedule in Redis")
	errors = {k.decode(): v.decode() for k, v in redis_client.hgetall(KEYS.errors(SITE)).items()}
	assert "cancelled" in errors["TS-000002"]
	assert "'not a cron' has 3 fields" in errors["TS-000003"]
	assert "Unknown time zone 'Mars/Base'" in errors["TS-000004"]
	assert "argument_overrides: invalid JSON at line 1, column 2" in errors["TS-000005"]
	output = daemon.output()
	for name in ("TS-000002", "TS-000003", "TS-000004", "TS-000005"):
		assert re.search(rf"event=schedule_invalid site={SITE} schedule={name} ", output), name
	assert not redis_client.hexists(KEYS.specs(SITE), "TS-GONE")


def test_configuration_time_zone_is_the_default_for_schedules(site_db, start_daemon, redis_client):
	site_db.set_config_timezone("Asia/Tokyo")
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000001", "BTU-00001", "0 9 * * *", timezone=None)
	start_daemon()
	fire = wait_for(lambda: next_runs(redis_client).get("TS-000001"), what="schedule in Redis")
	assert time.gmtime(fire).tm_hour == 0  # 09:00 in Tokyo is 00:00 UTC


def test_restart_during_due_window_enqueues_exactly_one_job_per_fire_time(
	site_db, start_daemon, redis_client
):
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	started = time.time()
	for round_ in range(4):
		daemon = start_daemon(f"daemon{round_}")
		time.sleep(1.3)
		daemon.stop(signal.SIGKILL if round_ % 2 else signal.SIGTERM)
	ended = time.time()
	fires = enqueued_fire_times(redis_client, "TS-000001")
	assert len(fires) == len(set(fires)), "a fire time was enqueued twice"
	# After a SIGKILL the next daemon waits for the lease (3 s here); the fire times missed meanwhile
	# collapse into one run (docs/architecture.md "After downtime"), so gaps are bounded by the lease time.
	gaps = [b - a for a, b in zip(fires, fires[1:])]
	assert max(gaps) <= 3 + 2, gaps
	assert len(fires) >= (ended - started) - 2 * 3 - 4
	assert fires[0] >= int(started) and fires[-1] <= ended + 1
	for fire in fires:
		assert redis_client.exists(f"rq:job:{job_id_for(SITE, 'TS-000001', fire)}")


def test_missed_run_within_grace_is_enqueued_once_and_older_ones_are_skipped(
	site_db, start_daemon, daemon_config, redis_client
):
	# Daily rules whose fire times passed while the daemon was down: one 10 minutes ago, one 3 hours
	# ago (a pending time must be one its rule contains: a time no rule has never runs).
	now = int(time.time())
	recent, old = (now - 600) // 60 * 60, (now - 3 * 3600) // 60 * 60

	def daily_at(ts: int) -> str:
		at = time.gmtime(ts)
		return f"{at.tm_min} {at.tm_hour} * * *"

	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000001", "BTU-00001", daily_at(recent))
	site_db.add_schedule("TS-000002", "BTU-00001", daily_at(old))
	daemon = start_daemon()
	wait_for(lambda: len(next_runs(redis_client)) == 2, what="schedules in Redis")
	daemon.stop()
	redis_client.zadd(KEYS.next_runs(SITE), {"TS-000001": recent, "TS-000002": old})
	daemon = start_daemon("again")
	wait_for(lambda: all(v > now for v in next_runs(redis_client).values()), what="both moved to the future")
	assert enqueued_fire_times(redis_client, "TS-000001") == [recent]
	assert enqueued_fire_times(redis_client, "TS-000002") == []
	output = daemon.output()
	assert re.search(r"event=run_skipped_misfire site=\S+ schedule=TS-000002 .*misfire_grace_s=3600", output)


def test_sigterm_stops_cleanly_within_two_seconds(start_daemon, site_db):
	site_db.add_task("BTU-00001", RECORD)
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *")
	daemon = start_daemon()
	time.sleep(1.0)
	started = time.monotonic()
	code = daemon.stop(signal.SIGTERM)
	assert time.monotonic() - started < 2.0
	assert code == 0
	assert not os.path.exists(daemon.socket_path)
	output = daemon.output()
	assert "event=daemon_stopped" in output and "threads_still_busy" not in output
	assert "event=lease_released" in output


def test_version_and_next_runs_cli():
	result = subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", "--version"],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=60,
	)
	assert result.stdout.strip() == f"btu-scheduler, version {__version__}"
	result = subprocess.run(
		[
			sys.executable,
			"-m",
			"btu.scheduler_daemon",
			"next-runs",
			"--cron",
			"30 2 * * *",
			"--tz",
			"America/New_York",
			"--after",
			"2026-03-07T12:00:00Z",
			"--count",
			"2",
		],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=60,
	)
	assert result.stdout.split() == ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]
	result = subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", "next-runs", "--cron", "99 * * * *"],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=60,
	)
	assert result.returncode == 2 and "'99 * * * *' is invalid" in result.stderr
