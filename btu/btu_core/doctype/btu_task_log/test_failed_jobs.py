"""The BTU Failed Jobs page's side (btu.btu_api.failed_jobs) against real RQ: a run whose work horse
really dies in a real rq worker (a process of the test's own) is listed with its traceback, task and
schedule, requeued as a new run through a real test daemon (exactly once), or deleted; only this
site's BTU jobs are listed or touched."""

from __future__ import annotations

import json
import os
import tempfile
import uuid

import frappe
from rq import Queue
from rq.job import Job

import btu.api
from btu.btu_api import failed_jobs
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.testing import DaemonTestCase, delete_burst_workers, run_burst_worker, wait_for


class TestFailedJobs(DaemonTestCase):
	def setUp(self):
		super().setUp()
		frappe.flags.btu_rq_queue_prefix = f"{self.daemon.bench_id}:"  # the test daemon's queues
		self.conn = self.daemon.redis()
		self.queue = Queue(failed_jobs.rq_queue_name("default"), connection=self.conn)
		self.job_ids: list[str] = []
		self.folder = tempfile.mkdtemp(prefix="btu-fj-")
		self.in_progress_setting = frappe.db.get_single_value("BTU Configuration", "create_in_progress_logs")

	def tearDown(self):
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", self.in_progress_setting)
		frappe.db.commit()
		super().tearDown()
		frappe.flags.btu_rq_queue_prefix = None
		for job_id in self.job_ids + [
			j.decode() for j in self.conn.zrange(self.queue.failed_job_registry.key, 0, -1)
		]:
			for key in (f"rq:job:{job_id}", f"rq:results:{job_id}"):
				self.conn.delete(key)
		delete_burst_workers(self.conn, self.queue.name)
		for name in os.listdir(self.folder):
			os.unlink(os.path.join(self.folder, name))
		os.rmdir(self.folder)

	# --- helpers ------------------------------------------------------------------------------------

	def run_worker(self):
		"""A real rq worker (burst) on the test daemon's queue, in the site's folder as bench workers run."""
		result = run_burst_worker(self.queue.name)
		self.assertEqual(result.returncode, 0, result.stderr[-3000:])
		return result.stdout + result.stderr

	def wait_enqueued(self):
		job_ids = wait_for(lambda: self.queue.get_job_ids(), 30, "the daemon to enqueue the run")
		self.job_ids.extend(job_ids)
		return job_ids

	def failed_job_shaped(self, site: str, method: str, job_id: str | None = None, **meta) -> Job:
		"""A job of the shape Frappe's execute_job gets, put in the failed registry as a worker would
		(rq's own API) - for the cases no real run can make here (another site, another app)."""
		job = Job.create(
			failed_jobs.FRAPPE_EXECUTE_JOB,
			kwargs={
				"site": site,
				"user": "Administrator",
				"method": method,
				"event": None,
				"job_name": method,
				"kwargs": {"task_name": "BTU-99999"},
				"is_async": True,
			},  # fmt: skip
			connection=self.conn,
			id=job_id or f"{frappe.local.site}::{uuid.uuid4().hex}",
			origin=self.queue.name,
			meta=meta,
		)
		job.save()
		self.queue.failed_job_registry.add(
			job, ttl=600, exc_string="Traceback ...\nRuntimeError: outside the runner", _save_exc_to_job=True
		)
		self.job_ids.append(job.id)
		return job

	# --- tests --------------------------------------------------------------------------------------

	def test_a_run_whose_work_horse_died_is_listed_opened_requeued_once_and_runs_again(self):
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", 1)
		marker = os.path.join(self.folder, "crashed")
		task = make_task(
			"btu.btu_core.sample_tasks.crash_work_horse", arguments=json.dumps({"marker": marker})
		)
		run_id = btu.api.run_now(task.name)
		frappe.db.commit()
		(job_id,) = self.wait_enqueued()
		output = self.run_worker()
		self.assertIn("Work-horse terminated unexpectedly", output)

		listed = [row for row in failed_jobs.failed_jobs() if row["job_id"] == job_id]
		self.assertEqual(len(listed), 1, failed_jobs.failed_jobs())
		row = listed[0]
		self.assertEqual((row["task"], row["schedule"], row["queue"]), (task.name, run_id, "default"))
		self.assertIn("Work-horse terminated unexpectedly", row["error"])
		self.assertTrue(row["fire_time"])

		detail = failed_jobs.failed_job(job_id)
		self.assertIn("Work-horse terminated unexpectedly", detail["traceback"])
		self.assertEqual(json.loads(detail["arguments"])["schedule_name"], run_id)
		self.assertEqual(
			json.loads(detail["job_arguments"])["method"], "btu.btu_core.task_runner.run_scheduled_task"
		)
		first_log = detail["log"]  # the In-Progress log the dead run left
		self.assertEqual(frappe.db.get_value("BTU Task Log", first_log, "success_fail"), "In-Progress")

		requeued = failed_jobs.requeue(job_id)
		frappe.db.commit()
		self.assertEqual(requeued["retry_of"], first_log)
		with self.assertRaises(
			frappe.DoesNotExistError
		):  # out of the registry: a second requeue finds nothing
			failed_jobs.requeue(job_id)
		self.assertFalse(self.conn.exists(f"rq:job:{job_id}"))
		self.assertNotIn(job_id, [r["job_id"] for r in failed_jobs.failed_jobs()])
		retry = frappe.get_doc("BTU Task Schedule", requeued["run_id"])
		self.assertEqual((retry.run_frequency, retry.retry_of, retry.attempt), ("Once", first_log, 2))

		self.wait_enqueued()
		self.run_worker()
		log = frappe.get_doc("BTU Task Log", {"schedule": retry.name})
		self.assertEqual((log.success_fail, log.attempt, log.retry_of), ("Success", 2, first_log))
		self.assertIn("not crashing this time", log.stdout)

	def test_a_dead_work_horse_leaves_a_failed_log_its_retry_and_it_is_recorded_once(self):
		"""os._exit in a task (as the out-of-memory killer): the sweep finishes the run as the runner
		would have, whatever the In-Progress setting, and plans the task's automatic retry."""
		from btu.btu_core.dead_work_horses import record_dead_work_horses

		for in_progress in (0, 1):
			with self.subTest(in_progress_logs=in_progress):
				frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", in_progress)
				marker = os.path.join(self.folder, f"crashed-{in_progress}")
				task = make_task(
					"btu.btu_core.sample_tasks.crash_work_horse",
					arguments=json.dumps({"marker": marker}),
					max_retries=1,
				)
				run_id = btu.api.run_now(task.name)
				frappe.db.commit()
				(job_id,) = self.wait_enqueued()
				self.assertIn("Work-horse terminated unexpectedly", self.run_worker())
				self.assertEqual(record_dead_work_horses(), 1)
				frappe.db.commit()
				logs = frappe.get_all(
					"BTU Task Log",
					filters={"job_id": job_id},
					fields=["name", "success_fail", "result_message", "schedule"],
				)
				self.assertEqual(len(logs), 1, logs)  # the In-Progress one finished, or one new
				self.assertEqual((logs[0].success_fail, logs[0].schedule), ("Failed", run_id))
				self.assertIn("work horse running this task died", logs[0].result_message)
				self.assertIn("Work-horse terminated unexpectedly", logs[0].result_message)
				self.assertEqual(btu.api.run_status(run_id)["state"], "Failed")  # not "cancelled"
				retry = frappe.get_all("BTU Task Schedule", filters={"retry_of": logs[0].name}, pluck="name")
				self.assertEqual(len(retry), 1)  # the task's automatic retry
				self.assertEqual(record_dead_work_horses(), 0)  # recorded once

	def test_only_this_sites_btu_jobs_are_listed_and_touched(self):
		site = frappe.local.site
		ours = self.failed_job_shaped(site, "btu.btu_core.task_runner.run_enqueued_task")
		other_site = self.failed_job_shaped(
			"elsewhere.localhost", "btu.btu_core.task_runner.run_enqueued_task"
		)
		not_btu = self.failed_job_shaped(site, "frappe.email.queue.flush")
		daemon_id = f"btu-TS-999999-1700000000-{uuid.uuid4().hex[:10]}"
		daemon_job = self.failed_job_shaped(
			site, "btu.btu_core.task_runner.run_scheduled_task", job_id=daemon_id,
			btu_site=site, btu_schedule="TS-999999", btu_task="BTU-99999", btu_fire_time=1_700_000_000,
		)  # fmt: skip
		listed = {row["job_id"]: row for row in failed_jobs.failed_jobs()}
		self.assertIn(ours.id, listed)
		self.assertIn(daemon_job.id, listed)
		self.assertNotIn(other_site.id, listed)
		self.assertNotIn(not_btu.id, listed)
		self.assertEqual(listed[daemon_job.id]["schedule"], "TS-999999")
		self.assertEqual(listed[ours.id]["error"], "RuntimeError: outside the runner")
		for job in (other_site, not_btu):
			with self.subTest(job=job.id), self.assertRaises(frappe.DoesNotExistError) as ctx:
				failed_jobs.delete(job.id)
			self.assertIn("is not a failed BTU job of site", str(ctx.exception))
			self.assertTrue(self.conn.exists(f"rq:job:{job.id}"))

	def test_delete_removes_the_job_and_requeue_of_a_missing_task_says_why(self):
		job = self.failed_job_shaped(frappe.local.site, "btu.btu_core.task_runner.run_enqueued_task")
		with self.assertRaises(frappe.ValidationError) as ctx:
			failed_jobs.requeue(job.id)  # BTU-99999 does not exist
		self.assertIn("BTU-99999", str(ctx.exception))
		frappe.db.rollback()  # the registry entry is given back when the run could not be made
		self.assertIsNotNone(self.conn.zscore(self.queue.failed_job_registry.key, job.id))
		self.assertEqual(failed_jobs.delete(job.id), {"job_id": job.id, "deleted": True})
		self.assertFalse(self.conn.exists(f"rq:job:{job.id}"))
		self.assertIsNone(self.conn.zscore(self.queue.failed_job_registry.key, job.id))

	def test_the_page_needs_a_system_manager(self):
		frappe.set_user("Guest")
		try:
			for call in (
				lambda: failed_jobs.list_failed_jobs(),
				lambda: failed_jobs.delete_failed_job("btu-x"),
				lambda: failed_jobs.requeue_failed_job("btu-x"),
			):
				with self.assertRaises(frappe.PermissionError):
					call()
		finally:
			frappe.set_user("Administrator")
