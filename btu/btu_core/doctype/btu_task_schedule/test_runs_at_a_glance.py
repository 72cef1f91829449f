"""Desk at a glance on a real site (bench run-tests --app btu): a schedule's next run by its rule and
its last run as SQL columns (written on save and by each run), finished one-shots cleaned up after
their retention, and a task's deletion with its one-shots, its schedules and its logs' names."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import frappe
from frappe.utils import add_days, now_datetime

from btu.btu_core import one_shot_cleanup, task_deletion
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.run_summary import to_system_time
from btu.btu_core.task_runner import run_scheduled_task
from btu.btu_core.testing import BTUTestCase

SAMPLE = "btu.btu_core.sample_tasks"


def one_shot(task: str, **fields):
	at = (datetime.now(ZoneInfo("UTC")) + timedelta(hours=2)).replace(microsecond=0, tzinfo=None)
	return make_schedule(task, run_frequency="Once", run_at=at, cron_timezone="UTC", **fields)


class TestRunsAtAGlance(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.task = make_task(f"{SAMPLE}.hello", arguments='{"name": "glance"}')

	def test_a_saved_schedule_knows_its_next_run_by_its_rule(self):
		schedule = make_schedule(self.task.name, cron_string="0 9 * * *", cron_timezone="UTC")
		now = datetime.now(timezone.utc)
		nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
		expected = nine if nine > now else nine + timedelta(days=1)
		self.assertEqual(schedule.next_run, to_system_time(expected.timestamp()))
		schedule.enabled = 0
		schedule.save()
		self.assertIsNone(schedule.next_run)  # disabled: no next run

	def test_a_run_writes_the_last_run_and_moves_the_next_run(self):
		schedule = make_schedule(self.task.name, cron_string="*/5 * * * *", cron_timezone="UTC")
		frappe.db.commit()
		outcome = run_scheduled_task(self.task.name, schedule.name, int(time.time()) // 300 * 300)
		row = frappe.db.get_value(
			"BTU Task Schedule",
			schedule.name,
			["last_status", "last_log", "last_run", "next_run"],
			as_dict=True,
		)
		self.assertEqual((row.last_status, row.last_log), ("Success", outcome["log"]))
		self.assertIsNotNone(row.last_run)
		self.assertGreater(row.next_run, now_datetime() - timedelta(seconds=1))  # the rule's next, ahead

	def test_a_one_shot_says_what_became_of_it(self):
		run = one_shot(self.task.name)
		self.assertIsNotNone(run.next_run)
		frappe.db.commit()
		run_scheduled_task(self.task.name, run.name, run.run_at_timestamp())
		row = frappe.db.get_value(
			"BTU Task Schedule", run.name, ["enabled", "last_status", "next_run"], as_dict=True
		)
		self.assertEqual((row.enabled, row.last_status, row.next_run), (0, "Success", None))

	def test_finished_one_shots_go_after_their_retention_and_their_logs_stay(self):
		old, recent, pending, running = (one_shot(self.task.name) for _ in range(4))
		frappe.db.commit()
		log = run_scheduled_task(self.task.name, old.name, old.run_at_timestamp())["log"]
		run_scheduled_task(self.task.name, recent.name, recent.run_at_timestamp())
		frappe.db.set_value("BTU Task Schedule", running.name, {"enabled": 0, "last_status": "In-Progress"})
		long_ago = add_days(now_datetime(), -31)
		for name in (old.name, running.name):
			frappe.db.set_value("BTU Task Schedule", name, "modified", long_ago, update_modified=False)
		# (limited to this test's task: the site's own one-shots are not the test's to delete)
		self.assertEqual(one_shot_cleanup.delete_finished_one_shots(30, task=self.task.name), 1)
		self.assertFalse(frappe.db.exists("BTU Task Schedule", old.name))
		for kept in (recent.name, pending.name, running.name):
			self.assertTrue(frappe.db.exists("BTU Task Schedule", kept), kept)
		self.assertEqual(
			frappe.db.get_value("BTU Task Log", log, ["schedule", "schedule_deleted"]), (old.name, 1)
		)
		self.assertEqual(
			one_shot_cleanup.delete_finished_one_shots(0, task=self.task.name), 0
		)  # 0 keeps them

	def test_deleting_a_task_takes_its_finished_one_shots_and_refuses_while_schedules_remain(self):
		done = one_shot(self.task.name)
		frappe.db.commit()
		log = run_scheduled_task(self.task.name, done.name, done.run_at_timestamp())["log"]
		recurring = make_schedule(self.task.name)
		self.task.reload()
		self.task.cancel()
		with self.assertRaises(frappe.LinkExistsError) as refused:
			frappe.delete_doc("BTU Task", self.task.name)
		message = str(refused.exception)
		self.assertIn(recurring.name, message)
		self.assertIn("Delete with its schedules", message)
		self.assertNotIn(done.name, message)  # its finished one-shot does not hold it
		frappe.delete_doc("BTU Task Schedule", recurring.name)
		frappe.delete_doc("BTU Task", self.task.name)
		self.assertFalse(frappe.db.exists("BTU Task Schedule", done.name))
		self.assertEqual(
			frappe.db.get_value("BTU Task Log", log, ["task", "task_deleted"]), (self.task.name, 1)
		)

	def test_delete_with_its_schedules(self):
		make_schedule(self.task.name)
		one_shot(self.task.name)
		result = task_deletion.delete_task_with_schedules(self.task.name)
		self.assertEqual(result["schedules_deleted"], 2)
		self.assertFalse(frappe.db.exists("BTU Task", self.task.name))
		self.assertFalse(frappe.db.exists("BTU Task Schedule", {"task": self.task.name}))
