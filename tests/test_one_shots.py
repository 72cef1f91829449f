"""One-shot runs (Run Frequency "Once", a Run At time) on the real daemon: exactly one run, also across
daemon restarts and a second daemon, cancelled until they fire, in `list` and `status`, and
misfire_grace for those whose time passed while the daemon was away."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import redis
from rq.job import Job

from btu.contracts.redis_keys import KEYS

from .conftest import SITE
from .services import REPO, DaemonProcess, wait_for

RECORD = "tests.run_tasks.record"


def wall(ts: float, zone: str) -> str:
	"""The wall-clock time of ``ts`` in ``zone`` as the Desk stores a Datetime."""
	return datetime.fromtimestamp(int(ts), ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def next_runs(client: redis.Redis) -> dict[str, float]:
	return {k.decode(): v for k, v in client.zrange(KEYS.next_runs(SITE), 0, -1, withscores=True)}


def queued(client: redis.Redis, schedule: str, queue: str = "default") -> list[int]:
	"""Fire times of the queued jobs of one schedule (tests without a worker)."""
	ids = [i.decode() for i in client.lrange(f"rq:queue:{queue}", 0, -1)]
	jobs = [j for j in Job.fetch_many(ids, connection=client) if j is not None]
	return sorted(j.meta["btu_fire_time"] for j in jobs if j.meta.get("btu_schedule") == schedule)


def lines(path: str) -> list[str]:
	return Path(path).read_text().splitlines() if Path(path).exists() else []


def enqueued_lines(output: str, schedule: str) -> list[str]:
	return [
		line
		for line in output.splitlines()
		if "event=run_enqueued" in line and f"schedule={schedule} " in line
	]


def second_daemon(workdir: str, daemon_config, name: str = "b") -> DaemonProcess:
	"""Another daemon of the same bench (same Redis, bench id and database), on its own socket."""
	socket_path = os.path.join(workdir, f"{name}.sock")
	daemon_config(socket_path=socket_path)
	config = os.path.join(workdir, f"{name}.toml")
	shutil.copy(daemon_config.path, config)
	daemon_config()  # the first daemon's file as it was
	return DaemonProcess(workdir, config, socket_path, name).start()


def refreshed(daemon, before: int) -> bool:
	data = daemon.request("status").data
	return data["refresh"]["number"] > before and not data["refresh"]["running"]


def refresh(daemon) -> None:
	before = daemon.request("status").data["refresh"]["number"]
	assert daemon.request("refresh").ok
	wait_for(lambda: refreshed(daemon, before), 20, what="a full refresh")


def test_a_one_shot_runs_exactly_once_across_restarts_and_a_second_daemon(
	site_db, start_daemon, start_worker, daemon_config, workdir, redis_client
):
	out = os.path.join(workdir, "runs.txt")
	zone = "Europe/Paris"
	site_db.add_task("BTU-00001", RECORD, {"path": out, "label": "task"})
	fire = int(time.time()) + 6
	site_db.add_schedule(
		"TS-ONCE1",
		"BTU-00001",
		"",
		zone,
		run_frequency="Once",
		run_at=wall(fire, zone),
		overrides={"label": "once"},
	)
	a = start_daemon("a")
	b = second_daemon(workdir, daemon_config)
	try:
		assert wait_for(lambda: next_runs(redis_client).get("TS-ONCE1"), what="the one-shot planned") == fire
		a.stop(signal.SIGKILL)  # the leader dies before the fire time; the standby or a new one fires it
		a = start_daemon("a2")
		start_worker()
		wait_for(lambda: lines(out), 30, what="the one-shot's run")
		assert "TS-ONCE1" not in next_runs(redis_client)
		assert redis_client.hget(KEYS.fired(SITE, fire), "TS-ONCE1")  # the exactly-once marker
		# After the run its row is still enabled (no Frappe worker disabled it in plain mode): full
		# refreshes on both daemons, a sync request and a change of leader must not arm it again.
		for daemon in (a, b):
			refresh(daemon)
			assert daemon.request("create_task_schedule", "TS-ONCE1", SITE).ok
		leader = a if a.request("ping").data["leader"] else b
		leader.stop(signal.SIGKILL)
		standby = b if leader is a else a
		wait_for(lambda: standby.request("ping").data["leader"], 10, what="the standby to take over")
		refresh(standby)
		time.sleep(2)  # a wrong re-arm would fire at once (its time is past): give it the chance
		assert lines(out) == [lines(out)[0]] and lines(out)[0].endswith(" once")
		assert "TS-ONCE1" not in next_runs(redis_client)
		outputs = a.output() + b.output() + "".join(d.output() for d in (leader, standby))
		enqueued = {line for line in (a.output() + b.output()).splitlines() if "event=run_enqueued" in line}
		assert len([line for line in enqueued if "schedule=TS-ONCE1 " in line]) == 1, outputs
		assert "schedule_removed" in outputs and "one-shot already ran" in outputs
	finally:
		b.stop()


def test_a_cancelled_one_shot_never_runs(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	fire = int(time.time()) + 3
	site_db.add_schedule("TS-ONCE2", "BTU-00001", "", "UTC", run_frequency="Once", run_at=wall(fire, "UTC"))
	daemon = start_daemon()
	wait_for(lambda: "TS-ONCE2" in next_runs(redis_client), what="the one-shot planned")
	site_db.update_schedule("TS-ONCE2", enabled=0)  # what btu.api.cancel and Desk's untick do
	assert daemon.request("cancel_task_schedule", "TS-ONCE2", SITE).ok
	wait_for(lambda: "TS-ONCE2" not in next_runs(redis_client), what="the cancelled one-shot removed")
	wait_for(lambda: time.time() > fire + 2, 10)
	assert queued(redis_client, "TS-ONCE2") == []
	assert not enqueued_lines(daemon.output(), "TS-ONCE2")


def test_a_one_shot_moved_to_another_time_runs_once_at_the_new_time(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	zone = "America/New_York"
	site_db.add_schedule(
		"TS-ONCE3", "BTU-00001", "", zone, run_frequency="Once", run_at=wall(time.time() + 7200, zone)
	)
	daemon = start_daemon()
	wait_for(lambda: "TS-ONCE3" in next_runs(redis_client), what="the one-shot planned")
	fire = int(time.time()) + 2
	site_db.update_schedule("TS-ONCE3", run_at=wall(fire, zone))
	assert daemon.request("create_task_schedule", "TS-ONCE3", SITE).ok
	wait_for(lambda: queued(redis_client, "TS-ONCE3"), 10, what="the run at the new time")
	time.sleep(1.5)
	assert queued(redis_client, "TS-ONCE3") == [fire]
	assert "TS-ONCE3" not in next_runs(redis_client)


def test_one_shots_missed_while_the_daemon_was_away_follow_misfire_grace(site_db, start_daemon, redis_client):
	"""Within misfire_grace: run once, late. Older: skipped, logged once and recorded for the Desk."""
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	now = int(time.time())
	site_db.add_schedule(
		"TS-LATE",
		"BTU-00001",
		"",
		"Asia/Kolkata",
		run_frequency="Once",
		run_at=wall(now - 600, "Asia/Kolkata"),
	)
	site_db.add_schedule(
		"TS-OLD", "BTU-00001", "", "UTC", run_frequency="Once", run_at=wall(now - 3 * 3600, "UTC")
	)
	daemon = start_daemon()
	wait_for(lambda: queued(redis_client, "TS-LATE"), what="the late one-shot enqueued")
	assert queued(redis_client, "TS-LATE") == [now - 600]
	skipped = wait_for(lambda: redis_client.hget(KEYS.skipped(SITE), "TS-OLD"), what="the old one recorded")
	record = json.loads(skipped)[0]
	assert record["fire_time"] == now - 3 * 3600 and record["reason"] == "misfire"
	assert record["late_s"] >= 3 * 3600 and record["misfire_grace_s"] == 3600
	for _ in range(2):  # later refreshes neither run nor log them again
		refresh(daemon)
	assert queued(redis_client, "TS-LATE") == [now - 600]
	assert queued(redis_client, "TS-OLD") == []
	assert set(next_runs(redis_client)) & {"TS-LATE", "TS-OLD"} == set()
	misfires = [line for line in daemon.output().splitlines() if "event=run_skipped_misfire" in line]
	assert len([line for line in misfires if "schedule=TS-OLD " in line]) == 1, misfires
	assert re.search(
		r"schedule=TS-OLD fire_time=\S+ late_s=\S+ misfire_grace_s=3600 one_shot=True", misfires[0]
	)
	assert not [line for line in misfires if "schedule=TS-LATE " in line]
	assert len(json.loads(redis_client.hget(KEYS.skipped(SITE), "TS-OLD"))) == 1


def test_a_pending_one_shot_shows_in_list_and_status(site_db, start_daemon, daemon_config, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	fire = int(time.time()) + 86400
	zone = "Australia/Sydney"
	site_db.add_schedule("TS-ONCE4", "BTU-00001", "", zone, run_frequency="Once", run_at=wall(fire, zone))
	site_db.add_schedule("TS-CRON", "BTU-00001", "0 0 1 1 *", "UTC")
	daemon = start_daemon()
	wait_for(lambda: len(next_runs(redis_client)) == 2, what="both planned")

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

	utc = datetime.fromtimestamp(fire, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
	listed = [line for line in cli("list").splitlines() if "TS-ONCE4" in line]
	assert len(listed) == 1 and utc in listed[0] and "once" in listed[0], listed
	status = [line for line in cli("status").splitlines() if "TS-ONCE4" in line]
	local = datetime.fromtimestamp(fire, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
	assert len(status) == 1 and local in status[0] and utc in status[0] and "(once)" in status[0], status
	runs = json.loads(cli("status", "--json"))["sites"][SITE]["next_runs"]
	once = next(run for run in runs if run["schedule"] == "TS-ONCE4")
	assert once["fire_time"] == fire and once["once"] is True and once["timezone"] == zone
	assert next(run for run in runs if run["schedule"] == "TS-CRON")["once"] is False
	assert daemon.request("status").ok


def test_a_one_shot_without_run_at_is_reported_invalid(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-ONCE5", "BTU-00001", "", "UTC", run_frequency="Once")
	start_daemon()
	error = wait_for(lambda: redis_client.hget(KEYS.errors(SITE), "TS-ONCE5"), what="the error")
	assert b"one-shot (Run Frequency Once) without a Run At time" in error
