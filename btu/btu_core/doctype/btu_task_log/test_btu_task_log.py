"""The task runner writes BTU Task Logs: Success with output, Failed with traceback, Timeout."""

from __future__ import annotations

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import frappe
from frappe.utils import get_datetime, get_system_timezone

from btu import runnable
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.steps import step
from btu.btu_core.task_runner import execute_task, run_scheduled_task
from btu.btu_core.testing import BTUTestCase, outgoing_email_account

HERE = "btu.btu_core.doctype.btu_task_log.test_btu_task_log"


# --- sample task functions with steps ---------------------------------------------------------


@runnable
def sample_steps(orders: int = 3) -> str:
	with step("Fetch orders"):
		print(f"{orders} orders")
		with step("Check stock"):
			print("stock ok")
	send_summary()
	return "done"


@step("Send summary")
def send_summary() -> None:
	print("summary sent")


@runnable
def sample_failing_step() -> None:
	with step("Prepare"):
		print("prepared")
	with step("Post invoices"):
		print("posting")
		raise RuntimeError("the ledger is locked")
	with step("Never reached"):
		pass


@runnable
def sample_caught_step() -> str:
	try:
		with step("Optional export"):
			raise ConnectionError("no route to the export server")
	except ConnectionError:
		print("export skipped")
	return "ok without the export"


@runnable
def sample_timeout_in_step() -> None:
	from rq.timeouts import JobTimeoutException

	with step("Slow part"):
		raise JobTimeoutException("Task exceeded maximum timeout value (60 seconds)")


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
		fire_ts = float(int(time.time()))  # a run on time (an old one would miss its start deadline)
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

	def test_without_an_outgoing_account_the_log_says_why_no_email_went_out(self):
		"""Recipients, no outgoing Email Account: a warning on save, the reason in the Task Log, no
		Email Queue row (Frappe alone would only leave an Error Log per run)."""
		if frappe.db.exists("Email Account", {"default_outgoing": 1, "enable_outgoing": 1}):
			self.skipTest(
				"the site has a default outgoing Email Account (this case needs a site without one)"
			)
		task = make_task("sample_failure")
		frappe.clear_messages()
		schedule = make_schedule(
			task.name, email_recipients=[{"email_address": "ops@example.com", "email_on_error": 1}]
		)
		self.assertIn("will not be sent", " ".join(str(m) for m in frappe.get_message_log()))
		outcome = run_scheduled_task(task.name, schedule.name, time.time())
		log = frappe.get_doc("BTU Task Log", outcome["log"])
		self.assertIn(
			"The email to ops@example.com could not be queued: no outgoing Email Account", log.email_note
		)
		self.assertFalse(frappe.get_all("Email Queue", filters={"reference_name": outcome["log"]}))

	# --- steps ---------------------------------------------------------------------------------------

	def steps_of(self, log):
		return [(row.step_name, row.status, row.depth, row.output) for row in log.steps]

	def test_steps_are_written_to_the_log_with_status_duration_and_output(self):
		task = make_task(f"{HERE}.sample_steps", arguments='{"orders": 5}')
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Success")
		self.assertEqual(
			self.steps_of(log),
			[
				("Fetch orders", "Success", 0, "5 orders\nstock ok\n"),
				("Check stock", "Success", 1, "stock ok\n"),
				("Send summary", "Success", 0, "summary sent\n"),
			],
		)
		self.assertEqual(log.stdout, "5 orders\nstock ok\nsummary sent\n")
		for row in log.steps:
			self.assertGreaterEqual(row.duration, 0)
			self.assertTrue(row.started_at)
		self.assertLessEqual(get_datetime(log.steps[0].started_at), get_datetime(log.steps[2].started_at))

	def test_a_failing_step_fails_the_run_and_is_marked(self):
		task = make_task(f"{HERE}.sample_failing_step")
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Failed")
		self.assertEqual(
			self.steps_of(log),
			[
				("Prepare", "Success", 0, "prepared\n"),
				("Post invoices", "Failed", 0, "posting\nRuntimeError: the ledger is locked"),
			],
		)
		self.assertIn("RuntimeError: the ledger is locked", log.result_message)

	def test_a_step_the_task_caught_is_failed_in_a_successful_run(self):
		task = make_task(f"{HERE}.sample_caught_step")
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Success")
		self.assertEqual(
			self.steps_of(log),
			[("Optional export", "Failed", 0, "ConnectionError: no route to the export server")],
		)

	def test_a_timeout_inside_a_step_marks_the_step_and_the_run(self):
		task = make_task(f"{HERE}.sample_timeout_in_step")
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Timeout")
		self.assertEqual([(r.step_name, r.status) for r in log.steps], [("Slow part", "Timeout")])

	def test_steps_replace_an_in_progress_logs_empty_table(self):
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", 1)
		task = make_task(f"{HERE}.sample_steps")
		log = self.log_of(execute_task(task.name))
		self.assertEqual(len(log.steps), 3)
		self.assertEqual(frappe.db.count("BTU Task Log Step", {"parent": log.name}), 3)

	def test_the_log_keeps_the_arguments_the_function_was_called_with(self):
		task = make_task(arguments='{"name": "task", "repeat": 1}')
		schedule = make_schedule(task.name, argument_overrides='{"name": "override"}')
		log = self.log_of(frappe._dict(run_scheduled_task(task.name, schedule.name, time.time())))
		self.assertEqual(json.loads(log.arguments), {"name": "override", "repeat": 1})

	# --- BTU-aware classes -------------------------------------------------------------------------------

	def test_a_btu_aware_class_runs_with_its_task_and_schedule(self):
		task = make_task("SampleAwareTask", arguments='{"name": "class"}')
		log = self.log_of(execute_task(task.name))
		self.assertEqual(log.success_fail, "Success", log.result_message)
		self.assertEqual(log.stdout, f"task {task.name} schedule None greets class\n")
		self.assertEqual(log.result_message, "greeted class")
		schedule = make_schedule(task.name, argument_overrides='{"name": "schedule"}')
		log = self.log_of(frappe._dict(run_scheduled_task(task.name, schedule.name, time.time())))
		self.assertEqual(log.stdout, f"task {task.name} schedule {schedule.name} greets schedule\n")

	# --- Delete by date range (the list view) ---------------------------------------------------------

	def test_delete_by_date_range_takes_whole_days_a_status_and_a_task_and_keeps_in_progress(self):
		from btu.btu_api.housekeeping import count_task_logs, delete_task_logs

		task = make_task(f"{HERE}.sample_steps")
		other = make_task("sample_failure")
		logs = {}
		for key, started, which in (
			("before", "2001-01-04 23:59:59", task),
			("first_day", "2001-01-05 00:00:00", task),
			("last_day", "2001-01-10 23:59:59", task),
			("other_task", "2001-01-07 12:00:00", other),
			("after", "2001-01-11 00:00:00", task),
		):
			logs[key] = self.log_of(execute_task(which.name)).name
			frappe.db.set_value(
				"BTU Task Log", logs[key], "date_time_started", started, update_modified=False
			)
		frappe.db.set_value("BTU Task Log", logs["last_day"], "success_fail", "Failed", update_modified=False)
		running = self.log_of(execute_task(task.name)).name
		frappe.db.set_value(
			"BTU Task Log",
			running,
			{"date_time_started": "2001-01-06 00:00:00", "success_fail": "In-Progress"},
		)
		frappe.db.commit()
		self.assertEqual(count_task_logs("2001-01-05", "2001-01-10"), 3)
		# last_day and other_task
		self.assertEqual(count_task_logs("2001-01-05", "2001-01-10", status="Failed"), 2)
		self.assertEqual(count_task_logs("2001-01-05", "2001-01-10", status="Success"), 1)
		self.assertEqual(count_task_logs("2001-01-05", "2001-01-10", task=other.name), 1)
		self.assertEqual(delete_task_logs("2001-01-05", "2001-01-10", task=task.name), {"deleted": 2})
		left = set(
			frappe.get_all(
				"BTU Task Log", filters={"name": ("in", list(logs.values()) + [running])}, pluck="name"
			)
		)
		self.assertEqual(left, {logs["before"], logs["other_task"], logs["after"], running})
		self.assertFalse(frappe.db.exists("BTU Task Log Step", {"parent": logs["first_day"]}))

	def test_delete_by_date_range_refuses_bad_input_with_the_reason(self):
		from btu.btu_api.housekeeping import count_task_logs, delete_task_logs

		cases = [
			(("2001-02-01", "2001-01-01"), {}, "From Date 2001-02-01 is after To Date 2001-01-01."),
			(("2001-01-01", ""), {}, "Give both dates"),
			(
				("2001-01-01", "2001-01-02"),
				{"status": "In-Progress"},
				"Status 'In-Progress' is not one of Success, Failed, Timeout",
			),
			(
				("2001-01-01", "2001-01-02"),
				{"task": "BTU-NOPE"},
				"Task BTU-NOPE has no Task Logs and does not exist.",
			),
		]
		for dates, extra, message in cases:
			for call in (count_task_logs, delete_task_logs):
				with (
					self.subTest(call=call.__name__, dates=dates, extra=extra),
					self.assertRaises(frappe.ValidationError) as ctx,
				):
					call(*dates, **extra)
				self.assertIn(message, str(ctx.exception))

	def test_deleting_logs_needs_delete_permission(self):
		from btu.btu_api.housekeeping import delete_task_logs

		frappe.set_user("Guest")
		try:
			with self.assertRaises(frappe.PermissionError):
				delete_task_logs("2001-01-01", "2001-01-02")
		finally:
			frappe.set_user("Administrator")

	# --- the workspace's chart ------------------------------------------------------------------------

	def test_the_chart_counts_runs_and_failures_per_day_week_and_month(self):
		from datetime import date

		from btu.btu_core.dashboard_chart_source.btu_runs_per_day.btu_runs_per_day import get, runs_per_period

		task = make_task()
		failing = make_task("sample_failure")
		for started, which in (
			("2001-03-05 00:00:00", task),
			("2001-03-05 23:59:59", failing),
			("2001-03-07 10:00:00", failing),
			("2001-03-12 10:00:00", task),
		):
			log = self.log_of(execute_task(which.name)).name
			frappe.db.set_value("BTU Task Log", log, "date_time_started", started, update_modified=False)
		daily = runs_per_period(date(2001, 3, 4), date(2001, 3, 7))
		self.assertEqual(daily["labels"], ["03-04", "03-05", "03-06", "03-07"])  # short: no overlap
		self.assertEqual([d["values"] for d in daily["datasets"]], [[0, 2, 0, 1], [0, 1, 0, 1]])
		weekly = runs_per_period(date(2001, 3, 5), date(2001, 3, 18), "Weekly")
		self.assertEqual(weekly["labels"], ["03-05", "03-12"])  # Mondays
		across = runs_per_period(date(2001, 12, 30), date(2002, 1, 2))
		self.assertEqual(across["labels"][0], "2001-12-30")  # two years: the year is shown
		self.assertEqual([d["values"] for d in weekly["datasets"]], [[3, 1], [2, 0]])
		only = runs_per_period(date(2001, 3, 1), date(2001, 3, 31), "Monthly", {"task": task.name})
		self.assertEqual((only["labels"], only["datasets"][0]["values"]), (["2001-03"], [2]))
		chosen = get(
			chart_name="BTU Runs and Failures",
			timespan="Select Date Range",
			from_date="2001-03-05",
			to_date="2001-03-05",
		)
		self.assertEqual([d["values"] for d in chosen["datasets"]], [[2], [1]])
		self.assertEqual(
			len(get(chart_name="BTU Runs and Failures")["labels"]), 30
		)  # its saved span: Last Month

	def test_clear_old_logs_removes_only_old_ones(self):
		from btu.btu_core.doctype.btu_task_log.btu_task_log import BTUTaskLog

		task = make_task(f"{HERE}.sample_steps")
		old = self.log_of(execute_task(task.name))
		new = self.log_of(execute_task(task.name))
		frappe.db.set_value(
			"BTU Task Log", old.name, "modified", "2000-01-01 00:00:00", update_modified=False
		)
		BTUTaskLog.clear_old_logs(days=30)
		self.assertFalse(frappe.db.exists("BTU Task Log", old.name))
		self.assertTrue(frappe.db.exists("BTU Task Log", new.name))
		self.assertFalse(frappe.db.exists("BTU Task Log Step", {"parent": old.name}))  # no orphan steps
		self.assertEqual(frappe.db.count("BTU Task Log Step", {"parent": new.name}), 3)


class TestTaskLogListIndexes(BTUTestCase):
	def test_list_filtered_by_task_or_schedule_has_its_sorted_index(self):
		"""Desk's list of a task's or a schedule's logs, newest first, reads only the rows it shows
		(bench/desk_lists.py measures it): install and migrate run on_doctype_update, which makes the
		composite indexes (not called here: a missing index would be made with a commit)."""
		from btu.btu_core.doctype.btu_task_log.btu_task_log import LIST_INDEXES

		for fields in LIST_INDEXES:
			rows = frappe.db.sql(
				"SHOW INDEX FROM `tabBTU Task Log` WHERE Key_name = %s",
				(frappe.db.get_index_name(list(fields)),),
				as_dict=True,
			)
			self.assertEqual(
				[row.Column_name for row in sorted(rows, key=lambda r: r.Seq_in_index)], list(fields)
			)
