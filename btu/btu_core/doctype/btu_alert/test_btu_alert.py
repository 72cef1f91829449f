"""Alerts for runs that did not happen or went wrong (bench run-tests --app btu): the minute check
raises No Success and Late Start once per incident, the runner raises Failures, a successful run
clears them, and the System Managers get Frappe notifications."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import frappe
from frappe.utils import add_to_date, now_datetime

from btu.btu_core import alerts
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.task_runner import run_scheduled_task
from btu.btu_core.testing import BTUTestCase
from btu.contracts.fire_times import FireTimes

SAMPLE = "btu.btu_core.sample_tasks"
UTC = timezone.utc


class TestLatestFireTime(BTUTestCase):
	def test_the_latest_fire_time_in_a_window(self):
		until = datetime(2026, 12, 7, 10, 0, 30, tzinfo=UTC)
		since = until - timedelta(days=3)
		self.assertEqual(
			alerts.latest_fire_time(FireTimes("0 9 * * *", "UTC"), since, until),
			datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
		)
		self.assertEqual(
			alerts.latest_fire_time(FireTimes("* * * * *", "UTC"), since, until),
			datetime(2026, 12, 7, 10, 0, tzinfo=UTC),
		)
		self.assertEqual(  # in the schedule's zone: 09:00 in New York is 14:00 UTC (the day before here)
			alerts.latest_fire_time(FireTimes("0 9 * * *", "America/New_York"), since, until),
			datetime(2026, 12, 6, 14, 0, tzinfo=UTC),
		)
		self.assertIsNone(
			alerts.latest_fire_time(FireTimes("0 9 * * *", "UTC"), until - timedelta(minutes=30), until)
		)
		self.assertEqual(  # a yearly rule, found by the doubling search
			alerts.latest_fire_time(FireTimes("0 0 1 1 *", "UTC"), until - timedelta(days=399), until),
			datetime(2026, 1, 1, tzinfo=UTC),
		)


class TestAlerts(BTUTestCase):
	def setUp(self):
		super().setUp()
		self.task = make_task(f"{SAMPLE}.hello", arguments='{"name": "alerts"}')

	def schedule(self, **fields):
		schedule = make_schedule(self.task.name, cron_string="* * * * *", cron_timezone="UTC", **fields)
		# Saved half an hour ago: the fire times since then are judged.
		frappe.db.set_value(
			"BTU Task Schedule",
			schedule.name,
			"modified",
			add_to_date(now_datetime(), minutes=-30),
			update_modified=False,
		)
		frappe.db.commit()
		return schedule

	def check(self, name: str) -> int:
		row = frappe.db.get_value("BTU Task Schedule", name, list(alerts.CHECK_FIELDS), as_dict=True)
		return alerts.check_schedule(row, "UTC")

	def open_alerts(self, name: str) -> list[dict]:
		return frappe.get_all(
			"BTU Alert", filters={"schedule": name, "status": "Open"}, fields=["name", "kind", "message"]
		)

	def test_no_success_is_raised_once_and_cleared_by_a_successful_run(self):
		schedule = self.schedule(alert_no_success_minutes=5)
		self.assertEqual(self.check(schedule.name), 1)
		self.assertEqual(self.check(schedule.name), 0)  # one incident, one alert
		[alert] = self.open_alerts(schedule.name)
		self.assertEqual(alert.kind, "No Success")
		self.assertIn("within 5 minutes", alert.message)
		notified = frappe.get_all(
			"Notification Log",
			filters={"document_type": "BTU Alert", "document_name": alert.name},
			pluck="for_user",
		)
		self.assertIn("Administrator", notified)

		outcome = run_scheduled_task(self.task.name, schedule.name, int(time.time()) // 60 * 60)
		self.assertEqual(outcome["status"], "Success")
		self.assertEqual(self.open_alerts(schedule.name), [])
		cleared = frappe.db.get_value("BTU Alert", alert.name, ["status", "cleared_by_log"], as_dict=True)
		self.assertEqual((cleared.status, cleared.cleared_by_log), ("Cleared", outcome["log"]))
		self.assertEqual(self.check(schedule.name), 0)  # a run succeeded after the judged fire time

	def test_late_start_is_raised_when_no_run_of_a_fire_time_began(self):
		schedule = self.schedule(alert_late_start_minutes=10)
		self.assertEqual(self.check(schedule.name), 1)
		self.assertEqual([a.kind for a in self.open_alerts(schedule.name)], ["Late Start"])

	def test_a_schedule_saved_after_its_fire_times_is_not_judged_by_them(self):
		schedule = make_schedule(self.task.name, cron_string="* * * * *", alert_no_success_minutes=5)
		self.assertEqual(self.check(schedule.name), 0)  # saved just now: no fire time of it is 5 min old

	def test_failures_in_a_row_are_raised_by_the_runner(self):
		failing = make_task(f"{SAMPLE}.fail")
		schedule = make_schedule(failing.name, cron_string="* * * * *", alert_after_failures=2)
		frappe.db.commit()
		fire = int(time.time()) // 60 * 60 - 600
		for step in range(2):
			run_scheduled_task(failing.name, schedule.name, fire + 60 * step)
		[alert] = self.open_alerts(schedule.name)
		self.assertEqual(alert.kind, "Failures")
		self.assertIn("2 failed runs in a row", alert.message)


class TestAlertWebhook(BTUTestCase):
	"""Alerts reach a webhook through Frappe's own Webhook DocType (no code of BTU's): a Webhook on BTU
	Alert's *after_insert* posts each raised alert to the URL, here a local HTTP server."""

	def test_a_raised_alert_is_posted_to_a_frappe_webhook(self):
		import json
		import threading
		from http.server import BaseHTTPRequestHandler, HTTPServer

		received: list[dict] = []

		class Receiver(BaseHTTPRequestHandler):
			def do_POST(self):
				body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
				received.append(json.loads(body or b"{}"))
				self.send_response(200)
				self.end_headers()

			def log_message(self, *args):
				pass

		server = HTTPServer(("127.0.0.1", 0), Receiver)
		threading.Thread(target=server.serve_forever, daemon=True).start()
		self.addCleanup(server.shutdown)
		before = set(frappe.get_all("Webhook Request Log", pluck="name"))
		webhook = frappe.get_doc(
			{
				"doctype": "Webhook",
				"__newname": f"BTU test alert webhook {frappe.generate_hash(length=6)}",
				"webhook_doctype": "BTU Alert",
				"webhook_docevent": "after_insert",
				"request_url": f"http://127.0.0.1:{server.server_port}/btu-alert",
				"request_method": "POST",
				"request_structure": "JSON",
				"webhook_json": '{"alert": "{{ doc.name }}", "kind": "{{ doc.kind }}", '
				'"schedule": "{{ doc.schedule }}", "message": {{ doc.message | tojson }}}',
			}
		).insert(ignore_permissions=True)

		def remove_webhook():
			frappe.delete_doc("Webhook", webhook.name, ignore_permissions=True, force=True)
			for name in set(frappe.get_all("Webhook Request Log", pluck="name")) - before:
				frappe.delete_doc("Webhook Request Log", name, ignore_permissions=True, force=True)
			frappe.cache.delete_value("webhooks")
			frappe.db.commit()

		self.addCleanup(remove_webhook)
		frappe.db.commit()
		task = make_task(f"{SAMPLE}.hello", arguments='{"name": "webhook"}')
		schedule = make_schedule(task.name, cron_string="* * * * *", cron_timezone="UTC")
		name = alerts.raise_alert(schedule, alerts.FAILURES, "3 failed runs in a row <b>hostile</b>")
		frappe.db.commit()  # Frappe posts webhooks after the commit (at once under run-tests)
		deadline = time.monotonic() + 15
		while not received and time.monotonic() < deadline:
			time.sleep(0.1)
		self.assertEqual(
			received,
			[
				{
					"alert": name,
					"kind": "Failures",
					"schedule": schedule.name,
					"message": "3 failed runs in a row <b>hostile</b>",
				}
			],
		)
