"""One-shot runs, btu.api, the overlap policy and pause on a real site (bench run-tests --app btu):
validation, the runner's side (claimed once, attempt/retry_of in the Task Log, transient tasks), and
what a real daemon of the test's own enqueues, skips and reports."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import frappe

import btu.api
from btu.btu_api import status
from btu.btu_api.endpoints import resync_all_schedules, schedule_daemon_state
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.task_runner import SKIPPED, SUCCESS, execute_task, run_scheduled_task
from btu.btu_core.testing import BTUTestCase, DaemonTestCase, wait_for

HERE = "btu.btu_core.doctype.btu_task.test_btu_task"
PARIS = ZoneInfo("Europe/Paris")


def later(hours: float = 2.0, zone: ZoneInfo = PARIS) -> datetime:
	return (datetime.now(zone) + timedelta(hours=hours)).replace(microsecond=0)


def fire_ts(run_id: str) -> int:
	return frappe.get_doc("BTU Task Schedule", run_id).run_at_timestamp()


class TestOneShotValidation(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.task = make_task(arguments='{"name": "task"}')

	def test_a_one_shot_needs_run_at_and_refuses_a_time_well_past(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, run_frequency="Once", cron_string="")
		self.assertIn("Run At is required for a one-shot", str(ctx.exception))
		past = (datetime.now(PARIS) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, run_frequency="Once", run_at=past, cron_timezone="Europe/Paris")
		self.assertIn(
			f"Run At {past} (Europe/Paris) is in the past; choose a later time.", str(ctx.exception)
		)
		disabled = make_schedule(
			self.task.name, run_frequency="Once", run_at=past, cron_timezone="Europe/Paris", enabled=0
		)
		self.assertFalse(disabled.enabled)  # a past one-shot may be kept, disabled (its history)

	def test_run_at_is_a_wall_time_in_the_schedules_zone(self):
		schedule = make_schedule(
			self.task.name, run_frequency="Once", run_at="2099-12-24 14:00:00", cron_timezone="Europe/Paris"
		)
		self.assertEqual(schedule.cron_string, "")
		expected = datetime(2099, 12, 24, 13, 0, tzinfo=timezone.utc).timestamp()
		self.assertEqual(schedule.run_at_timestamp(), expected)
		self.assertEqual(
			schedule.schedule_description, "Once, at 2099-12-24 14:00:00 Europe/Paris (13:00:00 UTC)"
		)
		self.assertEqual(schedule.overlap_policy, "Allow")
		self.assertEqual(schedule.attempt, 1)

	def test_overlap_policy_defaults_to_allow_and_accepts_skip(self):
		self.assertEqual(make_schedule(self.task.name, enabled=0).overlap_policy, "Allow")
		self.assertEqual(
			make_schedule(self.task.name, enabled=0, overlap_policy="Skip").overlap_policy, "Skip"
		)
		with self.assertRaises(frappe.ValidationError):
			make_schedule(self.task.name, enabled=0, overlap_policy="Replace")


class TestPythonAPI(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.task = make_task(arguments='{"name": "task"}')

	def test_run_later_at_an_aware_time_keeps_its_zone(self):
		at = later(3)
		run_id = btu.api.run_later(self.task.name, at=at, overrides={"name": "later"}, queue="long")
		doc = frappe.get_doc("BTU Task Schedule", run_id)
		self.assertEqual((doc.run_frequency, doc.enabled, doc.cron_timezone), ("Once", 1, "Europe/Paris"))
		self.assertEqual(doc.run_at_timestamp(), int(at.timestamp()))
		self.assertEqual(frappe.parse_json(doc.argument_overrides), {"name": "later"})
		self.assertEqual((doc.queue_name, doc.attempt, doc.retry_of), ("long", 1, None))

	def test_run_later_after_a_delay_and_run_now(self):
		zone = status.configuration_time_zone()
		before = time.time()
		run_id = btu.api.run_later(self.task.name, delay=600)
		after = time.time()
		doc = frappe.get_doc("BTU Task Schedule", run_id)
		self.assertEqual(doc.cron_timezone, zone)
		self.assertTrue(before + 600 <= doc.run_at_timestamp() <= after + 601)
		now_id = btu.api.run_now(self.task.name, overrides='{"name": "now"}')
		now = frappe.get_doc("BTU Task Schedule", now_id)
		self.assertTrue(before <= now.run_at_timestamp() <= time.time() + 1)

	def test_at_as_text_for_bench_execute_and_rest(self):
		with_offset = btu.api.run_later(self.task.name, at="2099-12-24T14:00:00+01:00")
		self.assertEqual(fire_ts(with_offset), datetime(2099, 12, 24, 13, 0, tzinfo=timezone.utc).timestamp())
		with_zone = btu.api.run_later(self.task.name, at="2099-07-01 09:30:00 America/New_York")
		doc = frappe.get_doc("BTU Task Schedule", with_zone)
		self.assertEqual(doc.cron_timezone, "America/New_York")
		self.assertEqual(fire_ts(with_zone), datetime(2099, 7, 1, 13, 30, tzinfo=timezone.utc).timestamp())

	def test_bad_input_is_refused_with_what_was_wrong(self):
		failing = execute_task(make_task("sample_failure").name)
		cases = [
			(dict(at=datetime(2099, 1, 1, 12, 0)), "has no time zone"),
			(dict(at="2099-01-01 12:00"), "has no time zone; add an offset"),
			(dict(at="next tuesday"), "is not a date and time"),
			(dict(at=later(), delay=5), "Pass either at= or delay=, not both."),
			(dict(delay=-5), "delay= must be from 0 to"),
			(dict(delay="soon"), "delay= must be a number of seconds, got 'soon'."),
			(dict(queue="nowhere"), "queue='nowhere' is not a BTU Queue."),
			(dict(overrides="{broken"), "invalid JSON at line 1, column 2"),
			(dict(overrides={"colour": "red"}), "unexpected keyword argument 'colour'"),
			(dict(attempt=0), "attempt= must be a whole number from 1, got 0."),
			(dict(retry_of="BTLOG-NOPE"), "retry_of='BTLOG-NOPE' is not a BTU Task Log."),
		]
		for kwargs, message in cases:
			with self.subTest(kwargs=kwargs), self.assertRaises(frappe.ValidationError) as ctx:
				btu.api.run_later(self.task.name, **kwargs)
			self.assertIn(message, str(ctx.exception))
		with self.assertRaises(frappe.DoesNotExistError):
			btu.api.run_later("BTU-NOPE")
		with self.assertRaises(frappe.ValidationError) as ctx:
			btu.api.run_now(make_task(submit=False).name)
		self.assertIn("is a draft; only submitted tasks run", str(ctx.exception))
		self.assertTrue(btu.api.run_later(self.task.name, delay=60, attempt=2, retry_of=failing.log))

	def test_only_system_managers_may_run_or_cancel(self):
		run_id = btu.api.run_later(self.task.name, delay=3600)
		frappe.set_user("Guest")
		try:
			for call in (
				lambda: btu.api.run_now(self.task.name),
				lambda: btu.api.run_function(f"{HERE}.sample_success"),
				lambda: btu.api.cancel(run_id),
			):
				with self.assertRaises(frappe.PermissionError):
					call()
		finally:
			frappe.set_user("Administrator")

	def test_cancel_until_it_starts(self):
		run_id = btu.api.run_later(self.task.name, delay=3600)
		frappe.db.commit()
		self.assertTrue(btu.api.cancel(run_id))
		frappe.db.commit()
		self.assertEqual(frappe.db.get_value("BTU Task Schedule", run_id, "enabled"), 0)
		self.assertFalse(btu.api.cancel(run_id))  # already cancelled
		outcome = run_scheduled_task(self.task.name, run_id, fire_ts(run_id))  # a job enqueued before
		self.assertEqual(outcome["status"], SKIPPED)
		self.assertFalse(frappe.db.exists("BTU Task Log", {"schedule": run_id}))
		self.assertEqual(btu.api.run_status(run_id)["state"], "cancelled")
		repeating = make_schedule(self.task.name, enabled=0)
		with self.assertRaises(frappe.ValidationError) as ctx:
			btu.api.cancel(repeating.name)
		self.assertIn("is a repeating schedule, not a one-shot run: disable it instead.", str(ctx.exception))


class TestTheRunnerSide(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.task = make_task(arguments='{"name": "task"}')

	def test_a_worker_claims_a_one_shot_once_and_its_log_carries_attempt_and_retry_of(self):
		failed = execute_task(make_task("sample_failure").name)
		run_id = btu.api.run_later(
			self.task.name, delay=0, overrides={"name": "retry"}, attempt=3, retry_of=failed.log
		)
		frappe.db.commit()
		first = run_scheduled_task(self.task.name, run_id, fire_ts(run_id))
		self.assertEqual(first["status"], SUCCESS, first)
		log = frappe.get_doc("BTU Task Log", first["log"])
		self.assertEqual((log.schedule, log.attempt, log.retry_of), (run_id, 3, failed.log))
		self.assertIn("hello retry", log.stdout)
		self.assertEqual(
			frappe.db.get_value("BTU Task Schedule", run_id, "enabled"), 0
		)  # claimed, history kept
		again = run_scheduled_task(self.task.name, run_id, fire_ts(run_id))  # a second copy of the job
		self.assertEqual(again["status"], SKIPPED)
		self.assertEqual(frappe.db.count("BTU Task Log", {"schedule": run_id}), 1)
		self.assertFalse(btu.api.cancel(run_id))  # it ran
		state = btu.api.run_status(run_id)
		self.assertEqual((state["state"], state["log"]), ("Success", log.name))
		repeat_log = execute_task(self.task.name)  # runs without a one-shot: attempt 1
		self.assertEqual(
			frappe.db.get_value("BTU Task Log", repeat_log.log, ["attempt", "retry_of"]), (1, None)
		)

	def test_run_function_leaves_only_the_task_log_after_a_success(self):
		run_id = btu.api.run_function(f"{HERE}.sample_success", {"name": "transient", "repeat": 2})
		doc = frappe.get_doc("BTU Task Schedule", run_id)
		task = doc.task
		self.assertTrue(doc.delete_after_run)
		self.assertEqual(frappe.db.get_value("BTU Task", task, "docstatus"), 1)
		frappe.db.commit()
		outcome = run_scheduled_task(task, run_id, fire_ts(run_id))
		self.assertEqual(outcome["status"], SUCCESS, outcome)
		self.assertFalse(frappe.db.exists("BTU Task Schedule", run_id))
		self.assertFalse(frappe.db.exists("BTU Task", task))
		log = frappe.get_doc("BTU Task Log", outcome["log"])
		self.assertEqual((log.task, log.schedule, log.success_fail), (task, run_id, "Success"))
		self.assertEqual(log.stdout.count("hello transient"), 2)
		self.assertEqual(btu.api.run_status(run_id)["state"], "Success")

	def test_a_failed_transient_run_keeps_its_task_for_a_look_and_a_retry(self):
		run_id = btu.api.run_function(f"{HERE}.sample_failure", delay=0)
		task = frappe.db.get_value("BTU Task Schedule", run_id, "task")
		frappe.db.commit()
		outcome = run_scheduled_task(task, run_id, fire_ts(run_id))
		self.assertEqual(outcome["status"], "Failed")
		self.assertTrue(frappe.db.exists("BTU Task", task))
		self.assertEqual(frappe.db.get_value("BTU Task Schedule", run_id, "enabled"), 0)
		self.assertEqual(btu.api.run_status(run_id)["state"], "Failed")

	def test_run_function_refuses_what_a_task_form_refuses(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			btu.api.run_function("os.getcwd")
		self.assertIn("'os' is not an installed app", str(ctx.exception))
		with self.assertRaises(frappe.ValidationError) as ctx:
			btu.api.run_function("")
		self.assertIn("function_path is required", str(ctx.exception))


class TestOneShotsWithTheDaemon(DaemonTestCase):
	"""btu.api and the schedule form's state against a real daemon of the test's own (its jobs go to
	queues no worker reads: the test runs them as a worker would)."""

	def setUp(self):
		super().setUp()
		self.task = make_task(arguments='{"name": "task"}')

	def jobs_of(self, run_id: str) -> list:
		return [j for j in self.daemon.queued_jobs() if j.meta.get("btu_schedule") == run_id]

	def test_run_now_goes_through_the_daemon_once_and_follows_to_its_log(self):
		run_id = btu.api.run_now(self.task.name, overrides={"name": "via daemon"})
		self.assertEqual(
			btu.api.run_status(run_id)["state"], "waiting"
		)  # not committed: the daemon knows nothing
		frappe.db.commit()
		jobs = wait_for(lambda: self.jobs_of(run_id), what="the one-shot's job")
		self.assertEqual(btu.api.run_status(run_id)["state"], "enqueued")
		(job,) = jobs
		inner = job.kwargs["kwargs"]  # what Frappe's execute_job hands the task runner
		outcome = run_scheduled_task(**inner)
		job.delete()
		self.assertEqual(outcome["status"], SUCCESS, outcome)
		self.assertIn("hello via daemon", frappe.db.get_value("BTU Task Log", outcome["log"], "stdout"))
		self.assertEqual(btu.api.run_status(run_id)["state"], "Success")
		mark = self.daemon.mark()
		refreshes = self.daemon.status()["refresh"]["number"]
		self.assertTrue(resync_all_schedules()["ok"])
		wait_for(lambda: self.daemon.status()["refresh"]["number"] > refreshes, what="a full refresh")
		time.sleep(1)
		self.assertIsNone(self.daemon.next_run(run_id))  # claimed (disabled): never planned again
		self.assertEqual(self.jobs_of(run_id), [])
		self.assertNotIn(f"run_enqueued site={frappe.local.site} schedule={run_id}", self.daemon.output(mark))

	def test_a_pending_one_shot_is_planned_then_cancelled(self):
		at = later(5)
		run_id = btu.api.run_later(self.task.name, at=at)
		frappe.db.commit()
		self.assertEqual(wait_for(lambda: self.daemon.next_run(run_id), what="planned"), int(at.timestamp()))
		state = schedule_daemon_state(run_id)
		self.assertEqual(state["one_shot"]["state"], "pending")
		self.assertIn("Europe/Paris", state["one_shot"]["fire_time"])
		upcoming = {r["schedule"]: r for r in status.upcoming_runs(50)}
		self.assertTrue(upcoming[run_id]["once"])
		self.assertTrue(btu.api.cancel(run_id))
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(run_id) is None, what="removed from the daemon")
		self.assertEqual(btu.api.run_status(run_id)["state"], "cancelled")

	def test_skipped_fire_times_of_a_skip_schedule_show_on_its_form(self):
		schedule = make_schedule(self.task.name, cron_string="* * * * * *", overlap_policy="Skip")
		frappe.db.commit()
		try:
			wait_for(lambda: status.skipped_runs(schedule.name), 15, what="a skipped fire time")
		finally:
			schedule.reload()
			schedule.enabled = 0
			schedule.save()
			frappe.db.commit()
		state = schedule_daemon_state(schedule.name)
		first = self.jobs_of(schedule.name)[0]
		skip = state["skipped"][0]
		self.assertEqual(
			(skip["reason"], skip["previous_job"], skip["previous_status"]), ("overlap", first.id, "queued")
		)
		self.assertEqual(skip["time_zone"], schedule.cron_timezone or status.configuration_time_zone())
		self.assertIn("fire_time_user_zone", skip)
		self.assertGreaterEqual(self.daemon.status()["counters"]["runs_skipped_overlap"], 1)


class TestPauseAllSchedules(DaemonTestCase):
	"""BTU Configuration's Pause All Schedules reaches the daemon at the refresh its save asks for.
	(The live daemon of the site reads the flag only at its own full refreshes: the test restores it
	within a second or two.)"""

	def test_pause_all_schedules_pauses_the_site_in_the_daemon_and_on_the_status_page(self):
		config = frappe.get_single("BTU Configuration")
		before = config.pause_all_schedules
		self.assertFalse(status.pause_state()["paused"] and not before)
		try:
			config.pause_all_schedules = 1
			config.save()
			frappe.db.commit()
			wait_for(
				lambda: self.daemon.status()["sites"][frappe.local.site]["paused"], what="the site paused"
			)
			entry = self.daemon.status()["sites"][frappe.local.site]
			self.assertIn("BTU Configuration: Pause All Schedules is set", entry["pause_reasons"])
			page = status.scheduler_status()
			self.assertTrue(page["pause"]["paused"] and page["daemon_pause"]["paused"])
			self.assertIn("BTU Configuration: Pause All Schedules is set", page["pause"]["reasons"])
		finally:
			config = frappe.get_single("BTU Configuration")
			config.pause_all_schedules = before
			config.save()
			frappe.db.commit()
		if not before:
			wait_for(
				lambda: (
					not self.daemon.status()["sites"][frappe.local.site]["paused"]
					or frappe.conf.pause_scheduler
				),
				what="the site resumed",
			)
