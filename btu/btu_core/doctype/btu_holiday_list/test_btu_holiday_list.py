"""Business calendars and jitter on a real site (bench run-tests --app btu): BTU Holiday List, a
schedule that follows it, Show next runs and Next Run as the daemon plans them, a list edit
replanning the daemon, and bad settings refused with their reason."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import frappe
from frappe.utils import get_datetime

from btu.btu_api import status
from btu.btu_api.endpoints import preview_schedule
from btu.btu_core.doctype.btu_task.test_btu_task import make_task
from btu.btu_core.doctype.btu_task_schedule.test_btu_task_schedule import make_schedule
from btu.btu_core.run_summary import to_system_time
from btu.btu_core.testing import DaemonTestCase, wait_for
from btu.contracts import jitter
from btu.contracts.fire_times import FireTimes

HOSTILE = "<img src=x onerror=alert(1)>"


def make_list(name: str, days: list[date], **fields) -> "frappe.model.document.Document":
	doc = frappe.get_doc(
		{
			"doctype": "BTU Holiday List",
			"__newname": name,
			"description": HOSTILE,
			"holidays": [{"holiday_date": day, "description": "closed"} for day in days],
			**fields,
		}
	)
	return doc.insert()


def schedule_zone_dates(preview: dict) -> list[str]:
	return [run["fire_time_schedule_zone"][:10] for run in preview["runs"]]


class TestBusinessCalendars(DaemonTestCase):
	def setUp(self):
		super().setUp()
		self.task = make_task(arguments='{"name": "calendar"}')

	def test_weekly_offs_are_added_once_and_a_date_twice_is_refused(self):
		holidays = make_list(f"Office {frappe.generate_hash(length=6)}", [])
		holidays.from_date, holidays.to_date, holidays.weekly_off = "2027-01-01", "2027-01-31", "Saturday"
		self.assertEqual(holidays.add_weekly_offs(), 5)  # 2, 9, 16, 23, 30 January 2027
		self.assertEqual(holidays.add_weekly_offs(), 0)  # already listed
		holidays.save()
		self.assertEqual(
			[str(row.holiday_date) for row in holidays.holidays],
			["2027-01-02", "2027-01-09", "2027-01-16", "2027-01-23", "2027-01-30"],
		)
		holidays.append("holidays", {"holiday_date": "2027-01-09"})
		with self.assertRaises(frappe.ValidationError) as ctx:
			holidays.save()
		self.assertIn("2027-01-09 is listed twice", str(ctx.exception))

	def test_skip_and_next_working_day_in_show_next_runs_next_run_and_the_daemon(self):
		# The next Monday 09:00 in New York still ahead: a holiday; Tuesday is a working day.
		monday_nine = FireTimes("0 9 * * 1", "America/New_York").next_after(time.time())
		monday = datetime.fromtimestamp(monday_nine, ZoneInfo("America/New_York")).date()
		tuesday = monday + timedelta(days=1)
		tuesday_nine = FireTimes("0 9 * * 2", "America/New_York").next_after(monday_nine)
		holidays = make_list(f"Office {frappe.generate_hash(length=6)}", [monday])
		daily = {"run_frequency": "Daily", "minute": 0, "hour": 9, "cron_timezone": "America/New_York"}
		preview = preview_schedule(**daily, holiday_list=holidays.name, on_holiday="Skip", count=10)
		dates = schedule_zone_dates(preview)
		self.assertNotIn(monday.isoformat(), dates)
		self.assertIn(tuesday.isoformat(), dates)
		moved = preview_schedule(
			run_frequency="Weekly",
			minute=0,
			hour=9,
			day_of_week="Monday",
			cron_timezone="America/New_York",
			holiday_list=holidays.name,
			on_holiday="Next Working Day",
			count=2,
		)
		self.assertEqual(schedule_zone_dates(moved)[0], tuesday.isoformat())  # Monday's run, a day later
		self.assertEqual(moved["holiday_list"], holidays.name)

		schedule = make_schedule(
			self.task.name,
			enabled=1,
			run_frequency="Weekly",
			minute=0,
			hour=9,
			day_of_week="Monday",
			cron_timezone="America/New_York",
			holiday_list=holidays.name,
			on_holiday="Next Working Day",
		)
		frappe.db.commit()
		self.assertEqual(get_datetime(schedule.next_run), to_system_time(tuesday_nine))
		# The daemon plans the same time (it read the list from the site's tables itself) ...
		planned = wait_for(lambda: self.daemon.next_run(schedule.name), what="the daemon's next run")
		self.assertEqual(int(planned), tuesday_nine)
		# The status page and the report call it confirmed: they read the list and policy it was planned by.
		[upcoming] = [run for run in status.upcoming_runs(500) if run["schedule"] == schedule.name]
		self.assertEqual(upcoming["state"], "confirmed")
		self.assertIn(
			f"holidays to the next working day (BTU Holiday List {holidays.name})", upcoming["cron_string"]
		)
		# ... and the list's edit replans it: Monday is a working day again.
		holidays.reload()
		holidays.holidays = []
		holidays.save()
		frappe.db.commit()
		wait_for(lambda: self.daemon.next_run(schedule.name) == monday_nine, what="the replanned run")
		self.assertEqual(
			frappe.db.get_value("BTU Task Schedule", schedule.name, "next_run"),
			to_system_time(self.daemon.next_run(schedule.name)),
		)

	def test_jitter_shown_once_saved_is_the_daemons(self):
		settings = {"run_frequency": "Hourly", "minute": 0, "jitter_seconds": 600}
		unsaved = preview_schedule(**settings, count=3)
		self.assertFalse(unsaved["jitter_shown"])
		self.assertEqual([run["delay_seconds"] for run in unsaved["runs"]], [0, 0, 0])
		schedule = make_schedule(self.task.name, enabled=1, **settings)
		frappe.db.commit()
		saved = preview_schedule(**settings, schedule=schedule.name, count=24)
		self.assertTrue(saved["jitter_shown"])
		delays = [run["delay_seconds"] for run in saved["runs"]]
		self.assertTrue(all(0 <= delay <= 600 for delay in delays) and len(set(delays)) > 1, delays)
		expected = FireTimes(
			"0 * * * *", "UTC", jitter=600, key=jitter.identity(frappe.local.site, schedule.name)
		)
		planned = wait_for(lambda: self.daemon.next_run(schedule.name), what="the daemon's next run")
		self.assertEqual(int(planned), expected.next_after(planned - 1))
		self.assertEqual(get_datetime(schedule.next_run), to_system_time(planned))

	def test_bad_settings_are_refused_with_their_reason(self):
		cases = [
			({"jitter_seconds": 7200}, "Jitter must be from 0 to 3600 seconds, got 7200"),
			({"holiday_list": "No such list"}, "No such list"),  # Frappe's link check: Could not find ...
		]
		if not frappe.db.exists("DocType", "Holiday List"):
			cases.append(
				(
					{"holiday_list_doctype": "Holiday List", "holiday_list": "UK"},
					"This site has no Holiday List DocType",
				)
			)
		for fields, message in cases:
			with self.subTest(fields=fields), self.assertRaises(frappe.ValidationError) as ctx:
				make_schedule(self.task.name, enabled=1, **fields)
			self.assertIn(message, str(ctx.exception))
