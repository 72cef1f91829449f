"""An edit from Desk never waits behind a backlog of socket requests (issue 14, item 7): names pushed
while the database is busy are read in batches, and the newest request is served first."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from btu.contracts import protocol
from btu.contracts.redis_keys import KEYS

from .conftest import SITE
from .services import wait_for

EXISTING = 3000
UNKNOWN = 1000


def add_schedules(site_db, names: list[str], cron: str = "0 0 1 1 *") -> None:
	conn = site_db.connect()
	with conn.cursor() as cur:
		cur.executemany(
			"INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task, enabled,"
			" queue_name, run_frequency, cron_string, cron_timezone) VALUES (%s, NOW(6), NOW(6), 'a', 'a',"
			" 'BTU-00001', 1, 'default', 'Cron Style', %s, 'UTC')",
			[(n, cron) for n in names],
		)
	conn.close()


def applied_after(output: str, name: str) -> list[str]:
	"""Schedules synced or removed (one line each) after the last sync of ``name``."""
	lines = [
		line
		for line in output.splitlines()
		if "event=schedule_synced " in line or "event=schedule_removed " in line
	]
	last = max(i for i, line in enumerate(lines) if f"schedule={name} " in line)
	return [line.split("schedule=")[1].split()[0] for line in lines[last + 1 :]]


def test_an_edit_pushed_behind_a_backlog_is_applied_before_the_backlog(start_daemon, site_db, redis_client):
	site_db.add_task("BTU-00001", "btu.scheduler_daemon.demo_tasks.record_run")
	existing = [f"TS-{i:05d}" for i in range(EXISTING)]
	add_schedules(site_db, [*existing, "TS-EDIT"])
	daemon = start_daemon()
	next_runs = KEYS.next_runs(SITE)
	wait_for(lambda: redis_client.zcard(next_runs) == EXISTING + 1, 30, what="schedules in Redis")
	before = daemon.request("status").data["counters"]["schedules_synced"]

	# A busy database: the schedule table write-locked by another session, which also edits TS-EDIT.
	locker = site_db.connect()
	locked, release = threading.Event(), threading.Event()

	def hold_lock() -> None:
		with locker.cursor() as cur:
			cur.execute("LOCK TABLES `tabBTU Task Schedule` WRITE")
			cur.execute("UPDATE `tabBTU Task Schedule` SET cron_string = '0 0 2 1 *' WHERE name = 'TS-EDIT'")
			locked.set()
			release.wait(60)
			cur.execute("UNLOCK TABLES")

	holder = threading.Thread(target=hold_lock)
	holder.start()
	try:
		assert locked.wait(10)
		backlog = existing + [f"TS-GONE-{i:05d}" for i in range(UNKNOWN)]  # a bulk push; some deleted
		with ThreadPoolExecutor(8) as pool:
			replies = list(
				pool.map(lambda n: protocol.create_task_schedule(daemon.socket_path, n, SITE, 5.0), backlog)
			)
		assert all(r.ok for r in replies), [r.message for r in replies if not r.ok][:3]
		assert daemon.request("create_task_schedule", "TS-EDIT", SITE).ok  # the edit, last of all
		assert daemon.request("ping").ok
	finally:
		release.set()
		holder.join(30)
		locker.close()
	wait_for(
		lambda: b'"0 0 2 1 *"' in (redis_client.hget(KEYS.specs(SITE), "TS-EDIT") or b""),
		30,
		what="the edit in Redis",
	)

	def drained() -> bool:
		status = daemon.request("status").data
		queue = status["internal_queue"]
		return queue["priority"] + queue["bulk"] == 0 and status["counters"]["schedules_synced"] >= (
			before + EXISTING + 1
		)

	wait_for(drained, 60, 0.1, what="the whole backlog to drain")
	assert redis_client.zcard(next_runs) == EXISTING + 1
	# The order the daemon applied them in: the edit came before most of the backlog pushed before it.
	after = applied_after(daemon.output(), "TS-EDIT")
	assert len(after) >= (EXISTING + UNKNOWN) // 2, len(after)
	assert set(after) <= set(backlog)
