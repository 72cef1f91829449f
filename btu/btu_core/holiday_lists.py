"""Holiday lists (BTU's own DocType, and ERPNext's/HRMS's where the site has it) as the schedules
that follow them see them: a saved list replans its schedules; weekly offs are added as rows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import frappe
from frappe import _
from frappe.utils import getdate

from btu.btu_api.daemon_link import notify_after_commit
from btu.btu_core import business_calendar, run_summary

SCHEDULE = "BTU Task Schedule"
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def schedules_following(doctype: str, name: str) -> list[str]:
	return frappe.get_all(
		SCHEDULE,
		filters={"holiday_list_doctype": doctype, "holiday_list": name, "enabled": 1},
		pluck="name",
	)


def after_holiday_list_change(doc: Any, method: str | None = None) -> None:
	"""A holiday list was saved (``doc_events``, BTU's and ERPNext's): the daemon replans every
	enabled schedule that follows it, and their Next Run column follows."""
	for name in schedules_following(doc.doctype, doc.name):
		schedule = frappe.get_doc(SCHEDULE, name)
		business_calendar.forget_holidays()  # the list's new dates
		schedule.db_set(
			"next_run", run_summary.expected_next_run(schedule, schedule.time_zone()), update_modified=False
		)
		notify_after_commit("create", name)


def weekly_off_dates(from_date: Any, to_date: Any, weekday: str) -> list[Any]:
	"""Every ``weekday`` (Monday..Sunday) from ``from_date`` to ``to_date`` inclusive."""
	if weekday not in WEEKDAYS:
		frappe.throw(_("Choose a Weekly Off day."), title=_("Invalid Weekly Off"))
	if not from_date or not to_date or getdate(to_date) < getdate(from_date):
		frappe.throw(_("From Date and To Date are required, From Date first."), title=_("Invalid Weekly Off"))
	start, end = getdate(from_date), getdate(to_date)
	if (end - start).days > 3 * 366:
		frappe.throw(_("Add weekly offs for at most three years at a time."), title=_("Invalid Weekly Off"))
	first = start + timedelta(days=(WEEKDAYS.index(weekday) - start.weekday()) % 7)
	return [first + timedelta(days=7 * n) for n in range((end - first).days // 7 + 1)] if first <= end else []
