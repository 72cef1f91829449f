"""The daemon SIGKILLed at random moments and restarted: no run skipped, none doubled."""

from __future__ import annotations

import os
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
	markers,
	queued_runs,
	scale,
	wait_caught_up,
	wait_for,
)

pytestmark = pytest.mark.faults
LEASE_TTL = 2
TAKEOVER_MARGIN = (
	2.0  # s after the lease expires by which a waiting life has surely taken it (it polls every ttl/3)
)


def seed() -> int:
	value = int(os.environ.get("BTU_FAULTS_SEED") or time.time())
	print(f"[faults] random seed {value} (BTU_FAULTS_SEED={value} replays it)")
	return value


def test_sigkill_at_random_moments_neither_skips_nor_doubles(bench):
	rng = random.Random(seed())
	kills = scale(10, 100)
	crons = add_every_second(bench.site_db, 12)
	for name, cron in (("TS-K2", "*/2 * * * * *"), ("TS-K3", "1/3 * * * * *"), ("TS-K7", "*/7 * * * * *")):
		bench.site_db.add_schedule(name, "BTU-F0001", cron)
		crons[name] = cron
	add_jittered(bench.site_db, crons)  # jitter in use: the delayed times, exactly once each
	# A short full refresh interval so that kills also land inside refreshes.
	daemon = bench.daemon("d", lease_ttl=LEASE_TTL, full_refresh_interval=5)
	client = bench.client()
	wait_for(
		lambda: client.zcard(KEYS.next_runs("faults.localhost")) == len(crons), 20, what="schedules in Redis"
	)
	start = max(s for _, s in client.zrange(KEYS.next_runs("faults.localhost"), 0, -1, withscores=True))
	outages: list[Outage] = []
	early_kills = 0
	# Lives that outlived the dead holder's lease by a clear margin: each must have taken it over.
	last_kill = time.time() - LEASE_TTL  # (the first life started with no lease to wait for)
	takeovers_due = 1  # the last life's (asserted below through ping as well)
	for k in range(kills):
		time.sleep(rng.uniform(0.05, 2.5))
		if k % 4 == 3:  # every fourth life lives until it must have taken the lease over
			time.sleep(max(0.0, last_kill + LEASE_TTL + TAKEOVER_MARGIN + 0.2 - time.time()))
		killed_at = time.time()
		if killed_at - last_kill >= LEASE_TTL + TAKEOVER_MARGIN:
			takeovers_due += 1
		daemon.sigkill()
		early_killed_at = 0.0
		STATS.add(bench.test_name, faults_injected=1, daemon_sigkills=1)
		if rng.random() < 0.2:
			# Killed again while starting up (socket bound, first refresh or lease wait in progress).
			daemon.start(wait=False)
			time.sleep(rng.uniform(0.2, 1.2))
			daemon.sigkill()
			early_killed_at = time.time()
			early_kills += 1
			STATS.add(bench.test_name, faults_injected=1, daemon_sigkills=1)
		else:
			time.sleep(rng.choice([0.0, 0.0, rng.uniform(0.0, 2.0)]))
		daemon.start()  # removes the stale socket file itself, then waits for the lease
		outages.append(Outage(killed_at, time.time() + LEASE_TTL + 1.5))
		last_kill = max(killed_at, early_killed_at)
	end = time.time() + LEASE_TTL + 1
	wait_caught_up(client, crons, end, 30)
	runs = queued_runs(client, crons)
	verdict = check_runs(runs, crons, start, end, outages)
	STATS.verdict(bench.test_name, verdict)
	print(f"[faults] {kills} kills ({early_kills} more during start-up): {verdict.summary()}")
	assert verdict.ok, verdict.summary()
	# The markers and the jobs were written in one transaction: the same set, whatever the kills.
	# (The daemon goes on firing after the runs were read: only fire times up to then are compared.)
	read_at = max((r.fire_ts for r in runs), default=0)
	for name in crons:
		jobs = {r.fire_ts for r in runs if r.schedule == name}
		assert {ts for ts in markers(client, name) if ts <= read_at} == jobs, name
	log = daemon.log()
	assert log.count("event=stale_socket_removed") >= kills - 1
	# A life waits for the dead holder's lease to expire, then takes it over: every life that lived
	# well past that did (one killed sooner may never have held it).
	acquired = log.count("event=lease_acquired")
	print(f"[faults] lease taken {acquired} times; {takeovers_due} lives outlived the dead holder's lease")
	assert acquired >= takeovers_due
	assert daemon.request("ping").data["leader"] is True
