"""Schedules edited while their runs are being enqueued, and runs due during a full refresh."""

from __future__ import annotations

import random
import time

import pytest

from btu.contracts.redis_keys import KEYS

from .harness import (
	RECORD,
	SITE,
	STATS,
	add_every_second,
	check_runs,
	queued_runs,
	scale,
	sleep_until_fraction,
	wait_caught_up,
	wait_for,
)
from .test_kill import seed

pytestmark = pytest.mark.faults
NEXT_RUNS = KEYS.next_runs(SITE)
# Different cron strings (so the daemon sees a new timing each time) with the same fire times.
EQUIVALENT = ["* * * * * *", "*/1 * * * * *", "0-59 * * * * *", "0/1 * * * * *", "* * * * * * *"]


def test_edits_landing_while_runs_are_enqueued(bench):
	"""Edits of the arguments and of the cron string (to an equivalent one) sent at whole seconds,
	when the runs are being enqueued: every fire time still runs exactly once."""
	rng = random.Random(seed())
	crons = add_every_second(bench.site_db, 6)
	daemon = bench.daemon("d")
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	start = max(s for _, s in client.zrange(NEXT_RUNS, 0, -1, withscores=True))
	conn = bench.site_db.connect()
	edits = 0
	deadline = time.time() + scale(15, 90)
	try:
		while time.time() < deadline:
			sleep_until_fraction(rng.choice([0.990, 0.997, 0.999, 0.9995, 0.0005, 0.001, 0.003, 0.5]))
			name = rng.choice(sorted(crons))
			with conn.cursor() as cur:
				if rng.random() < 0.5:
					cur.execute(
						"UPDATE `tabBTU Task Schedule` SET cron_string = %s WHERE name = %s",
						(rng.choice(EQUIVALENT), name),
					)
				else:
					cur.execute(
						"UPDATE `tabBTU Task Schedule` SET argument_overrides = %s WHERE name = %s",
						('{"label": "edit %d"}' % edits, name),
					)
			assert daemon.request("create_task_schedule", name, SITE).ok
			edits += 1
	finally:
		conn.close()
	STATS.add(bench.test_name, edits=edits, faults_injected=edits)
	end = time.time() + 1
	wait_caught_up(client, crons, end, 20)
	verdict = check_runs(queued_runs(client, crons), crons, start, end)
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] {edits} edits at whole seconds: {verdict.summary()}")
	assert verdict.ok, verdict.summary()


def _add_fillers(site_db, count: int) -> None:
	"""Many rarely-firing schedules so that a full refresh takes a while (rows stream for seconds)."""
	site_db.add_task("BTU-FILL", RECORD, {"path": "/dev/null"})
	conn = site_db.connect()
	try:
		with conn.cursor() as cur:
			cur.executemany(
				"INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task, enabled,"
				" queue_name, run_frequency, cron_string, cron_timezone) VALUES (%s, NOW(6), NOW(6), 'Administrator',"
				" 'Administrator', 'BTU-FILL', 1, 'default', 'Cron Style', '0 0 0 1 1 *', 'UTC')",
				[(f"TS-A{i:06d}",) for i in range(count)],
			)
	finally:
		conn.close()


def test_runs_due_during_full_refreshes_and_edits_racing_a_refresh(bench):
	fillers = scale(6000, 12000)
	_add_fillers(bench.site_db, fillers)
	crons = add_every_second(bench.site_db, 4, prefix="TS-Z")  # sorted last: their rows come at the end
	daemon = bench.daemon("d", full_refresh_interval=3)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == fillers + len(crons), 60, what="every schedule in Redis")
	start = max(client.zmscore(NEXT_RUNS, list(crons)))
	refreshes = 0
	for round_ in range(scale(3, 10)):
		# A refresh starts (its rows are read now); meanwhile schedules are disabled, created and edited.
		assert daemon.request("refresh").ok
		refreshes += 1
		time.sleep(0.05)
		gone, new, edited = f"TS-Z9{round_:03d}X", f"TS-Z8{round_:03d}N", "TS-Z0000"
		if round_ == 0:
			bench.site_db.add_schedule(gone, "BTU-F0001", "* * * * * *")
			assert daemon.request("create_task_schedule", gone, SITE).ok
			wait_for(lambda: client.zscore(NEXT_RUNS, gone) is not None, 10, what="the schedule to disable")
			assert daemon.request("refresh").ok
			time.sleep(0.05)
		bench.site_db.update_schedule(gone, enabled=0) if round_ == 0 else None
		bench.site_db.add_schedule(new, "BTU-F0001", "0 0 0 1 1 *")
		bench.site_db.update_schedule(edited, argument_overrides='{"label": "round %d"}' % round_)
		for name in ((gone,) if round_ == 0 else ()) + (new, edited):
			assert daemon.request("create_task_schedule", name, SITE).ok
		STATS.add(bench.test_name, edits=3, faults_injected=3)
		# Once the refresh is through, the edits made during it must stand.
		time.sleep(0.5)
		wait_for(lambda: daemon.request("status").data["internal_queue"]["bulk"] == 0, 60, what="the refresh")
		time.sleep(0.5)
		assert client.zscore(NEXT_RUNS, "TS-Z9000X") is None, "a schedule disabled during a refresh came back"
		assert client.zscore(NEXT_RUNS, new) is not None, "a schedule created during a refresh was removed"
		spec = client.hget(KEYS.specs(SITE), edited)
		assert b'"round %d"' % round_ in spec, "an edit made during a refresh was undone"
	end = time.time() + 1
	wait_caught_up(client, crons, end, 30)
	verdict = check_runs(queued_runs(client, crons), crons, start, end)
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] {refreshes} full refreshes of {fillers} schedules: {verdict.summary()}")
	assert verdict.ok, verdict.summary()


def test_edit_while_the_due_run_waits_is_not_lost(bench):
	"""The rule of a schedule changes (to an equivalent cron string) after its run fell due but
	before it was enqueued: (1) the leader stalls at the fire time while the edit reaches the
	standby daemon; (2) the edit is made while the only daemon is down. The due run still happens,
	once (docs/architecture.md: a run missed while the daemon was away is enqueued once on recovery)."""
	import os
	import signal

	from .harness import Outage

	crons = add_every_second(bench.site_db, 3)
	a = bench.daemon("a", lease_ttl=3)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	b = bench.daemon("b", lease_ttl=3)
	start = max(client.zmscore(NEXT_RUNS, list(crons)))
	outages = []
	for round_ in range(scale(2, 6)):
		time.sleep(1.3)
		leader, standby = (a, b) if a.request("ping").data["leader"] else (b, a)
		sleep_until_fraction(0.8)
		stalled = time.time()
		os.kill(leader.process.pid, signal.SIGSTOP)
		try:
			time.sleep(0.3)  # the fire time passes while the leader is stalled
			for name in crons:
				bench.site_db.update_schedule(name, cron_string=EQUIVALENT[(round_ + 1) % len(EQUIVALENT)])
				assert standby.request("create_task_schedule", name, SITE).ok
			time.sleep(0.5)
		finally:
			os.kill(leader.process.pid, signal.SIGCONT)
		outages.append(Outage(stalled, time.time() + 1))
		STATS.add(bench.test_name, faults_injected=1, edits=len(crons))
	# (2) Edited while down.
	time.sleep(1.5)
	b.stop()
	sleep_until_fraction(0.5)
	stopped = time.time()
	a.stop()
	for name in crons:
		bench.site_db.update_schedule(name, cron_string="0/1 * * * * *")
	STATS.add(bench.test_name, faults_injected=1, edits=len(crons))
	time.sleep(3)
	a.start()
	outages.append(Outage(stopped, time.time() + 2))
	end = time.time() + 1
	wait_caught_up(client, crons, end, 20)
	verdict = check_runs(queued_runs(client, crons), crons, start, end, outages)
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] edits while a due run waits: {verdict.summary()}")
	assert verdict.ok, verdict.summary()
