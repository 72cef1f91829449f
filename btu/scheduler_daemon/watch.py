"""A live view of BTU runs: one line per run as RQ workers finish it (used by the demo)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import click
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from .config import DaemonConfig
from .jobs import rq_queue_name
from .redis_store import RedisStore


def _describe(job: Job) -> str:
	meta = job.meta or {}
	fire = meta.get("btu_fire_time")
	enqueued = job.enqueued_at.replace(tzinfo=timezone.utc).timestamp() if job.enqueued_at else None
	late = f"{(enqueued - fire) * 1000:6.1f} ms" if fire and enqueued else "   ?"
	took = ""
	if job.started_at and job.ended_at:
		took = f"{(job.ended_at - job.started_at).total_seconds():.2f} s"
	fire_text = datetime.fromtimestamp(fire, timezone.utc).strftime("%H:%M:%S") if fire else "?"
	status = job.get_status(refresh=False)
	status_text = getattr(status, "value", status)
	if status_text == "finished":
		outcome = click.style("OK    ", fg="green") + f" result={job.return_value()!r}"
	else:
		last_line = (job.exc_info or "").strip().splitlines()[-1:] or ["?"]
		outcome = click.style("FAILED", fg="red") + f" {last_line[0]}"
	return (
		f"{fire_text}Z {meta.get('btu_site', '?'):<14} {meta.get('btu_schedule', '?'):<10} "
		f"{meta.get('btu_task', '?'):<10} late {late}  ran {took:<7} {outcome}"
	)


def watch_runs(config: DaemonConfig, seconds: float = 0) -> None:
	store = RedisStore(config)
	seen: set[str] = set()
	started = time.monotonic()
	click.echo("fire time  site           schedule   task       enqueue lateness  duration  outcome")
	while not seconds or time.monotonic() - started < seconds:
		for site in config.sites:
			client = store.client(site.name)
			queues = {
				Queue(rq_queue_name(config, q), connection=client) for q in ("short", "default", "long")
			}
			for queue in queues:
				for registry in (FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)):
					new_ids = [j for j in registry.get_job_ids() if j.startswith("btu-") and j not in seen]
					for job in Job.fetch_many(new_ids, connection=client):
						if job is None:
							continue
						seen.add(job.id)
						click.echo(_describe(job))
		time.sleep(0.5)
