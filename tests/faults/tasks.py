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


def record_and_chain(path: str, db: dict, socket_path: str, next_task: str, **_extra) -> str:
	"""Task A of a chain, as BTU's runner does it in a site: record the run, then write task B's run as
	a one-shot row named after A's fire time (``INSERT IGNORE``: a second execution of the same run
	makes no second one-shot) and tell the daemon over its socket (a lost message only delays it:
	the refresh finds the row)."""
	from datetime import datetime

	import pymysql
	from rq import get_current_job

	from btu.contracts import protocol

	record_job(path)
	fire_ts = int(get_current_job().meta["btu_fire_time"])
	name = f"TS-CH{fire_ts}"
	run_at = datetime.fromtimestamp(time.time() + 1, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
	conn = pymysql.connect(**db, autocommit=True)
	try:
		with conn.cursor() as cur:
			cur.execute(
				"INSERT IGNORE INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task,"
				" enabled, queue_name, run_frequency, run_at, cron_timezone, cron_string) VALUES"
				" (%s, NOW(6), NOW(6), 'a', 'a', %s, 1, 'default', 'Once', %s, 'UTC', '')",
				(name, next_task, run_at),
			)
	finally:
		conn.close()
	try:
		protocol.create_task_schedule(socket_path, name, "faults.localhost")
	except Exception:  # noqa: BLE001 - the daemon is being killed: its refresh picks the row up
		pass
	return name
