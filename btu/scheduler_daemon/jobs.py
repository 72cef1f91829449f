"""Build the RQ jobs that run a schedule, with the rq library (no hand-made job hashes)."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

import redis
from rq import Queue
from rq.job import Job, JobStatus

from .config import DaemonConfig
from .specs import ScheduleSpec

FRAPPE_EXECUTE_JOB = "frappe.utils.background_jobs.execute_job"
TASK_RUNNER = "btu.btu_core.task_runner.run_scheduled_task"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def job_id_for(site: str, schedule: str, fire_ts: int) -> str:
	"""Deterministic per (site, schedule, fire time); RQ allows only [A-Za-z0-9_-] in ids."""
	digest = hashlib.sha1(f"{site}\0{schedule}".encode()).hexdigest()[:10]
	return f"btu-{_UNSAFE.sub('_', schedule)[:60]}-{int(fire_ts)}-{digest}"


def rq_queue_name(config: DaemonConfig, queue: str) -> str:
	"""The queue the bench's workers listen on (Frappe v15: '<bench_id>:<queue>')."""
	return f"{config.queue_prefix}{queue}"


class JobBuilder:
	def __init__(self, config: DaemonConfig) -> None:
		self.config = config
		self._queues: dict[tuple[int, str], Queue] = {}

	def queue(self, connection: redis.Redis, queue: str) -> Queue:
		key = (id(connection), queue)
		found = self._queues.get(key)
		if found is None:
			found = self._queues[key] = Queue(rq_queue_name(self.config, queue), connection=connection)
		return found

	def build(
		self,
		connection: redis.Redis,
		spec: ScheduleSpec,
		fire_ts: int,
		status: JobStatus = JobStatus.QUEUED,
		job_id: str | None = None,
	) -> tuple[Queue, Job]:
		"""The run of ``spec`` at ``fire_ts`` as an rq Job (``status`` SCHEDULED for a prepared run)."""
		queue = self.queue(connection, spec.queue)
		fire_iso = datetime.fromtimestamp(fire_ts, timezone.utc).isoformat()
		if self.config.job_mode == "frappe":
			func = FRAPPE_EXECUTE_JOB
			kwargs = {
				"site": spec.site,
				"user": self.config.job_user,
				"method": TASK_RUNNER,
				"event": None,
				"job_name": f"BTU {spec.name}",
				"kwargs": {"task_name": spec.task, "schedule_name": spec.name, "fire_time": float(fire_ts)},
				"is_async": True,
			}
		else:
			func, kwargs = spec.function_string, dict(spec.kwargs)
		# Job.create, not queue.create_job: the same job, but the queue hands its serializer over and
		# rq re-checks it against a typing Protocol on every job (two thirds of building a job).
		job = Job.create(
			func,
			kwargs=kwargs,
			connection=connection,
			timeout=spec.timeout,
			result_ttl=self.config.result_ttl,
			failure_ttl=self.config.failure_ttl,
			id=job_id or job_id_for(spec.site, spec.name, fire_ts),
			origin=queue.name,
			status=status,
			description=f"BTU {spec.site} {spec.name} {spec.task} at {fire_iso}",
			meta={
				"btu_site": spec.site,
				"btu_schedule": spec.name,
				"btu_task": spec.task,
				"btu_fire_time": fire_ts,
				"btu_key_prefix": self.config.key_prefix,  # the worker's late-run claim lives beside the daemon's keys
			},
		)
		return queue, job


def enqueue_in_transaction(
	queue: Queue, job: Job, pipe: redis.client.Pipeline, register_queue: bool = True
) -> None:
	"""Add a dependency-free job to ``queue`` inside an already started MULTI pipeline.

	``Queue.enqueue_job(job, pipeline=...)`` cannot be used for several jobs in one
	transaction on every supported rq: rq 1.x calls ``pipeline.multi()`` itself for each
	job. ``_enqueue_job`` (rq 1.15 to 3.x) saves the job and pushes its id, nothing else.
	``register_queue=False``: the caller adds the queue to RQ's set of queues once per batch.
	"""
	job.origin = queue.name
	if register_queue:
		pipe.sadd(queue.redis_queues_keys, queue.key)
	queue._enqueue_job(job, pipeline=pipe)
