"""Pause After Failures and the audit trail on a real site (bench run-tests --app btu): a schedule
disables itself after N failed runs in a row (a success in between starts the count again), says
why, alerts the System Managers and resumes with one save; the buttons that change no field leave
a line naming the user on the timeline of what they concern."""

from __future__ import annotations

import time

import frappe

from btu.btu_api import endpoints
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.task_runner import run_scheduled_task
from btu.btu_core.testing import BTUTestCase

SAMPLE = "btu.btu_core.sample_tasks"


def timeline(doctype: str, name: str) -> list[str]:
	return frappe.get_all(
		"Comment",
		filters={"reference_doctype": doctype, "reference_name": name, "comment_type": "Info"},
		pluck="content",
		order_by="creation asc",
	)


class TestPauseAfterFailures(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.failing = make_task(f"{SAMPLE}.fail", arguments='{"message": "<b>boom</b>"}')
		self.fire = int(time.time()) // 60 * 60 - 3600

	def run_once(self, schedule) -> dict:
		self.fire += 60
		frappe.db.commit()
		return run_scheduled_task(schedule.task, schedule.name, self.fire)

	def test_three_failures_in_a_row_pause_the_schedule_and_alert_the_managers(self):
		schedule = make_schedule(self.failing.name, cron_string="* * * * *", pause_after_failures=3)
		for _ in range(2):
			self.assertEqual(self.run_once(schedule)["status"], "Failed")
		self.assertEqual(frappe.db.get_value("BTU Task Schedule", schedule.name, "enabled"), 1)
		last = self.run_once(schedule)["log"]

		row = frappe.db.get_value(
			"BTU Task Schedule", schedule.name, ["enabled", "paused_reason", "next_run"], as_dict=True
		)
		self.assertEqual(row.enabled, 0)
		self.assertIn("3 failed runs in a row", row.paused_reason)
		self.assertIn(last, row.paused_reason)
		self.assertIsNone(row.next_run)
		self.assertTrue(
			any("3 failed runs in a row" in c for c in timeline("BTU Task Schedule", schedule.name))
		)
		alerts = frappe.get_all(
			"Notification Log",
			filters={"document_type": "BTU Task Schedule", "document_name": schedule.name, "type": "Alert"},
			fields=["for_user", "subject"],
		)
		self.assertIn("Administrator", [a.for_user for a in alerts])
		self.assertIn("paused after 3 failed runs", alerts[0].subject)

		doc = frappe.get_doc("BTU Task Schedule", schedule.name)  # Resume: enabled again, reason gone
		doc.enabled = 1
		doc.save()
		self.assertFalse(doc.paused_reason)

	def test_a_success_between_failures_starts_the_count_again(self):
		schedule = make_schedule(self.failing.name, cron_string="* * * * *", pause_after_failures=2)
		self.run_once(schedule)
		frappe.db.set_value("BTU Task", self.failing.name, "function_string", f"{SAMPLE}.hello")
		frappe.db.set_value("BTU Task", self.failing.name, "arguments", "{}")
		self.assertEqual(self.run_once(schedule)["status"], "Success")
		frappe.db.set_value("BTU Task", self.failing.name, "function_string", f"{SAMPLE}.fail")
		self.assertEqual(self.run_once(schedule)["status"], "Failed")
		self.assertEqual(frappe.db.get_value("BTU Task Schedule", schedule.name, "enabled"), 1)  # 1 in a row
		self.run_once(schedule)
		self.assertEqual(frappe.db.get_value("BTU Task Schedule", schedule.name, "enabled"), 0)

	def test_zero_never_pauses(self):
		schedule = make_schedule(self.failing.name, cron_string="* * * * *")
		for _ in range(3):
			self.run_once(schedule)
		self.assertEqual(frappe.db.get_value("BTU Task Schedule", schedule.name, "enabled"), 1)


class TestAuditTrail(BTUTestCase):
	def test_run_now_retry_and_cancel_name_the_user_on_the_timeline(self):
		import btu.api

		task = make_task(f"{SAMPLE}.fail", arguments='{"message": "audit"}')
		endpoints.run_task_in_worker(task.name)
		outcome = endpoints.run_task_now(task.name)
		run_id = btu.api.run_later(task.name, delay=3600)
		self.assertTrue(btu.api.cancel(run_id))
		from btu.btu_api.housekeeping import retry_task_log

		retried = retry_task_log(outcome["log"])["run_id"]

		lines = timeline("BTU Task", task.name)
		self.assertTrue(any("Run now in a worker" in line for line in lines), lines)
		self.assertTrue(
			any("Run now on this server" in line and outcome["log"] in line for line in lines), lines
		)
		self.assertTrue(any(f"cancelled run {run_id}" in line for line in lines), lines)
		self.assertTrue(any(f"retried log {outcome['log']}" in line for line in lines), lines)
		owners = frappe.get_all(
			"Comment",
			filters={"reference_doctype": "BTU Task", "reference_name": task.name},
			pluck="comment_email",
		)
		self.assertEqual(set(owners), {"Administrator"})  # the timeline names the user before the line
		self.assertTrue(
			any(f"cancelled run {run_id}" in line for line in timeline("BTU Task Schedule", run_id))
		)
		self.assertTrue(any(retried in line for line in timeline("BTU Task Log", outcome["log"])))

	def test_a_schedule_change_is_a_version_naming_the_user(self):
		task = make_task(f"{SAMPLE}.hello")
		schedule = make_schedule(task.name, cron_string="5 * * * *")
		schedule.cron_string = "10 * * * *"
		schedule.save(ignore_version=False)  # (Frappe records no Version under run-tests by default)
		versions = frappe.get_all(
			"Version",
			filters={"ref_doctype": "BTU Task Schedule", "docname": schedule.name},
			fields=["owner", "data"],
		)
		self.assertTrue(
			any("10 * * * *" in v.data and v.owner == "Administrator" for v in versions), versions
		)
