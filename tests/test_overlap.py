"""Overlap policy per schedule on the real daemon: Allow (the default, also for rows older than the
policy) enqueues every fire time; Skip skips a fire time while the schedule's previous run is still
queued or running, and records each skip (Redis, the daemon's log, status)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import redis
from rq.job import Job

from btu.contracts.redis_keys import KEYS

from .conftest import SITE
from .services import wait_for

SLOW = "tests.run_tasks.slow_record"
RECORD = "tests.run_tasks.record"


def queued(client: redis.Redis, schedule: str, queue: str = "default") -> list[Job]:
	ids = [i.decode() for i in client.lrange(f"rq:queue:{queue}", 0, -1)]
	jobs = [j for j in Job.fetch_many(ids, connection=client) if j is not None]
	return sorted(
		(j for j in jobs if j.meta.get("btu_schedule") == schedule), key=lambda j: j.meta["btu_fire_time"]
	)


def skips(client: redis.Redis, schedule: str) -> list[dict]:
	raw = client.hget(KEYS.skipped(SITE), schedule)
	return json.loads(raw) if raw else []


def test_skip_keeps_one_run_at_a_time_while_allow_lets_runs_pile_up(site_db, start_daemon, redis_client):
	"""No worker: the first run of each schedule stays queued. Allow (the column left empty, as on
	rows saved before the policy existed) enqueues every fire time; Skip enqueues one and skips the
	others, each skip recorded with its reason and the previous job."""
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-ALLOW", "BTU-00001", "* * * * * *", overlap_policy=None)
	site_db.add_schedule("TS-SKIP", "BTU-00001", "* * * * * *", overlap_policy="Skip")
	daemon = start_daemon()
	wait_for(lambda: len(queued(redis_client, "TS-ALLOW")) >= 4, 15, what="four queued runs of TS-ALLOW")
	wait_for(lambda: len(skips(redis_client, "TS-SKIP")) >= 3, 10, what="three skipped fire times of TS-SKIP")
	jobs = queued(redis_client, "TS-SKIP")
	assert len(jobs) == 1, [j.id for j in jobs]
	first = jobs[0]
	recorded = skips(redis_client, "TS-SKIP")
	assert all(s["reason"] == "overlap" and s["previous_job"] == first.id for s in recorded), recorded
	assert all(s["previous_status"] == "queued" for s in recorded)
	assert all(s["fire_time"] > first.meta["btu_fire_time"] for s in recorded)
	assert [s["fire_time"] for s in recorded] == sorted((s["fire_time"] for s in recorded), reverse=True)
	assert skips(redis_client, "TS-ALLOW") == []
	output = daemon.output()
	assert re.search(
		rf"event=run_skipped_overlap site={SITE} schedule=TS-SKIP fire_time=\S+ previous_job={first.id} "
		r"previous_status=queued overlap_policy=Skip",
		output,
	)
	assert "schedule=TS-ALLOW" not in "".join(
		line for line in output.splitlines() if "run_skipped_overlap" in line
	)
	counters = daemon.request("status").data["counters"]
	assert counters["runs_skipped_overlap"] >= 3

	# The previous run ends (a worker would set the status): the next fire time runs again.
	redis_client.hset(first.key, "status", "finished")
	redis_client.lrem("rq:queue:default", 0, first.id)
	second = wait_for(
		lambda: queued(redis_client, "TS-SKIP"), 10, what="a new run once the previous one ended"
	)
	assert second[0].id != first.id and second[0].meta["btu_fire_time"] > first.meta["btu_fire_time"]
	# Its job hash gone (expired results, a flushed queue): not running either.
	redis_client.delete(second[0].key)
	redis_client.lrem("rq:queue:default", 0, second[0].id)
	third = wait_for(
		lambda: queued(redis_client, "TS-SKIP"), 10, what="a new run once the previous job is gone"
	)
	assert third[0].meta["btu_fire_time"] > second[0].meta["btu_fire_time"]


def test_with_a_worker_skip_never_runs_two_runs_of_a_schedule_at_once(
	site_db, start_daemon, start_worker, workdir, redis_client
):
	"""Runs last longer than the schedule's period: each run starts after the previous ended."""
	out = os.path.join(workdir, "runs.txt")
	site_db.add_task("BTU-00001", SLOW, {"path": out, "seconds": 2.5})
	site_db.add_schedule("TS-SLOW", "BTU-00001", "* * * * * *", overlap_policy="Skip")
	start_worker()
	start_worker(name="worker2")  # a free worker would happily run a second copy
	daemon = start_daemon()
	wait_for(lambda: Path(out).exists() and Path(out).read_text().count("end") >= 3, 40, what="three runs")
	site_db.update_schedule("TS-SLOW", enabled=0)
	assert daemon.request("cancel_task_schedule", "TS-SLOW", SITE).ok
	time.sleep(3)  # the run in progress ends
	events = [line.split()[0] for line in Path(out).read_text().splitlines()]
	assert events[: len(events) // 2 * 2] == ["start", "end"] * (len(events) // 2), events
	recorded = skips(redis_client, "TS-SLOW")
	assert recorded and all(s["reason"] == "overlap" for s in recorded)
	assert {s["previous_status"] for s in recorded} <= {"queued", "started"}
	assert "started" in {s["previous_status"] for s in recorded}
	assert "event=run_skipped_overlap" in daemon.output()


def test_an_unknown_overlap_policy_is_reported_with_the_schedule(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-BAD", "BTU-00001", "0 0 1 1 *", overlap_policy="Replace")
	site_db.add_schedule("TS-GOOD", "BTU-00001", "0 0 1 1 *", overlap_policy="skip")
	start_daemon()
	error = wait_for(lambda: redis_client.hget(KEYS.errors(SITE), "TS-BAD"), what="the error")
	assert b"overlap_policy 'Replace' is unknown; expected one of Allow, Skip" in error
	spec = json.loads(wait_for(lambda: redis_client.hget(KEYS.specs(SITE), "TS-GOOD"), what="TS-GOOD"))
	assert spec["overlap"] == "Skip"


def test_skips_stay_while_the_row_exists_and_go_with_a_deleted_schedule(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD, {"path": "/dev/null"})
	site_db.add_schedule("TS-SKIP", "BTU-00001", "* * * * * *", overlap_policy="Skip")
	daemon = start_daemon()
	wait_for(lambda: skips(redis_client, "TS-SKIP"), 10, what="a skipped fire time")
	site_db.update_schedule("TS-SKIP", enabled=0)
	assert daemon.request("cancel_task_schedule", "TS-SKIP", SITE).ok
	wait_for(lambda: not redis_client.zscore(KEYS.next_runs(SITE), "TS-SKIP"), what="the schedule removed")
	before = daemon.request("status").data["refresh"]["number"]
	assert daemon.request("refresh").ok
	wait_for(lambda: daemon.request("status").data["refresh"]["number"] > before, what="a refresh")
	assert skips(redis_client, "TS-SKIP"), "a disabled schedule keeps its record (the Desk shows it)"
	assert redis_client.hexists(KEYS.last_jobs(SITE), "TS-SKIP")
	site_db.delete_schedule("TS-SKIP")
	assert daemon.request("cancel_task_schedule", "TS-SKIP", SITE).ok  # what Desk sends on delete
	assert daemon.request("refresh").ok  # the next full refresh finds it gone
	wait_for(lambda: not redis_client.hexists(KEYS.skipped(SITE), "TS-SKIP"), 10, what="its record gone")
	assert not redis_client.hexists(KEYS.last_jobs(SITE), "TS-SKIP")
