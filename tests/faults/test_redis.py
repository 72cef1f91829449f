"""Redis restarted (everything in it lost) or unreachable while runs are due."""

from __future__ import annotations

import random
import time

import pytest

from btu.contracts.redis_keys import KEYS

from .harness import (
	STATS,
	Outage,
	add_every_second,
	add_jittered,
	check_runs,
	queued_runs,
	scale,
	sleep_until_fraction,
	wait_caught_up,
	wait_for,
)
from .test_kill import seed

pytestmark = pytest.mark.faults
NEXT_RUNS = KEYS.next_runs("faults.localhost")


def _schedules(site_db) -> dict[str, object]:
	crons = add_every_second(site_db, 6)
	for name, cron in (("TS-R2", "*/2 * * * * *"), ("TS-R5", "*/5 * * * * *")):
		site_db.add_schedule(name, "BTU-F0001", cron)
		crons[name] = cron
	add_jittered(site_db, crons)
	return crons


def test_redis_restart_loses_all_data_yet_no_run_is_skipped_or_doubled(bench):
	"""A redis-server without persistence restarted (quickly, or after seconds down): the daemon
	notices, rebuilds its keys from SQL and catches up from its in-memory next fire times."""
	rng = random.Random(seed())
	crons = _schedules(bench.site_db)
	daemon = bench.daemon("d", lease_ttl=3)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	start = max(s for _, s in client.zrange(NEXT_RUNS, 0, -1, withscores=True))
	ledger = []
	outages = []
	downtimes = scale([0.0, 3.0, 0.3], [0.0, 3.0, 0.3, 0.0, 6.0, 0.0, 1.0, 0.0, 10.0, 0.0])
	for down in downtimes:
		time.sleep(rng.uniform(1.0, 3.0))
		# Mid-second, when no run is being enqueued: the jobs of this Redis life are all in the snapshot.
		sleep_until_fraction(0.5)
		ledger += queued_runs(client, crons)
		went_down = time.time()
		bench.redis.restart(down)
		STATS.add(bench.test_name, faults_injected=1, redis_restarts=1)
		client = bench.client()
		# The daemon must find out by itself (a quick restart may raise no error at all) and catch up.
		wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules back in the new Redis")
		outages.append(Outage(went_down, time.time() + 1.5))
	assert daemon.request("ping").ok
	end = time.time() + 1
	wait_caught_up(client, crons, end, 30)
	ledger += queued_runs(client, crons)
	verdict = check_runs(ledger, crons, start, end, outages)
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] {len(downtimes)} Redis restarts: {verdict.summary()}")
	assert verdict.ok, verdict.summary()


def test_redis_unreachable_then_back_runs_resume_exactly_once(bench):
	"""The redis-server frozen (SIGSTOP: connections hang, nothing answers) while runs fall due."""
	pause = scale(5.0, 30.0)
	crons = _schedules(bench.site_db)
	daemon = bench.daemon("d", lease_ttl=3)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	start = max(s for _, s in client.zrange(NEXT_RUNS, 0, -1, withscores=True))
	time.sleep(2)
	sleep_until_fraction(0.5)
	frozen_at = time.time()
	bench.redis.pause()
	STATS.add(bench.test_name, faults_injected=1, redis_pauses=1)
	try:
		time.sleep(1.0)
		assert daemon.request("ping").ok  # the socket does not depend on Redis
		time.sleep(max(0.0, pause - (time.time() - frozen_at)))
	finally:
		bench.redis.resume()
	outage = Outage(frozen_at, time.time() + 15)
	wait_for(lambda: daemon.request("ping").ok, 10, what="ping after the outage")
	end = time.time() + 3
	wait_caught_up(client, crons, end, 60)
	verdict = check_runs(queued_runs(client, crons), crons, start, end, [outage])
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] Redis frozen {pause:g} s: {verdict.summary()}")
	assert verdict.ok, verdict.summary()
	# Runs came back on time after the outage: the last ones are not late.
	assert daemon.request("status").data["redis_ok"] is True
