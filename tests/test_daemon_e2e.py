"""The daemon end to end: real process, real socket, real MariaDB, Redis and rq workers."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import redis
from rq.job import Job

from btu.contracts.redis_keys import KEYS
from btu.scheduler_daemon.jobs import FRAPPE_EXECUTE_JOB, TASK_RUNNER, job_id_for

from .conftest import SITE
from .services import wait_for

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"


def next_runs(client: redis.Redis) -> dict[str, float]:
	return {k.decode(): v for k, v in client.zrange(KEYS.next_runs(SITE), 0, -1, withscores=True)}


def queued_btu_jobs(client: redis.Redis, queue: str = "default") -> list[Job]:
	ids = [i.decode() for i in client.lrange(f"rq:queue:{queue}", 0, -1)]
	return [j for j in Job.fetch_many(ids, connection=client) if j is not None]


def test_schedule_saved_then_socket_message_updates_redis(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD)
	daemon = start_daemon()
	wait_for(lambda: daemon.request("status").data["counters"]["refreshes"] >= 1, what="first refresh")
	assert next_runs(redis_client) == {}

	site_db.add_schedule("TS-000001", "BTU-00001", "0 9 * * *", "Europe/Paris")
	reply = daemon.request("create_task_schedule", "TS-000001", SITE)
	assert reply.ok, reply.message
	runs = wait_for(lambda: next_runs(redis_client), what="schedule in Redis")
	fire = runs["TS-000001"]
	assert time.gmtime(fire).tm_min == 0
	# 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer
	assert time.gmtime(fire).tm_hour in (7, 8)
	assert fire > time.time()

	site_db.update_schedule("TS-000001", cron_string="30 6 * * *", cron_timezone="UTC")
	assert daemon.request("create_task_schedule", "TS-000001", SITE).ok
	wait_for(
		lambda: time.gmtime(next_runs(redis_client).get("TS-000001", 0)).tm_hour == 6, what="edited time"
	)
	assert time.gmtime(next_runs(redis_client)["TS-000001"]).tm_min == 30
	assert "event=schedule_synced" in daemon.output() and "schedule=TS-000001" in daemon.output()


def test_due_runs_are_executed_by_a_real_rq_worker(site_db, start_daemon, start_worker, workdir):
	out = os.path.join(workdir, "runs.txt")
	site_db.add_task("BTU-00001", RECORD, {"path": out, "label": "from-task"})
	site_db.add_schedule("TS-000001", "BTU-00001", "* * * * * *", overrides={"label": "overridden"})
	start_worker()
	daemon = start_daemon()
	wait_for(
		lambda: Path(out).exists() and len(Path(out).read_text().splitlines()) >= 3,
		20,
		what="three executed runs",
	)
	lines = Path(out).read_text().splitlines()
	assert all(line.endswith(" overridden") for line in lines), lines
	assert "event=run_enqueued" in daemon.output()


def test_frappe_mode_job_has_execute_job_kwargs_queue_and_timeout(
	site_db, start_daemon, daemon_config, redis_client
):
	site_db.add_task("BTU-00007", "my_app.tasks.nightly", {"x": 1}, max_task_duration=1234, queue="long")
	site_db.add_schedule("TS-000009", "BTU-00007", "* * * * * *", queue="long")
	daemon_config(job_mode="frappe", queue_prefix="mybench:", job_user="Administrator")
	start_daemon()
	jobs = wait_for(lambda: queued_btu_jobs(redis_client, "mybench:long"), 10, what="a job in mybench:long")
	job = jobs[0]
	assert job.func_name == FRAPPE_EXECUTE_JOB
	assert job.timeout == 1234
	assert job.origin == "mybench:long"
	kwargs = job.kwargs
	assert kwargs["site"] == SITE and kwargs["user"] == "Administrator" and kwargs["method"] == TASK_RUNNER
	assert kwargs["is_async"] is True and kwargs["event"] is None and kwargs["job_name"] == "BTU TS-000009"
	inner = kwargs["kwargs"]
	assert inner["task_name"] == "BTU-00007" and inner["schedule_name"] == "TS-000009"
	assert job.id == job_id_for(SITE, "TS-000009", int(inner["fire_time"]))
	# The job data is what Frappe's workers unpickle: (func name, instance, args, kwargs)
	func_name, instance, args, data_kwargs = pickle.loads(job.data)
	assert (func_name, instance, args) == (FRAPPE_EXECUTE_JOB, None, ())
	assert set(data_kwargs) == {"site", "user", "method", "event", "job_name", "kwargs", "is_async"}
