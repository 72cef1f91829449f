"""Task functions the fault tests' rq workers execute (imported as tests.faults.tasks)."""

from __future__ import annotations

import json
import os
import time
from datetime import timezone


def record_job(path: str, **_extra) -> str:
	"""Append one JSON line per execution: the job id, its schedule and fire time, when it was enqueued."""
	from rq import get_current_job

	job = get_current_job()
	meta = job.meta if job else {}
	enqueued = None
	if job and job.enqueued_at:
		stamp = job.enqueued_at
		enqueued = (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()
	line = json.dumps(
		{
			"job_id": job.id if job else None,
			"schedule": meta.get("btu_schedule"),
			"fire_ts": meta.get("btu_fire_time"),
			"enqueued_at": enqueued,
			"ran_at": time.time(),
		}
	)
	fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
	try:
		os.write(fd, (line + "\n").encode())
	finally:
		os.close(fd)
	return "recorded"
