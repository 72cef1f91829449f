"""Retry of a Failed/Timeout Task Log and a task's automatic retries (btu.btu_core.retries): every
retry is a one-shot run (btu.api.run_later) that a real test daemon plans; the tests then run each
one-shot as a worker would (run_scheduled_task) and read the logs, links, attempts and emails."""

from __future__ import annotations

import json
import os
import tempfile
import time

import frappe

import btu.api
from btu import runnable
from btu.btu_core import retries
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.task_runner import COMPONENT_WEB, COMPONENT_WORKER, execute_task, run_scheduled_task
from btu.btu_core.testing import DaemonTestCase, outgoing_email_account, wait_for

HERE = "btu.btu_core.doctype.btu_task_log.test_task_log_retries"


@runnable
def sample_fail_first(marker: str, name: str = "world") -> str:
	"""Fails on its first call (leaves ``marker``), succeeds afterwards."""
	if not os.path.exists(marker):
		open(marker, "w").close()
		raise RuntimeError(f"first call fails ({name})")
	print(f"second call greets {name}")
	return f"ok {name}"


@runnable
def sample_always_fails(name: str = "world") -> None:
	print(f"failing for {name}")
	raise RuntimeError("always fails")


class TestRetries(DaemonTestCase):
	def setUp(self):
		super().setUp()
		self.in_progress_setting = frappe.db.get_single_value("BTU Configuration", "create_in_progress_logs")
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", 0)
		frappe.db.commit()
		self.marker = os.path.join(tempfile.mkdtemp(prefix="btu-retry-"), "marker")

	def tearDown(self):
		super().tearDown()
		frappe.db.set_single_value("BTU Configuration", "create_in_progress_logs", self.in_progress_setting)
		frappe.db.commit()
		if os.path.exists(self.marker):
			os.unlink(self.marker)
		os.rmdir(os.path.dirname(self.marker))

	def one_shot_retrying(self, log_name):
		names = frappe.get_all("BTU Task Schedule", filters={"retry_of": log_name}, pluck="name")
		self.assertEqual(len(names), 1, names)
		return frappe.get_doc("BTU Task Schedule", names[0])

	def assert_planned(self, one_shot, earliest, latest):
		"""The one-shot's fire time lies in [earliest, latest] (Unix s, rounded up to the second as
		btu.api plans it): what was planned, not how fast anything ran."""
		fire_ts = one_shot.run_at_timestamp()
		self.assertTrue(int(earliest) <= fire_ts <= int(latest) + 1, (earliest, fire_ts, latest))

	def run_one_shot(self, one_shot):
		"""What a worker does with the job the daemon enqueues for the one-shot."""
		fire_ts = one_shot.run_at_timestamp()
		outcome = frappe._dict(run_scheduled_task(one_shot.task, one_shot.name, fire_ts))
		self.assertTrue(outcome.log, outcome)
		return frappe.get_doc("BTU Task Log", outcome.log)

	# --- the back-off -------------------------------------------------------------------------------

	def test_the_delay_doubles_from_the_first_and_stops_at_the_cap(self):
		self.assertEqual([retries.delay_for(n, 30, 300) for n in range(1, 7)], [30, 60, 120, 240, 300, 300])
		self.assertEqual(retries.delay_for(60, 1, 3600), 3600)  # no overflow far along

	def test_retry_settings_are_validated_with_the_reason(self):
		cases = [
			({"max_retries": 101}, "Max Retries must be from 0 to 100, got 101."),
			({"max_retries": 1, "retry_delay_seconds": 0}, "Retry Delay must be at least 1 second, got 0."),
			(
				{"max_retries": 1, "retry_delay_seconds": 60, "retry_delay_cap_seconds": 30},
				"Retry Delay Cap must be from the Retry Delay (60 s) to 2592000 s (30 days), got 30.",
			),
		]
		for fields, message in cases:
			with self.subTest(fields=fields), self.assertRaises(frappe.ValidationError) as ctx:
				make_task(submit=False, **fields)
			self.assertIn(message, str(ctx.exception))

	def test_retry_settings_change_on_a_submitted_task_and_are_validated(self):
		task = make_task()
		task.max_retries = 3
		task.save()
		self.assertEqual(frappe.db.get_value("BTU Task", task.name, "max_retries"), 3)
		task.max_retries = 500
		with self.assertRaises(frappe.ValidationError):
			task.save()

	# --- automatic retries ----------------------------------------------------------------------------

	def test_failed_attempts_are_retried_with_back_off_until_none_is_left(self):
		task = make_task(
			f"{HERE}.sample_always_fails", arguments='{"name": "auto"}', max_retries=2, retry_delay_seconds=30
		)
		schedule = make_schedule(task.name, argument_overrides='{"name": "scheduled"}')
		before = time.time()
		first = frappe.get_doc(
			"BTU Task Log", run_scheduled_task(task.name, schedule.name, time.time())["log"]
		)
		after = time.time()
		self.assertEqual((first.success_fail, first.attempt, first.retry_of), ("Failed", 1, None))

		second_run = self.one_shot_retrying(first.name)
		self.assertEqual(second_run.attempt, 2)
		self.assertEqual(json.loads(second_run.argument_overrides), {"name": "scheduled"})
		self.assert_planned(second_run, before + 30, after + 30)  # 30 s after the failure
		wait_for(lambda: self.daemon.next_run(second_run.name), what="the daemon to plan the retry")

		schedule.argument_overrides = '{"name": "changed since"}'
		schedule.save()
		frappe.db.commit()
		before = time.time()
		second = self.run_one_shot(second_run)
		after = time.time()
		self.assertEqual((second.attempt, second.retry_of, second.schedule), (2, first.name, second_run.name))
		self.assertEqual(second.stdout, "failing for scheduled\n")  # the first run's arguments, not today's

		third_run = self.one_shot_retrying(second.name)
		self.assertEqual(third_run.attempt, 3)
		self.assertEqual(third_run.argument_overrides, second_run.argument_overrides)
		self.assert_planned(third_run, before + 60, after + 60)  # twice the first delay
		third = self.run_one_shot(third_run)
		self.assertEqual((third.attempt, third.retry_of, third.success_fail), (3, second.name, "Failed"))
		self.assertFalse(frappe.db.exists("BTU Task Schedule", {"retry_of": third.name}))  # none left
		self.assertEqual(
			[(row.name, row.attempt) for row in retries.attempts(second.name)],
			[(first.name, 1), (second.name, 2), (third.name, 3)],
		)

	def test_a_retry_that_succeeds_ends_the_chain(self):
		task = make_task(
			f"{HERE}.sample_fail_first", arguments=json.dumps({"marker": self.marker}), max_retries=3
		)
		outcome = execute_task(task.name, component=COMPONENT_WORKER)
		self.assertEqual(outcome.status, "Failed")
		self.assertEqual(outcome.extra["retry"]["attempt"], 2)
		second = self.run_one_shot(self.one_shot_retrying(outcome.log))
		self.assertEqual((second.success_fail, second.attempt), ("Success", 2))
		self.assertEqual(second.stdout, "second call greets world\n")
		self.assertFalse(frappe.db.exists("BTU Task Schedule", {"retry_of": second.name}))

	def test_a_run_on_the_web_server_or_one_that_never_started_is_not_retried(self):
		task = make_task(f"{HERE}.sample_always_fails", max_retries=3)
		web = execute_task(task.name, component=COMPONENT_WEB)
		self.assertEqual(web.status, "Failed")
		self.assertFalse(frappe.db.exists("BTU Task Schedule", {"retry_of": web.log}))
		frappe.db.set_value("BTU Task", task.name, "arguments", '{"unknown": 1}')  # fails before the call
		frappe.db.commit()
		broken = execute_task(task.name, component=COMPONENT_WORKER)
		self.assertEqual(broken.status, "Failed")
		self.assertIn("unexpected keyword argument 'unknown'", broken.result_message)
		self.assertFalse(frappe.db.exists("BTU Task Schedule", {"retry_of": broken.log}))

	def test_a_draft_tried_in_a_worker_is_not_retried(self):
		task = make_task(f"{HERE}.sample_always_fails", max_retries=2, submit=False)
		failed = execute_task(task.name, component=COMPONENT_WORKER)
		self.assertEqual(failed.status, "Failed")
		self.assertEqual(failed.extra, {})
		self.assertFalse(frappe.db.exists("BTU Task Schedule", {"retry_of": failed.log}))
		self.assertFalse(frappe.db.exists("Error Log", {"method": ("like", f"%retry of {task.name}%")}))

	def test_a_killed_run_found_by_the_hourly_check_is_retried(self):
		from btu.btu_core.task_runner import expire_stale_in_progress_logs

		task = make_task(f"{HERE}.sample_always_fails", arguments='{"name": "killed"}', max_retries=1)
		log = frappe.get_doc(
			{
				"doctype": "BTU Task Log",
				"task": task.name,
				"success_fail": "In-Progress",
				"date_time_started": "2000-01-01 00:00:00",
				"task_component": "Scheduler",
				"arguments": '{"name": "killed"}',
			}
		).insert(ignore_permissions=True)
		frappe.db.commit()
		self.assertGreaterEqual(expire_stale_in_progress_logs(), 1)
		self.assertEqual(frappe.db.get_value("BTU Task Log", log.name, "success_fail"), "Timeout")
		retry = self.one_shot_retrying(log.name)
		self.assertEqual((retry.attempt, json.loads(retry.argument_overrides)), (2, {"name": "killed"}))

	# --- emails ----------------------------------------------------------------------------------------

	def emails_about(self, logs):
		return frappe.get_all(
			"Email Queue",
			filters={"reference_doctype": "BTU Task Log", "reference_name": ("in", logs)},
			fields=["reference_name", "message"],
		)

	def failing_chain(self, **task_fields):
		task = make_task(f"{HERE}.sample_always_fails", max_retries=1, **task_fields)
		schedule = make_schedule(
			task.name, email_recipients=[{"email_address": "ops@example.com", "email_on_error": 1}]
		)
		with outgoing_email_account():
			first = run_scheduled_task(task.name, schedule.name, time.time())["log"]
			second = self.run_one_shot(self.one_shot_retrying(first)).name
			emails = self.emails_about([first, second])
		return first, second, emails

	def test_the_error_email_goes_after_the_last_attempt_only_to_the_first_schedules_recipients(self):
		first, second, emails = self.failing_chain()
		self.assertEqual([e.reference_name for e in emails], [second])
		self.assertIn("(attempt 2 of 2)", emails[0].message)
		self.assertIn("no retry left", emails[0].message)

	def test_email_each_failure_sends_one_per_attempt(self):
		first, second, emails = self.failing_chain(email_each_failure=1)
		self.assertEqual(sorted(e.reference_name for e in emails), sorted([first, second]))
		first_email = next(e for e in emails if e.reference_name == first)
		self.assertIn("(attempt 1 of 2)", first_email.message)
		self.assertIn("attempt 2 runs in 30 s", first_email.message)

	# --- Retry from Desk / btu.api.retry ------------------------------------------------------------------

	def test_retry_runs_a_failed_log_again_now_linked_to_it_once(self):
		from btu.btu_api.housekeeping import retry_task_log

		task = make_task(
			f"{HERE}.sample_fail_first", arguments=json.dumps({"marker": self.marker, "name": "desk"})
		)
		failed = execute_task(task.name, component=COMPONENT_WEB)
		self.assertEqual(failed.status, "Failed")
		before = time.time()
		reply = retry_task_log(failed.log)
		frappe.db.commit()
		one_shot = frappe.get_doc("BTU Task Schedule", reply["run_id"])
		self.assertEqual(
			(one_shot.retry_of, one_shot.attempt, one_shot.run_frequency), (failed.log, 2, "Once")
		)
		self.assert_planned(one_shot, before, time.time())  # now
		wait_for(lambda: self.daemon.planned_or_enqueued(one_shot.name), what="the daemon to plan the retry")
		with self.assertRaises(frappe.ValidationError) as ctx:
			retry_task_log(failed.log)
		self.assertIn(f"already has a retry planned: run {one_shot.name}", str(ctx.exception))

		second = self.run_one_shot(one_shot)
		self.assertEqual((second.success_fail, second.retry_of, second.attempt), ("Success", failed.log, 2))
		self.assertEqual(second.stdout, "second call greets desk\n")
		with self.assertRaises(frappe.ValidationError) as ctx:
			retry_task_log(failed.log)
		self.assertIn(
			f"was already retried: {second.name} (Success). Retry that one instead.", str(ctx.exception)
		)
		with self.assertRaises(frappe.ValidationError) as ctx:
			retry_task_log(second.name)
		self.assertIn("is Success: only a Failed or Timeout run can be retried", str(ctx.exception))

	def test_the_python_api_retries_and_exposes_the_step_recorder(self):
		from btu.btu_core.steps import step

		self.assertIs(btu.api.step, step)
		task = make_task(f"{HERE}.sample_always_fails", arguments='{"name": "api"}')
		failed = execute_task(task.name, component=COMPONENT_WEB)
		run_id = btu.api.retry(failed.log)
		one_shot = frappe.get_doc("BTU Task Schedule", run_id)
		self.assertEqual((one_shot.retry_of, one_shot.attempt), (failed.log, 2))
		self.assertEqual(json.loads(one_shot.argument_overrides), {"name": "api"})

	def test_a_retried_log_can_be_deleted_its_one_shot_lets_go_of_it(self):
		from btu.btu_core.doctype.btu_task_log.btu_task_log import delete_logs

		task = make_task(f"{HERE}.sample_always_fails")
		first = execute_task(task.name, component=COMPONENT_WEB).log
		second = execute_task(task.name, component=COMPONENT_WEB).log
		run_ids = [btu.api.retry(first), btu.api.retry(second)]
		frappe.db.commit()
		frappe.delete_doc("BTU Task Log", first)  # as Desk deletes: links checked
		delete_logs([second])  # as Delete by date range and Log Settings do
		self.assertEqual(
			[frappe.db.get_value("BTU Task Schedule", r, "retry_of") for r in run_ids], [None, None]
		)

	def test_only_a_system_manager_may_retry(self):
		from btu.btu_api.housekeeping import retry_task_log

		task = make_task(f"{HERE}.sample_always_fails")
		failed = execute_task(task.name, component=COMPONENT_WEB)
		frappe.set_user("Guest")
		try:
			with self.assertRaises(frappe.PermissionError):
				retry_task_log(failed.log)
		finally:
			frappe.set_user("Administrator")
		self.assertFalse(frappe.db.exists("BTU Task Schedule", {"retry_of": failed.log}))
