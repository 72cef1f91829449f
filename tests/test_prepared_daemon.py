"""Prepared runs on the real daemon: runs are made visible by the prepared step, and a run prepared for
a schedule that is then edited, disabled or deleted before its fire time never runs in its old form."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis
from rq.job import Job

from btu.contracts.redis_keys import KEYS
from btu.scheduler_daemon.jobs import job_id_for

from .conftest import SITE
from .services import wait_for

RECORD = "tests.run_tasks.record"


def at_second(fire: int) -> str:
	"""A 6-field rule firing daily at ``fire``'s second of the day (UTC)."""
	t = time.gmtime(fire)
	return f"{t.tm_sec} {t.tm_min} {t.tm_hour} * * *"


def queued_jobs(client: redis.Redis) -> list[Job]:
	ids = [i.decode() for i in client.lrange("rq:queue:default", 0, -1)]
	return [j for j in Job.fetch_many(ids, connection=client) if j is not None]


def prepared_for(client: redis.Redis, name: str, fire: int) -> bool:
	entry = client.hget(KEYS.prepared(SITE), name)
	return bool(entry) and entry.decode().split(" ", 1)[0] == job_id_for(SITE, name, fire)


def _text(value) -> str | None:
	return value.decode() if isinstance(value, bytes) else value


def counters(daemon) -> dict:
	return daemon.request("status").data["counters"]


def test_runs_are_made_visible_by_the_prepared_step_and_run_by_a_worker(
	site_db, daemon_config, start_daemon, start_worker, workdir, redis_client
):
	out = os.path.join(workdir, "runs.txt")
	site_db.add_task("BTU-00001", RECORD, {"path": out})
	for i in range(3):
		site_db.add_schedule(f"TS-{i}", "BTU-00001", "*/2 * * * * *", overrides={"label": f"TS-{i}"})
	daemon_config(log_level="INFO")
	daemon = start_daemon()
	wait_for(lambda: counters(daemon)["runs_prepared"] >= 9, 40, what="runs made visible by prepared steps")
	status = daemon.request("status").data
	assert status["prepare"]["active"] is True and status["prepare"]["recent"]
	start_worker()
	jobs = queued_jobs(redis_client)
	fires = [(j.meta["btu_schedule"], j.meta["btu_fire_time"]) for j in jobs]
	assert len(fires) == len(set(fires))  # each (schedule, fire time) once
	wait_for(
		lambda: Path(out).exists() and len(Path(out).read_text().splitlines()) >= 9, 40, what="runs executed"
	)
	lines = Path(out).read_text().splitlines()
	assert {line.split(" ", 1)[1] for line in lines} == {"TS-0", "TS-1", "TS-2"}
	assert "event=run_enqueued" in daemon.output()


def test_a_run_prepared_then_edited_disabled_deleted_or_moved_never_runs_in_its_old_form(
	site_db, daemon_config, start_daemon, redis_client
):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	fire = int(time.time()) + 12
	names = ["TS-KEEP", "TS-EDIT", "TS-OFF", "TS-GONE", "TS-MOVED"]
	for name in names:
		site_db.add_schedule(name, "BTU-00001", at_second(fire), overrides={"label": "old"})
	daemon_config(prepare_ahead=6)
	daemon = start_daemon()
	wait_for(
		lambda: all(prepared_for(redis_client, n, fire) for n in names), 20, what="the five runs prepared"
	)
	assert time.time() < fire - 1, "prepared too late for this test to mean anything"
	old_job = Job.fetch(job_id_for(SITE, "TS-EDIT", fire), connection=redis_client)
	assert old_job.get_status(refresh=False) == "scheduled" and old_job.kwargs["label"] == "old"

	site_db.update_schedule("TS-EDIT", argument_overrides='{"label": "new"}')
	site_db.update_schedule("TS-OFF", enabled=0)
	site_db.delete_schedule("TS-GONE")
	site_db.update_schedule("TS-MOVED", cron_string=at_second(fire + 3))
	for name in ("TS-EDIT", "TS-OFF", "TS-GONE", "TS-MOVED"):
		assert daemon.request("create_task_schedule", name, SITE).ok

	# The changes reach Redis before the fire time and drop the prepared runs with them; the edited
	# schedule's run may be prepared again, from its new spec.
	def edited_or_dropped() -> bool:
		if any(prepared_for(redis_client, n, fire) for n in ("TS-OFF", "TS-GONE", "TS-MOVED")):
			return False
		job = Job.fetch_many([job_id_for(SITE, "TS-EDIT", fire)], connection=redis_client)[0]
		return job is None or job.kwargs["label"] == "new"

	wait_for(edited_or_dropped, 5, what="the changed schedules' prepared runs dropped")
	for name in ("TS-OFF", "TS-GONE", "TS-MOVED"):
		assert not redis_client.exists(Job.key_for(job_id_for(SITE, name, fire))), name

	wait_for(lambda: time.time() > fire + 5, 30, what="both fire times past")
	jobs = queued_jobs(redis_client)
	runs = sorted((j.meta["btu_schedule"], j.meta["btu_fire_time"], j.kwargs["label"]) for j in jobs)
	assert runs == [
		("TS-EDIT", fire, "new"),  # prepared again, or built at its fire time, from the new spec
		("TS-KEEP", fire, "old"),  # made visible as prepared
		("TS-MOVED", fire + 3, "old"),  # at its new time only
	]
	assert all(j.get_status(refresh=False) == "queued" for j in jobs)
	assert counters(daemon)["runs_prepared"] >= 1
	marks = redis_client.hgetall(KEYS.fired(SITE, fire))
	assert sorted(k.decode() for k in marks) == ["TS-EDIT", "TS-KEEP"]


def test_prepare_ahead_zero_prepares_nothing_and_runs_still_run_once(
	site_db, daemon_config, start_daemon, redis_client
):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-1", "BTU-00001", "* * * * * *")
	daemon_config(prepare_ahead=0)
	daemon = start_daemon()
	wait_for(lambda: counters(daemon)["runs_enqueued"] >= 3, 20, what="three runs")
	assert counters(daemon)["runs_prepared"] == 0
	assert redis_client.hlen(KEYS.prepared(SITE)) == 0
	fires = [j.meta["btu_fire_time"] for j in queued_jobs(redis_client)]
	assert len(fires) == len(set(fires))


def test_a_redis_user_limited_to_btu_and_rq_keys_runs_the_prepared_path(
	site_db, daemon_config, start_daemon, redis_client, redis_url
):
	"""docs/deployment-layouts.md: a Redis ACL user with the key patterns ~btu:* ~rq:* and no dangerous
	command is enough. Every script the daemon runs must declare only such keys (a '' key name was
	refused with NOPERM and the preparer never made a run visible)."""
	user, password = f"btu-limited-{os.getpid()}", "btu-limited-secret"
	redis_client.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~btu:*", "~rq:*", "&*")
	redis_client.execute_command("ACL", "SETUSER", user, "+@all", "-@dangerous")
	redis_client.execute_command("ACL", "LOG", "RESET")
	try:
		site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
		for i in range(3):
			site_db.add_schedule(f"TS-{i}", "BTU-00001", "*/2 * * * * *")
		daemon_config(redis_username=user, redis_password=password, log_level="INFO")
		daemon = start_daemon()
		wait_for(
			lambda: counters(daemon)["runs_prepared"] >= 6, 40, what="runs made visible by prepared steps"
		)
		# ACL LOG is the server's (other tests' clients share it): only this user's refusals count.
		denied = [entry for entry in redis_client.acl_log() if _text(entry.get("username")) == user]
		assert denied == [], denied
		assert "NOPERM" not in daemon.output()
		jobs = queued_jobs(redis_client)
		fires = [(j.meta["btu_schedule"], j.meta["btu_fire_time"]) for j in jobs]
		assert len(fires) >= 6 and len(fires) == len(set(fires))
	finally:
		redis_client.execute_command("ACL", "DELUSER", user)
