"""Micro-benchmark of the daemon's hot paths without MariaDB or a running daemon (profiling aid).

    bench/.venvs/btu/bin/python bench/micro_fire.py [--n 20000] [--profile]

fire: N schedules due now, the real Scheduler.fire() batches until none is due (runs/s).
upsert: the consumer's _apply() on N rows as a full refresh hands them over (rows/s).
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
	parser.add_argument("--only", choices=["fire", "upsert"], default=None)
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

		if args.only in (None, "upsert"):
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


if __name__ == "__main__":
	main()
