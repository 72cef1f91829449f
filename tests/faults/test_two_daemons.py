"""Two daemons on one bench (same Redis and bench_id, their own sockets): one enqueues, the other
stands by and takes over within the lease time when the leader dies or freezes."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from btu.contracts.redis_keys import KEYS

from .harness import (
	SITE,
	STATS,
	Outage,
	add_every_second,
	add_jittered,
	check_runs,
	log_time,
	queued_runs,
	scale,
	wait_caught_up,
	wait_for,
)
from .test_kill import seed

pytestmark = pytest.mark.faults
LEASE_TTL = 3
NEXT_RUNS = KEYS.next_runs(SITE)


def leader_of(*daemons):
	leaders = [d for d in daemons if d.process.alive() and d.request("ping").data.get("leader")]
	return leaders


def test_only_the_lease_holder_enqueues_and_the_standby_takes_over(bench):
	rng = random.Random(seed())
	rounds = scale(4, 16)
	crons = add_every_second(bench.site_db, 6)
	bench.site_db.add_schedule("TS-D2", "BTU-F0001", "*/2 * * * * *")
	crons["TS-D2"] = "*/2 * * * * *"
	add_jittered(bench.site_db, crons)
	a = bench.daemon("a", lease_ttl=LEASE_TTL, full_refresh_interval=4)
	b = bench.daemon("b", lease_ttl=LEASE_TTL, full_refresh_interval=4)
	assert a.socket_path != b.socket_path
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	start = max(s for _, s in client.zrange(NEXT_RUNS, 0, -1, withscores=True))
	wait_for(lambda: len(leader_of(a, b)) == 1, 10, what="one leader")
	outages = []
	handovers = []  # (time, new leader name)
	for i in range(rounds):
		time.sleep(rng.uniform(1.5, 3.5))
		leaders = leader_of(a, b)
		assert len(leaders) == 1, "exactly one daemon holds the lease"
		leader = leaders[0]
		standby = b if leader is a else a
		assert standby.request("ping").data["leader"] is False
		faulted_at = time.time()
		if i % 2 == 0:
			leader.sigkill()
			STATS.add(bench.test_name, faults_injected=1, daemon_sigkills=1)
		else:
			# Frozen longer than the lease (a stuck VM, a GC pause): it must not enqueue on waking.
			os.kill(leader.process.pid, signal.SIGSTOP)
			STATS.add(bench.test_name, faults_injected=1)
		wait_for(
			lambda: standby.request("ping").data["leader"],
			LEASE_TTL + 3,
			0.05,
			what="the standby to take over",
		)
		# (how long the take-over took is a figure for the long run's report, not an assertion)
		handovers.append((faulted_at, standby.name))
		STATS.add(bench.test_name, leader_takeovers=1)
		if i % 2 == 0:
			leader.start()
		else:
			os.kill(leader.process.pid, signal.SIGCONT)
		wait_for(lambda: leader.request("ping").ok, 10, what="the old leader to answer")
		wait_for(lambda: leader.request("ping").data["leader"] is False, 5, what="the old leader to stand by")
		outages.append(Outage(faulted_at, faulted_at + LEASE_TTL + 2))
	end = time.time() + 1
	wait_caught_up(client, crons, end, 30)
	verdict = check_runs(queued_runs(client, crons), crons, start, end, outages)
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] {rounds} leader faults: {verdict.summary()}")
	assert verdict.ok, verdict.summary()
	# Only the lease holder enqueued: after each handover, every run_enqueued line comes from the new leader.
	events = sorted([(log_time(e), d.name) for d in (a, b) for e in d.events("run_enqueued")])
	for (at, name), nxt in zip(handovers, handovers[1:] + [(float("inf"), None)]):
		window = [who for t, who in events if at + LEASE_TTL + LEASE_TTL / 3 + 1.0 < t < nxt[0]]
		assert set(window) <= {name}, f"runs enqueued by a standby between {at} and {nxt[0]}"


def test_two_daemons_and_a_redis_restart_no_stale_catch_up(bench):
	"""After Redis lost everything both daemons resync; the standby's memory of fire times is older
	than the leader's: whichever writes first, no run already enqueued is enqueued again."""
	rng = random.Random(seed())
	crons = add_every_second(bench.site_db, 6)
	a = bench.daemon("a", lease_ttl=LEASE_TTL, full_refresh_interval=600)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	b = bench.daemon("b", lease_ttl=LEASE_TTL, full_refresh_interval=600)
	start = max(s for _, s in client.zrange(NEXT_RUNS, 0, -1, withscores=True))
	ledger, outages = [], []
	for _ in range(scale(3, 8)):
		time.sleep(rng.uniform(3.0, 5.0))
		while time.time() % 1 < 0.4 or time.time() % 1 > 0.6:
			time.sleep(0.01)
		ledger += queued_runs(client, crons)
		went_down = time.time()
		# The leader stalls for a moment (shorter than the lease) just as Redis comes back empty,
		# so the standby's resync, from its older memory of fire times, lands first.
		leader = leader_of(a, b)[0]
		standby = b if leader is a else a
		os.kill(leader.process.pid, signal.SIGSTOP)
		try:
			bench.redis.restart(rng.choice([0.0, 0.0, 1.0]))
			assert standby.request("refresh").ok
			time.sleep(0.5)
		finally:
			os.kill(leader.process.pid, signal.SIGCONT)
		STATS.add(bench.test_name, faults_injected=1, redis_restarts=1)
		client = bench.client()
		wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules back in the new Redis")
		outages.append(Outage(went_down, time.time() + 1.5))
	end = time.time() + 1
	wait_caught_up(client, crons, end, 30)
	ledger += queued_runs(client, crons)
	verdict = check_runs(ledger, crons, start, end, outages)
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] two daemons, Redis restarts: {verdict.summary()}")
	assert verdict.ok, verdict.summary()
