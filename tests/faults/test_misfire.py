"""Misfires: the daemon down across several fire times, then back (docs/architecture.md "After downtime")."""

from __future__ import annotations

import time

import pytest

from btu.contracts.redis_keys import KEYS

from .harness import (
	SITE,
	STATS,
	Outage,
	add_every_second,
	check_runs,
	log_time,
	queued_runs,
	sleep_until_fraction,
	wait_caught_up,
	wait_for,
)

pytestmark = pytest.mark.faults
NEXT_RUNS = KEYS.next_runs(SITE)


def test_down_within_misfire_grace_one_catch_up_run(bench):
	crons = add_every_second(bench.site_db, 2)
	bench.site_db.add_schedule("TS-M2", "BTU-F0001", "*/2 * * * * *")
	crons["TS-M2"] = "*/2 * * * * *"
	daemon = bench.daemon("d", misfire_grace=10)
	client = bench.client()
	wait_for(lambda: client.zcard(NEXT_RUNS) == len(crons), 20, what="schedules in Redis")
	start = max(s for _, s in client.zrange(NEXT_RUNS, 0, -1, withscores=True))
	time.sleep(2)
	sleep_until_fraction(0.5)
	stopped = time.time()
	daemon.stop()
	STATS.add(bench.test_name, faults_injected=1)
	time.sleep(5)
	daemon.start()
	outage = Outage(stopped, time.time() + 1.5)
	end = time.time() + 2
	wait_caught_up(client, crons, end, 20)
	runs = queued_runs(client, crons)
	verdict = check_runs(runs, crons, start, end, [outage])
	STATS.verdict(bench.test_name, verdict)
	assert verdict.ok, verdict.summary()
	assert verdict.collapsed >= 3 * len(crons) - 1, verdict.summary()
	# One late run per schedule stands for the missed ones, and the log says so.
	late = [e for e in daemon.events("run_enqueued") if e.get("missed_fire_times_collapsed")]
	assert {e["schedule"] for e in late} == set(crons), late
	assert all(3000 <= float(e["late_ms"]) <= 10000 for e in late), late
	assert "event=run_skipped_misfire" not in daemon.log()


def test_down_longer_than_misfire_grace_no_stale_run_and_logged(bench):
	"""Grace 2 s, down about 7 s. A once-a-minute schedule whose only missed fire time is older
	than the grace is skipped (logged); an every-second one still gets one run, for a fire time
	that is within the grace (docs/architecture.md: runs at most misfire_grace late are enqueued once)."""
	bench.site_db.add_task("BTU-F0001", "btu.scheduler_daemon.demo_tasks.record_run", {"path": "/dev/null"})
	now = time.time()
	minute_second = int(now + 6) % 60
	crons = {"TS-M60": f"{minute_second} * * * * *", "TS-M1": "* * * * * *"}
	for name, cron in crons.items():
		bench.site_db.add_schedule(name, "BTU-F0001", cron)
	target = int(now + 6)
	daemon = bench.daemon("d", misfire_grace=2)
	client = bench.client()
	wait_for(
		lambda: client.zscore(NEXT_RUNS, "TS-M60") == target, 20, what="the once-a-minute schedule in Redis"
	)
	time.sleep(max(0.0, target - 1.5 - time.time()))
	daemon.stop()
	STATS.add(bench.test_name, faults_injected=1)
	stopped = time.time()
	time.sleep(max(0.0, target + 6 - time.time()))
	daemon.start()
	wait_for(
		lambda: client.zscore(NEXT_RUNS, "TS-M60") == target + 60, 10, what="TS-M60 moved to the next minute"
	)
	time.sleep(2)
	runs = queued_runs(client, crons)
	m60 = [r.fire_ts for r in runs if r.schedule == "TS-M60"]
	assert target not in m60, "a run older than misfire_grace was enqueued"
	skipped = daemon.events("run_skipped_misfire")
	assert any(e["schedule"] == "TS-M60" and e["misfire_grace_s"] == "2" for e in skipped), skipped
	# TS-M1: its missed fire times older than 2 s are skipped (logged), one run stands for the rest.
	restarted = log_time(daemon.events("daemon_started")[-1])
	m1 = sorted(
		(r for r in runs if r.schedule == "TS-M1" and stopped < r.fire_ts <= restarted + 1),
		key=lambda r: r.fire_ts,
	)
	late_runs = [r for r in m1 if r.enqueued_at and r.enqueued_at - r.fire_ts > 0.9]
	assert len(late_runs) == 1, f"expected one catch-up run within the grace, got {late_runs}"
	assert late_runs[0].enqueued_at - late_runs[0].fire_ts <= 2.0 + 0.5, late_runs
	assert any(e["schedule"] == "TS-M1" for e in skipped), skipped
	verdict = check_runs(runs, {"TS-M1": crons["TS-M1"]}, late_runs[0].enqueued_at + 1, time.time() - 2)
	STATS.verdict(bench.test_name, verdict)
	assert verdict.ok, verdict.summary()
