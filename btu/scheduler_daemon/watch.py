"""A live view of BTU runs: one line per run as RQ workers finish it (used by the demo)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import click
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from btu.contracts.queues import STANDARD_QUEUES

from .config import DaemonConfig
from .jobs import rq_queue_name
from .redis_store import RedisStore
from .specs import ScheduleSpec

QUEUES_REREAD_SECONDS = 10.0  # a new custom queue shows up within this
RUNNER_FAILURES = {"Failed": "FAILED", "Timeout": "TIMEOUT"}


def _outcome(job: Job) -> str:
	"""OK / FAILED / TIMEOUT / SKIPPED with a hint. In ``frappe`` job mode the job itself always
	finishes (the task runner never raises): its return value says what the Task Log says."""
	status = job.get_status(refresh=False)
	if getattr(status, "value", status) != "finished":
		last_line = (job.exc_info or "").strip().splitlines()[-1:] or ["?"]
		return click.style("FAILED", fg="red") + f" {last_line[0]}"
	value = job.return_value()
	run_status = value.get("status") if isinstance(value, dict) and "task" in value else None
	log_name = f" log={value.get('log')}" if run_status and value.get("log") else ""
	if run_status in RUNNER_FAILURES:
		first = (value.get("result_message") or "").strip().splitlines()
		last = [line for line in first if line.strip()][-1:] or ["?"]
		return click.style(f"{RUNNER_FAILURES[run_status]:<6}", fg="red") + f"{log_name} {last[0]}"
	if run_status == "Skipped":
		return click.style("SKIPPED", fg="yellow") + f" {value.get('result_message', '')}"
	if run_status:
		return click.style("OK    ", fg="green") + log_name
	return click.style("OK    ", fg="green") + f" result={value!r}"


def _describe(job: Job) -> str:
	meta = job.meta or {}
	fire = meta.get("btu_fire_time")
	enqueued = job.enqueued_at.replace(tzinfo=timezone.utc).timestamp() if job.enqueued_at else None
	late = f"{(enqueued - fire) * 1000:6.1f} ms" if fire and enqueued else "   ?"
	took = ""
	if job.started_at and job.ended_at:
		took = f"{(job.ended_at - job.started_at).total_seconds():.2f} s"
	fire_text = datetime.fromtimestamp(fire, timezone.utc).strftime("%H:%M:%S") if fire else "?"
	outcome = _outcome(job)
	return (
		f"{fire_text}Z {meta.get('btu_site', '?'):<14} {meta.get('btu_schedule', '?'):<10} "
		f"{meta.get('btu_task', '?'):<10} late {late}  ran {took:<7} {outcome}"
	)


def btu_queues(store: RedisStore, site: str) -> list[str]:
	"""Frappe's standard queues and every queue a schedule of the site uses (custom BTU Queues)."""
	names = set(STANDARD_QUEUES)
	for raw in store.client(site).hvals(store.keys.specs(site)):
		try:
			names.add(ScheduleSpec.from_json(raw).queue)
		except (ValueError, TypeError):
			continue
	return sorted(names)


def watch_runs(config: DaemonConfig, seconds: float = 0) -> None:
	store = RedisStore(config)
	seen: set[str] = set()
	started = time.monotonic()
	click.echo("fire time  site           schedule   task       enqueue lateness  duration  outcome")
	queues: dict[str, list[Queue]] = {}
	queues_read_at = 0.0
	while not seconds or time.monotonic() - started < seconds:
		if time.monotonic() - queues_read_at > QUEUES_REREAD_SECONDS:
			queues_read_at = time.monotonic()
			queues = {
				site.name: [
					Queue(rq_queue_name(config, q), connection=store.client(site.name))
					for q in btu_queues(store, site.name)
				]
				for site in config.sites
			}
		for site in config.sites:
			client = store.client(site.name)
			for queue in queues[site.name]:
				for registry in (FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)):
					new_ids = [j for j in registry.get_job_ids() if j.startswith("btu-") and j not in seen]
					for job in Job.fetch_many(new_ids, connection=client):
						if job is None:
							continue
						seen.add(job.id)
						click.echo(_describe(job))
		time.sleep(0.5)
