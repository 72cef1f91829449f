"""The task runner writes BTU Task Logs: Success with output, Failed with traceback, Timeout."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import frappe
from frappe.utils import get_datetime, get_system_timezone

from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.task_runner import execute_task, run_scheduled_task
from btu.btu_core.testing import BTUTestCase, outgoing_email_account


class TestTaskRunner(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.in_progress_setting = frappe.db.get_single_value("BTU Configuration", "create_in_progress_logs")
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", 0)

	def tearDown(self):
		super().tearDown()
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", self.in_progress_setting)
		frappe.db.commit()

	def log_of(self, outcome):
		self.assertTrue(outcome.log, outcome)
		return frappe.get_doc("BTU Task Log", outcome.log)

	def test_success_log_holds_captured_output_and_return_value(self):
		task = make_task(arguments='{"name": "BTU", "repeat": 2}')
		outcome = execute_task(task.name, component="Test")
		log = self.log_of(outcome)
		self.assertEqual(log.success_fail, "Success")
		self.assertEqual(log.stdout, "hello BTU\nhello BTU\na note on stderr\n")
		self.assertIn('"greeted": "BTU"', log.result_message)
		self.assertGreaterEqual(log.execution_time, 0)
		self.assertEqual(log.task_desc_short, task.desc_short)
		self.assertIsNotNone(frappe.db.get_value("BTU Task", task.name, "last_runtime"))

	def test_failed_log_holds_the_traceback(self):
		task = make_task("sample_failure")
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Failed")
		self.assertIn("Traceback (most recent call last)", log.result_message)
		self.assertIn("ValueError: sample failure", log.result_message)
		self.assertEqual(log.stdout, "about to fail\n")

	def test_rq_job_timeout_becomes_a_timeout_log(self):
		task = make_task("sample_timeout")
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Timeout")
		self.assertIn("maximum duration (60 s)", log.result_message)
		self.assertIn("JobTimeoutException", log.result_message)

	def test_database_writes_of_a_failed_task_are_rolled_back(self):
		marker = f"btu-rollback-{time.time()}"
		task = make_task("sample_write_then_fail", arguments=f'{{"marker": "{marker}"}}')
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Failed")
		self.assertFalse(frappe.db.exists("ToDo", {"description": marker}))

	def test_scheduled_run_merges_overrides_and_records_schedule_and_fire_time(self):
		task = make_task(arguments='{"name": "task"}')
		schedule = make_schedule(task.name, argument_overrides='{"name": "override"}')
		fire_ts = 1_700_000_000.0
		log = self.log_of(frappe._dict(run_scheduled_task(task.name, schedule.name, fire_ts)))
		self.assertEqual(log.schedule, schedule.name)
		self.assertTrue(log.stdout.startswith("hello override\n"))
		expected = datetime.fromtimestamp(fire_ts, ZoneInfo(get_system_timezone())).replace(tzinfo=None)
		self.assertEqual(get_datetime(log.fire_time), expected)
		self.assertEqual(log.task_component, "Scheduler")

	def test_run_of_a_disabled_schedule_is_skipped(self):
		task = make_task()
		schedule = make_schedule(task.name, enabled=0)
		result = run_scheduled_task(task.name, schedule.name, time.time())
		self.assertEqual(result["status"], "Skipped")
		self.assertFalse(frappe.db.exists("BTU Task Log", {"schedule": schedule.name}))

	def test_transient_task_logs_failures_only(self):
		ok = make_task(is_transient=1)
		outcome = execute_task(ok.name)
		self.assertEqual(outcome.status, "Success")
		self.assertIsNone(outcome.log)
		self.assertIn("hello world", outcome.stdout)
		self.assertFalse(frappe.db.exists("BTU Task Log", {"task": ok.name}))
		bad = make_task("sample_failure", is_transient=1)
		self.assertEqual(self.log_of(execute_task(bad.name)).success_fail, "Failed")

	def test_in_progress_log_exists_while_the_task_runs(self):
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", 1)
		task = make_task("sample_report_in_progress", arguments='{"task": "placeholder"}', submit=False)
		task.arguments = f'{{"task": "{task.name}"}}'
		task.save()
		task.submit()
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.stdout, "in-progress: True\n")
		self.assertEqual(log.success_fail, "Success")
		self.assertEqual(frappe.db.count("BTU Task Log", {"task": task.name}), 1)

	def test_emails_follow_each_recipients_flags(self):
		task = make_task("sample_failure")
		schedule = make_schedule(
			task.name,
			email_recipients=[
				{"email_address": "on-error@example.com", "email_on_error": 1},
				{"email_address": "on-success@example.com", "email_on_success": 1, "email_on_error": 0},
			],
		)
		with outgoing_email_account():
			outcome = run_scheduled_task(task.name, schedule.name, time.time())
		emails = frappe.get_all(
			"Email Queue",
			filters={"reference_doctype": "BTU Task Log", "reference_name": outcome["log"]},
			fields=["name", "message"],
		)
		self.assertEqual(len(emails), 1, emails)
		recipients = frappe.get_all(
			"Email Queue Recipient", filters={"parent": emails[0].name}, pluck="recipient"
		)
		self.assertEqual(recipients, ["on-error@example.com"])
		self.assertIn("Failed", emails[0].message)  # the subject is in the message's headers

	def test_clear_old_logs_removes_only_old_ones(self):
		from btu.btu_core.doctype.btu_task_log.btu_task_log import BTUTaskLog

		task = make_task()
		old = self.log_of(execute_task(task.name))
		new = self.log_of(execute_task(task.name))
		frappe.db.set_value(
			"BTU Task Log", old.name, "modified", "2000-01-01 00:00:00", update_modified=False
		)
		BTUTaskLog.clear_old_logs(days=30)
		self.assertFalse(frappe.db.exists("BTU Task Log", old.name))
		self.assertTrue(frappe.db.exists("BTU Task Log", new.name))
