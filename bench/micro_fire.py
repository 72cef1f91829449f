"""Micro-benchmark of the daemon's hot paths without MariaDB or a running daemon (profiling aid).

    bench/.venvs/btu/bin/python bench/micro_fire.py [--n 20000] [--profile]

fire: N schedules due now, the real Scheduler.fire() batches until none is due (runs/s).
upsert: the consumer's _apply() on N rows as a full refresh hands them over (rows/s).
prepared: N schedules due at one fire time a little ahead: the real Preparer prepares them (daemon
  and Redis CPU a run), then at the fire time the real visibility steps make them visible (time from
  the fire time to the last one visible, Redis CPU a run), beside the limit probe (bench/limit_probe.py)
  on the same Redis.
Uses its own private redis-server; logs go to a file at INFO like the daemon's.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

# BTU_SRC: run against another checkout of the code (e.g. ``git archive HEAD~3`` unpacked) to compare.
sys.path.insert(0, os.environ.get("BTU_SRC") or str(Path(__file__).resolve().parent.parent))

from btu.scheduler_daemon.config import DaemonConfig, SiteConfig  # noqa: E402
from btu.scheduler_daemon.consumer import Consumer  # noqa: E402
from btu.scheduler_daemon.context import DaemonContext  # noqa: E402
from btu.scheduler_daemon.logutil import setup_logging  # noqa: E402
from btu.scheduler_daemon.scheduler import BATCH, Scheduler  # noqa: E402
from tests.services import RedisServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import limit_probe  # noqa: E402

SITE = "bench.localhost"


def row(i: int) -> dict:
	return {
		"name": f"TS-{i:07d}",
		"enabled": 1,
		"task": "BTU-00001",
		"queue_name": "default",
		"run_frequency": "Cron Style",
		"minute": None,
		"hour": None,
		"day_of_week": None,
		"day_of_month": None,
		"month": None,
		"cron_string": "0 0 1 1 *",
		"cron_timezone": "UTC",
		"argument_overrides": None,
		"task_found": "BTU-00001",
		"task_docstatus": 1,
		"function_string": "bench_noop.noop",
		"arguments": None,
		"max_task_duration": 600,
		"task_queue_name": "default",
		"desc_short": "bench no-op",
	}


def main() -> None:
	parser = argparse.ArgumentParser()
	parser.add_argument("--n", type=int, default=20000)
	parser.add_argument("--profile", action="store_true")
	parser.add_argument("--only", choices=["fire", "upsert", "prepared"], default=None)
	args = parser.parse_args()
	workdir = tempfile.mkdtemp(prefix="btu-micro-", dir="/tmp")
	server = RedisServer(workdir).start()
	log_file = open(os.path.join(workdir, "daemon.log"), "w")
	setup_logging("INFO", log_file)
	try:
		config = DaemonConfig(
			sites=(SiteConfig(name=SITE, db_name="unused", db_user="root"),),
			redis_url=server.url(0),
			job_mode="plain",
			bench_id="micro",
		)
		ctx = DaemonContext(config)
		consumer = Consumer(ctx)
		rows = [(f"TS-{i:07d}", row(i)) for i in range(args.n)]
		profiler = cProfile.Profile() if args.profile else None

		if args.only == "prepared":
			run_prepared(ctx, consumer, rows, profiler)
		elif args.only in (None, "upsert"):
			started, cpu = time.perf_counter(), time.process_time()
			if profiler:
				profiler.enable()
			for start in range(0, len(rows), 500):
				consumer._apply(SITE, rows[start : start + 500], [], verbose=False)
			if profiler:
				profiler.disable()
			took, cpu = time.perf_counter() - started, time.process_time() - cpu
			print(
				f"upsert: {args.n} rows in {took:.2f} s = {args.n / took:,.0f} rows/s, CPU {cpu * 1e6 / args.n:.0f} us/row"
			)
		else:
			for start in range(0, len(rows), 500):
				consumer._apply(SITE, rows[start : start + 500], [], verbose=False)

		if args.only in (None, "fire"):
			client = ctx.store.client(SITE)
			client.config_resetstat()
			due_at = int(time.time()) - 1
			# A rule that has this fire time (the fire path never runs a time its rule lacks).
			at = time.gmtime(due_at)
			rule = f"{at.tm_sec} {at.tm_min} {at.tm_hour} {at.tm_mday} {at.tm_mon} *"
			rows = [(name, {**values, "cron_string": rule}) for name, values in rows]
			for start in range(0, len(rows), 500):
				consumer._apply(SITE, rows[start : start + 500], [], verbose=False)
			client.zadd(ctx.store.keys.next_runs(SITE), {name: due_at for name, _ in rows})
			scheduler = Scheduler(ctx)
			assert scheduler._check_lease()
			redis_cpu = lambda: sum(
				float(v) for k, v in client.info("cpu").items() if k in ("used_cpu_user", "used_cpu_sys")
			)
			started, cpu, rcpu = time.perf_counter(), time.process_time(), redis_cpu()
			if profiler:
				profiler.enable()
			fired = 0
			while True:
				due = ctx.store.due(SITE, time.time(), BATCH)
				if not due:
					break
				fired += scheduler.fire(SITE, due)
			if profiler:
				profiler.disable()
			took, cpu, rcpu = time.perf_counter() - started, time.process_time() - cpu, redis_cpu() - rcpu
			queued = client.llen("rq:queue:default")
			if os.environ.get("MICRO_COMMANDSTATS"):
				stats = client.info("commandstats")
				for name, stat in sorted(stats.items(), key=lambda kv: -kv[1]["usec"])[:12]:
					print(
						f"  {name:28s} calls {stat['calls']:>8} usec {stat['usec']:>9} per call {stat['usec_per_call']:.2f}"
					)
			print(
				f"fire: {fired} runs in {took:.2f} s = {fired / took:,.0f} runs/s, daemon CPU {cpu * 1e6 / fired:.0f} "
				f"us/run, redis-server CPU {rcpu * 1e6 / fired:.0f} us/run ({queued} on the queue)"
			)
		if profiler:
			stats = pstats.Stats(profiler)
			stats.sort_stats("cumulative").print_stats(45)
			stats.sort_stats("tottime").print_stats(25)
	finally:
		log_file.close()
		server.stop()
		shutil.rmtree(workdir, ignore_errors=True)


def redis_cpu(client) -> float:
	info = client.info("cpu")
	return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_prepared(ctx, consumer, rows, profiler) -> None:
	from btu.scheduler_daemon import prepared

	n = len(rows)
	for start in range(0, n, 500):
		consumer._apply(SITE, rows[start : start + 500], [], verbose=False)
	client = ctx.store.client(SITE)
	scheduler = Scheduler(ctx)
	assert scheduler._check_lease()
	runs = prepared.PreparedRuns()
	preparer = prepared.Preparer(ctx, runs, lambda: scheduler.lease.holder_id)
	# One fire time far enough ahead for the preparation (measured at ~100 us a run at most here).
	fire = int(time.time() + 2 + n * 500e-6)
	client.zadd(ctx.store.keys.next_runs(SITE), {name: fire for name, _ in rows})
	cpu, rcpu, started = time.process_time(), redis_cpu(client), time.perf_counter()
	if profiler:
		profiler.enable()
	done = preparer.prepare_fire_time(SITE, fire)
	if profiler:
		profiler.disable()
	took, cpu, rcpu = time.perf_counter() - started, time.process_time() - cpu, redis_cpu(client) - rcpu
	print(
		f"prepare: {done} runs in {took:.2f} s, daemon CPU {cpu * 1e6 / n:.0f} us/run, "
		f"redis-server CPU {rcpu * 1e6 / n:.0f} us/run"
	)
	if time.time() >= fire:
		print("prepare: not done before the fire time; no visibility figures")
		return
	chunks = runs.take_due(SITE, fire)
	while time.time() < fire - 0.05:
		time.sleep(min(0.01, max(0.0, fire - 0.05 - time.time())))
	assert scheduler.lease.acquire_or_renew()  # renewed as the scheduler would (the wait outlasts lease_ttl)
	while time.time() < fire:
		time.sleep(min(0.001, max(0.0, fire - time.time())))
	client.config_resetstat()
	rcpu, late_start = redis_cpu(client), time.time() - fire
	outcomes = prepared.make_visible(client, preparer.scripts, chunks)
	last = time.time() - fire
	usec = limit_probe.evalsha_usec(client)
	rcpu = redis_cpu(client) - rcpu
	visible = sum(len(o.visible) for o in outcomes)
	codes = sorted({o.code for o in outcomes if o.code})
	if codes:
		print(f"visible: chunks refused whole, codes {codes} ({[prepared.REASONS.get(c) for c in codes]})")
	queued = client.llen("rq:queue:default")
	print(
		f"visible: {visible} runs ({queued} queued) in {len(chunks)} steps; first step sent {late_start * 1000:.1f} ms "
		f"after the fire time, last run visible {last * 1000:.1f} ms after it; steps' Redis time "
		f"{usec / 1000:.1f} ms = {usec / n:.2f} us/run (redis-server CPU {rcpu * 1e6 / n:.1f} us/run)"
	)
	for layout in limit_probe.LAYOUTS:
		found = limit_probe.probe(client, n, layout, repeat=1)
		print(
			f"limit probe ({layout} markers): {found['server_s'] * 1000:.1f} ms = "
			f"{found['server_us_per_run']:.2f} us/run on the server, {found['call_s'] * 1000:.1f} ms the call"
		)


if __name__ == "__main__":
	main()
