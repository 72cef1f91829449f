"""Chains under daemon SIGKILLs: every run of task A starts task B once, as a one-shot that A's worker
writes (as BTU's runner does in a site), whatever the daemon was doing when it was killed."""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter

import pytest

from btu.contracts.redis_keys import KEYS

from .harness import RECORD_JOB, SITE, STATS, recorded_runs, scale, wait_for
from .test_kill import seed

pytestmark = pytest.mark.faults
CHAIN = "tests.faults.tasks.record_and_chain"


def test_every_run_of_a_starts_b_exactly_once_through_daemon_kills(bench):
	rng = random.Random(seed())
	kills = scale(6, 40)
	ledger = os.path.join(bench.workdir, "chain-runs.jsonl")
	config_path, socket_path = bench.config("d", lease_ttl=2, full_refresh_interval=3)
	db = {**bench.site_db.args, "database": bench.site_db.name}
	bench.site_db.add_task("BTU-B", RECORD_JOB, {"path": ledger})
	bench.site_db.add_task(
		"BTU-A",
		CHAIN,
		json.dumps({"path": ledger, "db": db, "socket_path": socket_path, "next_task": "BTU-B"}),
	)
	bench.site_db.add_schedule("TS-A", "BTU-A", "*/2 * * * * *")
	daemon = bench.daemon("d", lease_ttl=2, full_refresh_interval=3)
	bench.worker()
	bench.worker(name="worker2")
	client = bench.client()
	wait_for(lambda: client.zscore(KEYS.next_runs(SITE), "TS-A"), 20, what="TS-A planned")
	for _ in range(kills):
		time.sleep(rng.uniform(0.3, 3.0))
		daemon.sigkill()
		STATS.add(bench.test_name, faults_injected=1, daemon_sigkills=1)
		time.sleep(rng.choice([0.0, rng.uniform(0.0, 2.0)]))
		daemon.start()
	bench.site_db.update_schedule("TS-A", enabled=0)
	assert daemon.request("cancel_task_schedule", "TS-A", SITE).ok
	time.sleep(2)  # A's last run (if any) writes its B

	def chained() -> tuple[Counter, Counter]:
		runs = recorded_runs(ledger)
		a_runs = Counter(r.fire_ts for r in runs if r.schedule == "TS-A")
		b_runs = Counter(r.schedule for r in runs if r.schedule and r.schedule.startswith("TS-CH"))
		return a_runs, b_runs

	def every_b_ran() -> bool:
		a_runs, b_runs = chained()
		return all(f"TS-CH{ts}" in b_runs for ts in a_runs)

	wait_for(every_b_ran, 60, 0.5, what="B's run for every run of A")
	a_runs, b_runs = chained()
	assert a_runs and max(a_runs.values()) == 1, "an A run executed twice"
	assert set(b_runs) == {f"TS-CH{ts}" for ts in a_runs}, "a B without its A, or missing"
	doubled = [name for name, n in b_runs.items() if n > 1]
	STATS.add(bench.test_name, chained_runs=len(b_runs), chained_doubled=len(doubled))
	print(
		f"[faults] {kills} kills: {len(a_runs)} runs of A, {len(b_runs)} chained runs of B, {len(doubled)} doubled"
	)
	assert not doubled, doubled
	assert not daemon.crashes()
