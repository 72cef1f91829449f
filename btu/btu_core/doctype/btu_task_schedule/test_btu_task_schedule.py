"""BTU Task Schedule: cron rules, time zones, argument overrides, and what a real daemon hears after commit."""

from __future__ import annotations

import os
import tempfile
import time

import frappe

from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.testing import BTUTestCase, DaemonTestCase, wait_for

# A rule that never fires while a test runs: a test schedule committed to a live site is never run.
QUIET_CRON = "0 0 1 1 *"


def make_schedule(task: str, **fields):
	values = {
		"doctype": "BTU Task Schedule",
		"task": task,
		"run_frequency": "Cron Style",
		"cron_string": QUIET_CRON,
	}
	values.update(fields)
	return frappe.get_doc(values).insert()


class TestBTUTaskSchedule(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.task = make_task(arguments='{"name": "task"}')

	# --- frequency fields -> cron string ------------------------------------------------------

	def test_frequency_fields_become_cron_strings(self):
		cases = [
			({"run_frequency": "Hourly", "minute": 5}, "5 * * * *"),
			({"run_frequency": "Daily", "minute": 30, "hour": 2}, "30 2 * * *"),
			({"run_frequency": "Weekly", "minute": 0, "hour": 8, "day_of_week": "Monday"}, "0 8 * * 1"),
			({"run_frequency": "Monthly", "minute": 0, "hour": 6, "day_of_month": 15}, "0 6 15 * *"),
			(
				{"run_frequency": "Yearly", "minute": 0, "hour": 0, "day_of_month": 1, "month": "March"},
				"0 0 1 3 *",
			),
			({"run_frequency": "Cron Style", "cron_string": "  */15   * * * * "}, "*/15 * * * *"),
		]
		for fields, expected in cases:
			with self.subTest(fields=fields):
				schedule = make_schedule(self.task.name, enabled=0, **fields)
				self.assertEqual(schedule.cron_string, expected)
				self.assertTrue(schedule.schedule_description)
				self.assertEqual(schedule.task_description, self.task.desc_short)

	def test_invalid_cron_is_rejected_with_the_reason(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, cron_string="61 * * * *")
		self.assertIn("61", str(ctx.exception))
		self.assertIn("minute", str(ctx.exception).lower())
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, cron_string="* * *")
		self.assertIn("has 3 fields", str(ctx.exception))

	def test_a_cron_rule_that_never_fires_is_rejected_on_save(self):
		for rule in ("0 0 30 2 *", "0 0 31 4 *"):
			with self.subTest(rule=rule), self.assertRaises(frappe.ValidationError) as ctx:
				make_schedule(self.task.name, cron_string=rule)
			self.assertIn("never", str(ctx.exception).lower())

	def test_impossible_yearly_date_is_rejected(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, run_frequency="Yearly", day_of_month=30, month="February")
		self.assertIn("February has no day 30", str(ctx.exception))

	def test_unknown_time_zone_is_rejected(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, cron_timezone="Mars/Olympus_Mons")
		self.assertIn("Unknown time zone 'Mars/Olympus_Mons'", str(ctx.exception))

	def test_valid_and_empty_time_zones_are_accepted(self):
		self.assertEqual(
			make_schedule(self.task.name, enabled=0, cron_timezone=" Europe/Paris ").cron_timezone,
			"Europe/Paris",
		)
		self.assertEqual(make_schedule(self.task.name, enabled=0, cron_timezone="").cron_timezone, "")

	def test_invalid_override_json_is_rejected_with_position(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, argument_overrides='{"name": }')
		self.assertIn("line 1, column", str(ctx.exception))

	def test_overrides_must_fit_the_function(self):
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name, argument_overrides='{"colour": "red"}')
		self.assertIn("unexpected keyword argument 'colour'", str(ctx.exception))

	def test_only_submitted_tasks_may_be_scheduled(self):
		draft = make_task(submit=False)
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(draft.name)
		self.assertIn("only submitted tasks may be scheduled", str(ctx.exception))

	def test_a_function_outside_the_installed_apps_is_refused_as_the_task_form_does(self):
		"""The schedule resolves its task's function with the same installed-apps rule as the task
		form and the runner (a task row written before that rule, or by hand, is caught here)."""
		frappe.db.set_value("BTU Task", self.task.name, "function_string", "os.getcwd", update_modified=False)
		frappe.clear_document_cache("BTU Task", self.task.name)
		with self.assertRaises(frappe.ValidationError) as ctx:
			make_schedule(self.task.name)
		self.assertIn("'os' is not an installed app", str(ctx.exception))

	def test_a_schedule_that_has_run_can_be_deleted_and_its_log_keeps_its_name(self):
		from btu.btu_core.task_runner import run_scheduled_task

		schedule = make_schedule(self.task.name)
		frappe.db.commit()
		outcome = run_scheduled_task(self.task.name, schedule.name, int(time.time()))
		self.assertEqual(outcome["status"], "Success", outcome)
		frappe.delete_doc("BTU Task Schedule", schedule.name)  # as Desk does: no force
		frappe.db.commit()
		self.assertFalse(frappe.db.exists("BTU Task Schedule", schedule.name))
		self.assertEqual(frappe.db.get_value("BTU Task Log", outcome["log"], "schedule"), schedule.name)

	def test_a_new_schedule_never_takes_the_name_that_logs_still_carry(self):
		"""Frappe winds the series back when the newest schedule is deleted; the next schedule must
		not take that name, or the old schedule's logs would seem to be the new one's."""
		from btu.btu_core.task_runner import run_scheduled_task

		old = make_schedule(self.task.name)
		frappe.db.commit()
		run_scheduled_task(self.task.name, old.name, int(time.time()))
		frappe.delete_doc("BTU Task Schedule", old.name)
		frappe.db.commit()
		new = make_schedule(self.task.name)
		self.assertNotEqual(new.name, old.name)
		self.assertFalse(frappe.db.exists("BTU Task Log", {"schedule": new.name}))

	def test_the_schedules_of_a_cancelled_task_can_be_deleted_after_they_ran(self):
		from btu.btu_core.task_runner import run_scheduled_task

		schedule = make_schedule(self.task.name)
		frappe.db.commit()
		log = run_scheduled_task(self.task.name, schedule.name, int(time.time()))["log"]
		task = frappe.get_doc("BTU Task", self.task.name)
		task.cancel()
		frappe.delete_doc("BTU Task Schedule", schedule.name)
		frappe.delete_doc("BTU Task", task.name)
		frappe.db.commit()
		self.assertFalse(frappe.db.exists("BTU Task", task.name))
		self.assertEqual(
			frappe.db.get_value("BTU Task Log", log, ["task", "schedule"]), (task.name, schedule.name)
		)

	def test_preview_lists_runs_in_both_zones(self):
		from btu.btu_api.endpoints import preview_schedule

		preview = preview_schedule("Daily", minute=30, hour=2, cron_timezone="America/New_York", count=10)
		self.assertEqual(preview["cron_string"], "30 2 * * *")
		self.assertEqual(len(preview["runs"]), 10)
		self.assertTrue(all(r["fire_time_schedule_zone"].endswith("02:30:00") for r in preview["runs"]))
		self.assertIn("fire_time_user_zone", preview["runs"][0])


class TestScheduleReachesTheDaemon(DaemonTestCase):
	"""Saving, disabling and deleting a schedule reach a real daemon, and only after commit."""

	def setUp(self):
		super().setUp()
		self.task = make_task(arguments='{"name": "task"}')

	def test_daemon_hears_of_a_new_schedule_only_after_commit(self):
		mark = self.daemon.mark()
		schedule = make_schedule(self.task.name)
		self.assertFalse(frappe.flags.btu_daemon_unreachable_warned)
		self.assertIsNone(self.daemon.next_run(schedule.name))
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(schedule.name), what=f"{schedule.name} in the daemon's Redis")
		self.assertIn(f"schedule={schedule.name}", self.daemon.output(mark))

	def test_the_form_says_whether_the_next_run_is_the_current_rules(self):
		"""An edit the daemon has not read (written past the form: no socket message) leaves the old
		rule's time in Redis: the form must not show it as this rule's next run."""
		from btu.btu_api.endpoints import schedule_daemon_state

		schedule = make_schedule(self.task.name, cron_string="0 3 * * *")
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(schedule.name), what="schedule planned")
		state = schedule_daemon_state(schedule.name)["next_run"]
		self.assertEqual((state["state"], state["planned_by"]), ("confirmed", "0 3 * * *"))
		frappe.db.set_value(
			"BTU Task Schedule", schedule.name, "cron_string", "0 4 * * *", update_modified=False
		)
		frappe.db.commit()
		state = schedule_daemon_state(schedule.name)["next_run"]
		self.assertEqual((state["state"], state["planned_by"]), ("unconfirmed", "0 3 * * *"))
		# a disable the daemon has not heard of: its time is no longer this schedule's either
		frappe.db.set_value("BTU Task Schedule", schedule.name, {"cron_string": "0 3 * * *", "enabled": 0})
		frappe.db.commit()
		self.assertEqual(schedule_daemon_state(schedule.name)["next_run"]["state"], "unconfirmed")

	def test_nothing_is_sent_after_a_rollback(self):
		mark = self.daemon.mark()
		schedule = make_schedule(self.task.name)
		name = schedule.name
		requests_before = self.daemon.status()["counters"]["socket_requests"]
		frappe.db.rollback()
		frappe.db.commit()
		# Only the status request itself reached the daemon: no create or cancel for the rolled-back row.
		self.assertEqual(self.daemon.status()["counters"]["socket_requests"], requests_before + 1)
		self.assertNotIn(f"schedule={name}", self.daemon.output(mark))

	def test_disabling_and_deleting_remove_it_from_the_daemon(self):
		schedule = make_schedule(self.task.name)
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(schedule.name), what="schedule planned")
		schedule.enabled = 0
		schedule.save()
		self.assertIsNotNone(self.daemon.next_run(schedule.name))  # not committed yet
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(schedule.name) is None, what="disabled schedule removed")
		schedule.enabled = 1
		schedule.save()
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(schedule.name), what="re-enabled schedule planned")
		frappe.delete_doc("BTU Task Schedule", schedule.name)
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(schedule.name) is None, what="deleted schedule removed")

	def test_several_changes_in_one_transaction_send_the_last_action_once(self):
		mark = self.daemon.mark()
		schedule = make_schedule(self.task.name)
		schedule.enabled = 0
		schedule.save()
		frappe.db.commit()
		wait_for(lambda: f"schedule_cancel_requested site={frappe.local.site} schedule={schedule.name}"
				 in self.daemon.output(mark), what="the cancel")  # fmt: skip
		self.assertNotIn(f"schedule_sync_requested site={frappe.local.site} schedule={schedule.name}",
						 self.daemon.output(mark))  # fmt: skip
		self.assertIsNone(self.daemon.next_run(schedule.name))

	def test_unreachable_daemon_keeps_the_save_and_warns_once_in_the_response(self):
		frappe.flags.btu_socket_path = os.path.join(tempfile.gettempdir(), "btu-nobody-listens.sock")
		frappe.local.message_log = []
		first = make_schedule(self.task.name)
		second = make_schedule(self.task.name)
		frappe.db.commit()
		self.assertTrue(frappe.db.exists("BTU Task Schedule", first.name))
		self.assertTrue(frappe.db.exists("BTU Task Schedule", second.name))
		warnings = [m for m in frappe.get_message_log() if "did not hear of it" in (m.get("message") or "")]
		self.assertEqual(len(warnings), 1, frappe.get_message_log())
		warning = warnings[0]
		self.assertEqual(warning.get("indicator"), "orange")
		self.assertEqual(warning.get("title"), "BTU Scheduler Daemon Unreachable")
		self.assertIn("btu-nobody-listens.sock", warning["message"])
		self.assertIn("when it is back", warning["message"])
		self.assertNotIn(".).", warning["message"])  # no doubled punctuation
		frappe.local.message_log = []
