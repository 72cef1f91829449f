"""What one run costs a Frappe v15 `bench worker`, BTU's beside Frappe's own jobs (real bench only).

    BTU_BENCH=/path/to/frappe-bench BTU_SITE=site1.localhost .venv/bin/python bench/worker_cost.py [--n 10]

Needs the bench running (`bench start`, or the real-bench suite's processes) with its usual one
worker. Enqueues straight into the bench's RQ queue, as the daemon does:
  * BTU run      - the daemon's own job (JobBuilder, job_mode frappe): execute_job -> the task
                   runner -> a BTU Task Log (a sample task that prints and returns);
  * log_error    - Frappe's execute_job of frappe.log_error: one document written;
  * no write     - Frappe's execute_job of the same sample function: nothing written.
Worker time is RQ's ended_at - started_at of each job (median of N, jobs run one after the other);
then N BTU runs enqueued at once give the runs per second the one worker sustains. Every record
made is deleted afterwards. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from rq.job import Job  # noqa: E402

from btu.scheduler_daemon.config import load_config  # noqa: E402
from btu.scheduler_daemon.jobs import FRAPPE_EXECUTE_JOB, JobBuilder  # noqa: E402
from btu.scheduler_daemon.specs import ScheduleSpec  # noqa: E402
from tests.bench.harness import Api, BenchConfig, SiteSnapshot, delete_new_records, wait_for  # noqa: E402

SAMPLE = "btu.btu_core.sample_tasks.hello"


def seconds(job: Job) -> float:
	return (job.ended_at - job.started_at).total_seconds()


def wait_done(client: redis.Redis, ids: list[str], timeout: float) -> list[Job]:
	def done() -> list[Job] | None:
		jobs = Job.fetch_many(ids, connection=client)
		if all(j is not None and j.get_status(refresh=False) in ("finished", "failed") for j in jobs):
			return jobs
		return None

	return wait_for(done, timeout, 0.2, what=f"{len(ids)} jobs")


def native_job(builder: JobBuilder, client: redis.Redis, site: str, method: str, kwargs: dict):
	queue = builder.queue(client, "default")
	job = Job.create(
		FRAPPE_EXECUTE_JOB,
		kwargs={
			"site": site,
			"user": "Administrator",
			"method": method,
			"event": None,
			"job_name": method,
			"kwargs": kwargs,
			"is_async": True,
		},  # fmt: skip
		connection=client,
		timeout=300,
		result_ttl=600,
		id=f"btu-bench-{uuid.uuid4().hex[:12]}",
		origin=queue.name,
	)
	return queue, job


def run_one_by_one(client, make, n: int) -> list[float]:
	times = []
	for i in range(n):
		queue, job = make(i)
		queue.enqueue_job(job)
		times.append(seconds(wait_done(client, [job.id], 120)[0]))
	return times


def main() -> int:
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--n", type=int, default=10, help="jobs per kind (and 5 x n for the throughput run)")
	args = parser.parse_args()
	config = BenchConfig.from_environment()
	if config is None:
		print("worker_cost: skipped: set BTU_BENCH=/path/to/frappe-bench and BTU_SITE=<site with btu>")
		return 0
	api = Api(config.base_url, config.admin_password)
	daemon_config = load_config(config.path, [config.site], environ={})
	builder = JobBuilder(daemon_config)
	client = redis.Redis.from_url(daemon_config.redis_url)
	snapshot = SiteSnapshot.take(api)
	title = f"btu worker_cost {uuid.uuid4().hex[:6]}"
	try:
		task = api.insert_submitted(
			{
				"doctype": "BTU Task",
				"desc_short": title,
				"function_string": SAMPLE,
				"arguments": '{"name": "bench"}',
			}
		)
		schedule = api.insert(
			{
				"doctype": "BTU Task Schedule",
				"task": task["name"],
				"run_frequency": "Cron Style",
				"cron_string": "0 0 1 1 *",
			}
		)
		spec = ScheduleSpec(
			site=config.site, name=schedule["name"], task=task["name"], cron="0 0 1 1 *", timezone="UTC",
			queue="default", function_string=SAMPLE, kwargs={}, timeout=300,
		)  # fmt: skip
		base = int(time.time()) - 10_000_000  # fire times no real run has: distinct job ids

		def btu_run(i: int):
			return builder.build(client, spec, base + i)

		def log_error(i: int):
			return native_job(
				builder, client, config.site, "frappe.log_error", {"title": title, "message": str(i)}
			)

		def no_write(i: int):
			return native_job(builder, client, config.site, SAMPLE, {"name": "bench"})

		rows = []
		for label, make in (("BTU run (Task Log written)", btu_run), ("frappe.log_error (one document)", log_error),
							("same sample function, nothing written", no_write)):  # fmt: skip
			run_one_by_one(client, make, 1)  # warm the caches once
			times = run_one_by_one(client, make, args.n)
			rows.append((label, statistics.median(times), min(times), max(times)))
		burst = [btu_run(1000 + i) for i in range(5 * args.n)]
		for queue, job in burst:
			queue.enqueue_job(job)
		jobs = wait_done(client, [job.id for _, job in burst], 600)
		span = (max(j.ended_at for j in jobs) - min(j.started_at for j in jobs)).total_seconds()
		print(
			f"Worker time per job on {config.site} (`bench worker`, one work horse forked per job; median of {args.n}):\n"
		)
		print("| job | median s | min s | max s |\n|---|--:|--:|--:|")
		for label, median, low, high in rows:
			print(f"| {label} | {median:.3f} | {low:.3f} | {high:.3f} |")
		print(
			f"\nOne worker, {len(jobs)} BTU runs enqueued at once: {len(jobs) / span:.2f} runs/s ({span:.1f} s)"
		)
	finally:
		delete_new_records(api, snapshot)
		for row in api.get_list("Error Log", filters=[["method", "=", title]]):
			api.delete("Error Log", row["name"])
	return 0


if __name__ == "__main__":
	sys.exit(main())
