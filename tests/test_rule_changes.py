"""A schedule's rule changes while its daemon is stalled or stopped: only the current rule's fire times
run (issue 21 item 1; docs/architecture.md "An edit during a pending run").

Real daemon process, real MariaDB, real Redis, a real rq worker. The rules fire every ten seconds at
disjoint seconds (:x0, :x5, :x7), so every enqueued fire time names the rule that produced it."""

from __future__ import annotations

import calendar
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
from rq.job import Job

from btu.contracts import protocol
from btu.contracts.redis_keys import KEYS
from btu.scheduler_daemon.jobs import job_id_for

from .conftest import SITE
from .services import wait_for
from .test_prepared import SITE as PREP_SITE
from .test_prepared import Env, row, wait_until

RECORD = "btu.scheduler_daemon.demo_tasks.record_run"
NAME = "TS-000021"
RULE_A = "*/10 * * * * *"  # seconds 0, 10, ... 50
RULE_B = "5-59/10 * * * * *"  # seconds 5, 15, ... 55
RULE_C = "7-59/10 * * * * *"  # seconds 7, 17, ... 57


def enqueued(client: redis.Redis) -> list[int]:
	"""Every fire time of the schedule that was enqueued (its exactly-once markers)."""
	times = []
	for key in client.scan_iter(match=KEYS.fired_pattern(SITE), count=1000):
		if client.hexists(key, NAME):
			times.append(int(key.decode().rsplit(":", 1)[1]))
	return sorted(times)


def pending(client: redis.Redis) -> int:
	return int(client.zscore(KEYS.next_runs(SITE), NAME))


def sleep_until_second(remainder: float) -> None:
	"""Sleep until the wall clock's seconds modulo 10 equal ``remainder`` (the next such instant)."""
	now = time.time()
	time.sleep((remainder - now % 10) % 10 or 10)


def test_a_rule_changed_while_the_daemon_stalls_or_is_down_runs_only_its_own_times(
	site_db, start_daemon, start_worker, workdir, redis_client, daemon_config
):
	out = os.path.join(workdir, "runs.txt")
	site_db.add_task("BTU-00021", RECORD, {"path": out})
	site_db.add_schedule(NAME, "BTU-00021", RULE_A)
	start_worker()
	daemon = start_daemon()
	wait_for(lambda: len(enqueued(redis_client)) >= 2, 30, what="two runs of rule A")

	# 1. Stalled (SIGSTOP) just after an :x0 run; the rule changes to B meanwhile and the Desk's
	# socket message waits in the socket's backlog; resumed after the pending :x0 fell due.
	sleep_until_second(1.0)
	stalled_at = time.time()
	os.kill(daemon.process.pid, signal.SIGSTOP)
	replies = []
	try:
		old_pending = pending(redis_client)
		assert old_pending % 10 == 0 and old_pending > stalled_at
		site_db.update_schedule(NAME, cron_string=RULE_B)
		sender = threading.Thread(
			target=lambda: replies.append(
				protocol.send_request(daemon_config.socket_path, "create_task_schedule", NAME, SITE, 60)
			)
		)
		sender.start()
		time.sleep(old_pending + 6.0 - time.time())  # the old :x0 fell due, and so did B's :x5 after it
	finally:
		os.kill(daemon.process.pid, signal.SIGCONT)
	resumed_at = time.time()
	sender.join(30)
	assert replies and replies[0].ok, replies
	wait_for(lambda: pending(redis_client) % 10 == 5 and pending(redis_client) > resumed_at, 15)
	time.sleep(12)  # a run or two of rule B

	# 2. Stopped; the rule changes to C; started again after B's pending time fell due.
	daemon.stop()
	stopped_at = time.time()
	b_pending = pending(redis_client)
	assert b_pending % 10 == 5, b_pending
	site_db.update_schedule(NAME, cron_string=RULE_C)
	time.sleep(max(0.0, b_pending + 6.0 - time.time()))
	restarted_at = time.time()
	again = start_daemon("again")
	wait_for(lambda: pending(redis_client) % 10 == 7 and pending(redis_client) > restarted_at, 15)
	time.sleep(12)  # a run or two of rule C
	fired = enqueued(redis_client)
	wait_for(
		lambda: Path(out).exists() and len(Path(out).read_text().splitlines()) == len(fired),
		20,
		what="the worker to run every enqueued run",
	)

	by_rule = {0: [], 5: [], 7: []}
	for ts in fired:
		by_rule.setdefault(ts % 10, []).append(ts)
	assert set(by_rule) == {0, 5, 7}, f"fire times no rule contains: {fired}"
	# Rule A's pending fire time fell due while the daemon stalled with rule B current: never run,
	# and nothing was planned from rule A afterwards.
	assert not [ts for ts in by_rule[0] if ts > stalled_at], (stalled_at, fired)
	# Rule B: its latest missed fire time before the resume runs once (the catch-up), then its own.
	assert len([ts for ts in by_rule[5] if ts <= resumed_at]) == 1, (resumed_at, fired)
	assert all(stalled_at < ts <= stopped_at for ts in by_rule[5]), (stalled_at, stopped_at, fired)
	# Rule C after the restart: B's pending fire time never runs; C's latest missed one runs once.
	assert b_pending not in fired, (b_pending, fired)
	assert len([ts for ts in by_rule[7] if ts <= restarted_at]) == 1, (restarted_at, fired)
	assert all(ts > stopped_at for ts in by_rule[7]), (stopped_at, fired)
	# What an operator reads: the stall noticed, the old rules' due fire times dropped (named).
	assert "event=scheduler_stalled" in daemon.output()
	for log_text, old_time in ((daemon.output(), old_pending), (again.output(), b_pending)):
		dropped = [line for line in log_text.splitlines() if "event=pending_fire_time_dropped" in line]
		assert dropped and time.strftime("%H:%M:%S", time.gmtime(old_time)) in dropped[0], log_text[-3000:]


# --- the same contract, step by step: the daemon's own objects on the test's Redis (no daemon process)


def _minute_ago(parity: int, before: float) -> int:
	"""The latest minute (Unix s) at or before ``before`` whose minute number has this parity."""
	minute = int(before) // 60 * 60
	return minute if (minute // 60) % 2 == parity else minute - 60


@pytest.fixture
def lead(redis_url):
	"""One daemon's context, consumer and scheduler holding the lease on the test's Redis."""
	e = Env(redis_url)
	e.lead()
	yield e
	e.ctx.store.close()


def queued_fire_times(e) -> list[int]:
	return sorted(int(job_id.split("-")[-2]) for job_id in e.queued_ids())


def test_a_changed_rule_replaces_a_due_fire_time_it_lacks_by_its_latest_missed_one_run_once(lead):
	e = lead
	e.upsert(row("TS-1", "* * * * *"))
	old = _minute_ago(1, time.time() - 120)  # an odd minute, due, not run
	e.at("TS-1", old)
	e.upsert(row("TS-1", "*/2 * * * *"))
	now = time.time()
	latest_even = _minute_ago(0, now)
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) == latest_even
	assert int(e.client.get(e.keys.rule_edits(PREP_SITE))) == 1
	assert e.scheduler.fire(PREP_SITE, e.ctx.store.due(PREP_SITE, time.time(), 100)) == 1
	assert queued_fire_times(e) == [latest_even]  # the old rule's time never runs
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) == latest_even + 120


def test_a_changed_rule_whose_latest_missed_time_already_ran_just_moves_to_its_next_one(lead):
	e = lead
	e.upsert(row("TS-1", "* * * * *"))
	latest_even = _minute_ago(0, time.time())
	e.client.hset(e.keys.fired(PREP_SITE, latest_even), "TS-1", "btu-ran-before")  # it ran under the old rule
	e.at("TS-1", latest_even + 60)
	wait_until(latest_even + 61)  # the odd minute is due
	e.upsert(row("TS-1", "*/2 * * * *"))
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) == latest_even + 120
	assert e.ctx.store.due(PREP_SITE, time.time(), 100) == []


def test_an_edit_that_keeps_the_times_keeps_the_due_fire_time(lead):
	e = lead
	e.upsert(row("TS-1", "* * * * *"))
	old = int(time.time()) // 60 * 60 - 180  # due, three minutes ago
	e.at("TS-1", old)
	e.upsert(row("TS-1", "*/1 * * * *"))  # another rule text, the same fire times
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) == old
	assert e.scheduler.fire(PREP_SITE, e.ctx.store.due(PREP_SITE, time.time(), 100)) == 1
	assert queued_fire_times(e) == [old]  # once, standing for the minutes since


def test_a_pending_time_the_current_rule_lacks_is_never_fired_by_the_scheduler(lead):
	"""Written under another rule (an older daemon kept it across the edit): the scheduler drops it
	and goes on by the current rule."""
	e = lead
	e.upsert(row("TS-1", "*/2 * * * *"))
	old = _minute_ago(1, time.time() - 120)
	e.at("TS-1", old)  # an odd minute under an even-minute rule
	assert e.scheduler.fire(PREP_SITE, e.ctx.store.due(PREP_SITE, time.time(), 100)) == 0
	latest_even = _minute_ago(0, time.time())
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) == latest_even  # its catch-up, next pass
	e.scheduler.fire(PREP_SITE, e.ctx.store.due(PREP_SITE, time.time(), 100))
	assert queued_fire_times(e) == [latest_even]


def test_a_remembered_fire_time_of_another_rule_is_never_caught_up(lead):
	"""The leader's memory pairs the current timing with a time the rule lacks (a scheduler pass that
	moved the schedule by the rule it had read); Redis loses its data: the resync ignores that time."""
	e = lead
	e.upsert(row("TS-1", "*/2 * * * *"))
	timing = e.client.hget(e.keys.timings(PREP_SITE), "TS-1").decode()
	old = _minute_ago(1, time.time() - 120)
	e.ctx.memory.synced(PREP_SITE, [("TS-1", timing, old)], leader=True)
	e.ctx.memory.advanced(PREP_SITE, [("TS-1", old)])
	for key in (e.keys.next_runs(PREP_SITE), e.keys.specs(PREP_SITE), e.keys.timings(PREP_SITE)):
		e.client.delete(key)  # Redis lost its data
	e.upsert(row("TS-1", "*/2 * * * *"))
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) > time.time()


def test_a_run_prepared_under_the_old_rule_is_never_made_visible(lead):
	"""Prepared ahead for F under a rule that has F; the rule changes to one without F before F: at F
	neither the prepared step nor the ordinary path runs anything; the new rule's time comes next."""
	e = lead
	fire = int(time.time()) + 2
	at = time.gmtime(fire)
	e.upsert(row("TS-1", f"{at.tm_sec} {at.tm_min} {at.tm_hour} {at.tm_mday} {at.tm_mon} *"))
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) == fire
	assert e.preparer.prepare_fire_time(PREP_SITE, fire) == 1
	e.upsert(row("TS-1", "0 0 1 1 *"))  # edited before F: F is not one of its times
	wait_until(fire + 0.2)
	e.fire()
	assert e.scheduler.fire(PREP_SITE, e.ctx.store.due(PREP_SITE, time.time(), 100)) == 0
	assert e.queued_ids() == []
	assert not e.client.exists(Job.key_for(job_id_for(PREP_SITE, "TS-1", fire)))
	year = time.gmtime(fire).tm_year + 1
	assert int(e.client.zscore(e.keys.next_runs(PREP_SITE), "TS-1")) == calendar.timegm((year, 1, 1, 0, 0, 0))
