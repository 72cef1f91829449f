"""Prepared runs on a real Frappe v15 bench: an unmodified ``bench worker`` runs them (real bench only).

    BTU_BENCH=/home/frappe/frappe-bench BTU_SITE=site1.localhost \\
        /home/frappe/frappe-bench/env/bin/python bench/prepared_on_bench.py [--n 5]

Run it with the bench's own Python (its rq and redis-py, as the daemon in a bench runs), while the bench
runs (`bench start`) with its worker. It makes N schedules of a sample task (yearly rule: the bench's
own daemon never fires them meanwhile), prepares their runs for a fire time a few seconds ahead with
the daemon's own code (prepared.Preparer, job_mode frappe, the bench's queue) under a key prefix of its
own (the site's BTU keys and the bench's lease are not touched), makes them visible at the fire time in
one step, and waits for the bench's worker: each job must finish and write a Success Task Log of that
schedule. Prints what it saw; deletes every record and key it made.
"""

from __future__ import annotations

import argparse
import calendar
import dataclasses
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
import rq  # noqa: E402
from rq.job import Job  # noqa: E402

from btu.scheduler_daemon import prepared  # noqa: E402
from btu.scheduler_daemon.config import load_config  # noqa: E402
from btu.scheduler_daemon.context import DaemonContext  # noqa: E402
from btu.scheduler_daemon.scheduler import Scheduler  # noqa: E402
from btu.scheduler_daemon.specs import ScheduleSpec  # noqa: E402
from tests.bench.harness import Api, BenchConfig, SiteSnapshot, delete_new_records, wait_for  # noqa: E402

SAMPLE = "btu.btu_core.sample_tasks.hello"
RULE = "0 0 1 1 *"


def main() -> int:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--n", type=int, default=5, help="schedules (one prepared run each)")
	args = parser.parse_args()
	bench = BenchConfig.from_environment()
	if bench is None:
		print("prepared_on_bench: skipped: set BTU_BENCH=/path/to/frappe-bench and BTU_SITE=<site with btu>")
		return 0
	api = Api(bench.base_url, bench.admin_password)
	found = load_config(bench.path, [bench.site], environ={})
	prefix = f"btuprep-{uuid.uuid4().hex[:8]}"
	config = dataclasses.replace(found, key_prefix=prefix, prepare_ahead=30, lease_ttl=60)
	ctx = DaemonContext(config)
	client = ctx.store.client(bench.site)
	snapshot = SiteSnapshot.take(api)
	ids: list[str] = []
	try:
		task = api.insert_submitted(
			{
				"doctype": "BTU Task",
				"desc_short": f"prepared runs check {prefix}",
				"function_string": SAMPLE,
				"arguments": '{"name": "prepared"}',
			}
		)
		names = [
			api.insert(
				{
					"doctype": "BTU Task Schedule",
					"task": task["name"],
					"run_frequency": "Cron Style",
					"cron_string": RULE,
				}
			)["name"]
			for _ in range(args.n)
		]
		fire = int(time.time()) + 6
		entries = []
		for name in names:
			spec = ScheduleSpec(
				site=bench.site,
				name=name,
				task=task["name"],
				cron=RULE,
				timezone="UTC",
				queue="default",
				function_string=SAMPLE,
				kwargs={},
				timeout=300,
			)
			entries.append((name, spec.to_json(), spec.timing, fire))
		ctx.store.upsert(bench.site, entries)
		scheduler = Scheduler(ctx)
		if not scheduler._check_lease():
			raise RuntimeError("could not take this check's own lease")
		made = scheduler.preparer.prepare_fire_time(bench.site, fire)
		chunks = scheduler.prepared.take_due(bench.site, fire)
		ids = [job_id for chunk in chunks for job_id in chunk.job_ids]
		queue_name = f"{config.queue_prefix}default"
		stored = Job.fetch(ids[0], connection=client)
		print(
			f"rq {rq.__version__}, redis-py {redis.__version__}, queue {queue_name}, job_mode {config.job_mode}"
		)
		print(
			f"prepared {made} runs for {time.strftime('%H:%M:%S', time.gmtime(fire))}Z: status {stored.get_status()}"
		)
		while time.time() < fire:
			time.sleep(0.001)
		outcomes = prepared.make_visible(client, scheduler.preparer.scripts, chunks)
		seen = time.time()
		visible = sum(len(o.visible) for o in outcomes)
		print(f"made visible {visible} of {made} ({(seen - fire) * 1000:.1f} ms after the fire time)")

		def all_done() -> list[Job] | None:
			found = Job.fetch_many(ids, connection=client)
			done = all(j is not None and j.get_status(refresh=False) in ("finished", "failed") for j in found)
			return found if done else None

		jobs = wait_for(all_done, 120, 0.2, what="the bench worker to run the prepared jobs")
		failed = 0
		for job in jobs:
			stamp = job.enqueued_at  # naive UTC on rq 1.15, aware on rq 2 and later
			late = calendar.timegm(stamp.utctimetuple()) + stamp.microsecond / 1e6 - fire
			logs = api.get_list(
				"BTU Task Log",
				filters=[["schedule", "=", job.meta["btu_schedule"]]],
				fields=["name", "success_fail", "job_id"],
			)
			ok = job.get_status() == "finished" and [lg["success_fail"] for lg in logs] == ["Success"]
			failed += not ok
			print(
				f"  {job.id}: {job.get_status()}, enqueued_at +{late * 1000:.1f} ms, worker "
				f"{job.worker_name}, Task Log {[lg['success_fail'] for lg in logs]} job_id "
				f"{[lg['job_id'] for lg in logs] == [job.id]}"
			)
		print("PASS" if failed == 0 and visible == made == args.n else f"FAIL ({failed} runs not right)")
		return 0 if failed == 0 and visible == made == args.n else 1
	finally:
		delete_new_records(api, snapshot)
		for key in client.scan_iter(match=f"{prefix}:*", count=1000):
			client.delete(key)
		for job_id in ids:
			client.delete(Job.key_for(job_id))


if __name__ == "__main__":
	sys.exit(main())
