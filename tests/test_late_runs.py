"""The worker's late-run rules (btu.btu_core.late_runs, frappe-free) against a real Redis: the start
deadline, one late run per backlog, and the claim's atomicity when several workers start runs of
one schedule at once. (The whole path through a real daemon and rq worker on a Frappe site is
btu/btu_core/doctype/btu_task_schedule/test_late_runs.py, run by ``bench run-tests``.)"""

from __future__ import annotations

import threading

from btu.btu_core.late_runs import LateRunClaim, decide_start, effective_deadline
from btu.contracts.fire_times import FireTimes
from btu.contracts.redis_keys import RedisKeys

KEYS = RedisKeys("btulate")
SITE = "late.localhost"
EVERY_MINUTE = "* * * * *"
T0 = 1_800_000_000  # a whole minute


def claim(client, schedule: str = "TS-1") -> LateRunClaim:
	return LateRunClaim(client, KEYS, SITE, schedule)


def decide(client, fire_ts, now, enqueued=None, deadline=3600, cron=EVERY_MINUTE, schedule="TS-1"):
	return decide_start(
		fire_ts=fire_ts,
		now=now,
		deadline=deadline,
		next_after=FireTimes(cron, "UTC").next_after if cron else None,
		enqueued_ts=fire_ts if enqueued is None else enqueued,
		claim=claim(client, schedule),
	)


def test_a_run_on_time_runs_and_claims_nothing(redis_client):
	decision = decide(redis_client, T0, T0 + 30)
	assert decision.skip_reason is None and not decision.late
	assert redis_client.get(KEYS.late_run(SITE, "TS-1")) is None


def test_a_backlog_drains_into_one_late_run(redis_client):
	# Six runs queued at their fire times T0 .. T0+300 while no worker listened; a worker comes at
	# T0+330 and takes them in order, one second apart.
	backlog = [T0 + 60 * i for i in range(6)]
	decisions = [decide(redis_client, fire, T0 + 330 + i) for i, fire in enumerate(backlog)]
	assert [d.skip_reason is None for d in decisions] == [True, False, False, False, False, False]
	assert decisions[0].late
	assert all("covered it" in d.skip_reason for d in decisions[1:])
	assert "it waited 4 min 31 s for a worker" in decisions[1].skip_reason  # T0+60 started at T0+331
	assert not decisions[5].late  # its own interval was not over: covered all the same
	# A run queued after the late run started is judged afresh: on time, it runs.
	assert decide(redis_client, T0 + 360, T0 + 361, enqueued=T0 + 360).skip_reason is None
	# A later backlog (the worker went away again) gets its own one late run.
	again = [
		decide(redis_client, T0 + 600 + 60 * i, T0 + 900 + i, enqueued=T0 + 600 + 60 * i) for i in range(3)
	]
	assert [d.skip_reason is None for d in again] == [True, False, False]
	assert redis_client.ttl(KEYS.late_run(SITE, "TS-1")) > 0  # the claim expires by itself


def test_schedules_are_judged_apart(redis_client):
	assert decide(redis_client, T0, T0 + 200, schedule="TS-A").skip_reason is None
	assert decide(redis_client, T0, T0 + 200, schedule="TS-B").skip_reason is None
	assert decide(redis_client, T0 + 60, T0 + 201, schedule="TS-A").skip_reason is not None


def test_the_start_deadline(redis_client):
	late = decide(redis_client, T0, T0 + 601, deadline=600)
	assert late.skip_reason.startswith("Not run: it reached a worker 10 min 1 s after its fire time")
	assert "beyond its start deadline of 10 min" in late.skip_reason
	assert decide(redis_client, T0, T0 + 599, deadline=600, cron=None).skip_reason is None
	# 0 means no deadline; a one-shot (no rule) is judged by the deadline alone.
	assert decide(redis_client, T0, T0 + 86_400, deadline=0, cron=None).skip_reason is None
	assert effective_deadline(0, 3600) == 3600 and effective_deadline(120, 3600) == 120
	assert effective_deadline(None, None) == 0 and effective_deadline("x", "60") == 60


def test_workers_racing_on_one_backlog_run_it_once(redis_client):
	"""Eight workers start the eight runs of one backlog at the same moment: one runs."""
	barrier = threading.Barrier(8)
	results: list[bool] = []
	lock = threading.Lock()

	def start(i: int) -> None:
		barrier.wait()
		decision = decide(
			redis_client.__class__(connection_pool=redis_client.connection_pool), T0 + 60 * i, T0 + 600
		)
		with lock:
			results.append(decision.skip_reason is None)

	threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
	for thread in threads:
		thread.start()
	for thread in threads:
		thread.join(30)
	assert sorted(results) == [False] * 7 + [True]
