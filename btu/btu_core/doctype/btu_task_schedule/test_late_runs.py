"""Runs that reach a worker late (btu.btu_core.late_runs), end to end: a real test daemon enqueues a
schedule every 2 seconds into a queue no worker serves, runs pile up, then a real rq worker (a
process of the test's own) drains the queue. Only one run of the backlog executes; the others and
every run past its start deadline leave a Skipped Task Log that says why and how late they were."""

from __future__ import annotations

import frappe
from rq import Queue

from btu.btu_api import failed_jobs
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.testing import DaemonTestCase, delete_burst_workers, run_burst_worker, wait_for

EVERY_2_SECONDS = "*/2 * * * * *"
BACKLOG = 5


class TestLateRuns(DaemonTestCase):
	def setUp(self):
		super().setUp()
		frappe.flags.btu_rq_queue_prefix = f"{self.daemon.bench_id}:"  # the test daemon's queues
		self.conn = self.daemon.redis()
		self.queue = Queue(failed_jobs.rq_queue_name("default"), connection=self.conn)
		self.saved_default = frappe.db.get_single_value("BTU Configuration", "default_start_deadline")

	def tearDown(self):
		frappe.db.set_single_value("BTU Configuration", "default_start_deadline", self.saved_default)
		frappe.db.commit()
		delete_burst_workers(self.conn, self.queue.name)
		super().tearDown()
		frappe.flags.btu_rq_queue_prefix = None

	def pile_up(self, **schedule_fields) -> tuple[str, set[str]]:
		"""A schedule every 2 s, saved (the daemon is told), and at least BACKLOG of its runs waiting."""
		task = make_task("btu.btu_core.sample_tasks.hello", arguments='{"name": "late"}')
		schedule = make_schedule(
			task.name, cron_string=EVERY_2_SECONDS, cron_timezone="UTC", **schedule_fields
		)
		frappe.db.commit()  # the daemon reads it from its own connection

		def enough() -> list[str] | None:
			ids = self.waiting(schedule.name)
			return ids if len(ids) >= BACKLOG else None

		waiting = wait_for(enough, 60, f"{BACKLOG} runs of {schedule.name} to wait in the queue")
		return schedule.name, set(waiting)

	def waiting(self, schedule: str) -> list[str]:
		return [job.id for job in self.daemon.queued_jobs() if job.meta.get("btu_schedule") == schedule]

	def logs_of(self, job_ids: set[str]) -> list[dict]:
		return frappe.get_all(
			"BTU Task Log",
			filters={"job_id": ["in", sorted(job_ids)]},
			fields=["job_id", "success_fail", "result_message", "start_delay"],
		)

	def drain(self, schedule: str) -> None:
		result = run_burst_worker(self.queue.name)
		self.assertEqual(result.returncode, 0, result.stderr[-3000:])

	def test_a_backlog_behind_a_missing_worker_runs_once(self):
		frappe.db.set_single_value("BTU Configuration", "default_start_deadline", 3600)
		frappe.db.commit()
		schedule, backlog = self.pile_up()
		self.drain(schedule)
		logs = self.logs_of(backlog)
		self.assertEqual(len(logs), len(backlog), logs)  # every waiting run left its log
		ran = [log for log in logs if log.success_fail == "Success"]
		skipped = [log for log in logs if log.success_fail == "Skipped"]
		self.assertEqual(len(ran), 1, logs)
		self.assertEqual(len(skipped), len(backlog) - 1, logs)
		for log in skipped:
			self.assertIn("covered it", log.result_message)
			self.assertIn("waited", log.result_message)
			self.assertGreater(log.start_delay, 0)
		# The one that ran is the oldest: the first late run starts at once.
		oldest = min(backlog, key=lambda job_id: int(job_id.split("-")[-2]))
		self.assertEqual(ran[0].job_id, oldest)

	def test_a_run_past_its_start_deadline_is_skipped_and_says_so(self):
		schedule, backlog = self.pile_up(start_deadline=1)
		self.drain(schedule)
		logs = self.logs_of(backlog)
		self.assertEqual(len(logs), len(backlog), logs)
		late = [log for log in logs if log.start_delay > 1]
		self.assertTrue(late, logs)  # 5 runs 2 s apart: at least the oldest waited longer than 1 s
		for log in late:
			self.assertEqual(log.success_fail, "Skipped", log)
			self.assertIn("beyond its start deadline of 1 s", log.result_message)
