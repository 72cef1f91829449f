"""The Frappe side of business calendars and jitter (``btu.contracts.calendars``, ``.jitter``): a
schedule's holiday list read from the site, its fields checked on save, and its fire times as the
daemon computes them, for *Show next runs*, the list's Next Run, the late-run rule and the alerts.
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe import _
from frappe.utils import getdate, today

from btu.btu_core.text import throw_text
from btu.contracts import jitter as jitter_rule
from btu.contracts.calendars import (
	BTU_HOLIDAY_LIST,
	FRAPPE_HOLIDAY_LIST,
	HOLIDAY_TABLES,
	BusinessCalendar,
	CalendarError,
	date_window,
	normalize_list_doctype,
	normalize_policy,
	parse_dates,
)
from btu.contracts.fire_times import FireTimes
from btu.contracts.jitter import JitterError, normalize_jitter
from btu.contracts.runs import ONCE


def holidays_of(doctype: str, name: str) -> tuple[str, ...]:
	"""The dates of a holiday list within ``calendars.date_window`` (as the daemon reads them),
	cached for the request or job (the minute's alert check reads one list for many schedules)."""
	cache: dict[tuple[str, str], tuple[str, ...]] | None = getattr(frappe.local, "btu_holidays", None)
	if cache is None:
		cache = frappe.local.btu_holidays = {}
	key = (doctype, name)
	if key not in cache:
		low, high = date_window(getdate(today()))
		rows = frappe.get_all(
			HOLIDAY_TABLES[doctype],
			filters={
				"parenttype": doctype,
				"parent": name,
				"holiday_date": ("between", [low, high]),
			},
			pluck="holiday_date",
			order_by="holiday_date asc",
			limit_page_length=0,
		)
		cache[key] = parse_dates(rows)
	return cache[key]


def forget_holidays() -> None:
	"""Drop the dates read in this request (a holiday list was just saved)."""
	frappe.local.btu_holidays = {}


def fire_times_of(schedule: Any, zone: str, name: str | None = None) -> FireTimes | None:
	"""A recurring schedule's fire times (a document or a row with its fields); None for a one-shot.
	``name`` is the schedule's name when ``schedule`` has none yet (jitter is derived from it)."""
	if (schedule.get("run_frequency") or "") == ONCE or not schedule.get("cron_string"):
		return None
	holiday_list = (schedule.get("holiday_list") or "").strip()
	calendar = None
	if holiday_list:
		doctype = normalize_list_doctype(schedule.get("holiday_list_doctype"))
		calendar = BusinessCalendar(
			holidays_of(doctype, holiday_list), normalize_policy(schedule.get("on_holiday"))
		)
	return FireTimes(
		schedule.get("cron_string"),
		zone,
		calendar,
		normalize_jitter(schedule.get("jitter_seconds")),
		jitter_rule.identity(frappe.local.site, name or schedule.get("name") or ""),
	)


def require_list_doctype(doc: Any) -> None:
	"""ERPNext's Holiday List chosen on a site without it: refused with what to do instead (before
	Frappe's link check, which would only say that the DocType is not found)."""
	if (doc.get("holiday_list") or "").strip() and doc.get("holiday_list_doctype") == FRAPPE_HOLIDAY_LIST:
		if not frappe.db.exists("DocType", FRAPPE_HOLIDAY_LIST):
			frappe.throw(
				_(
					"This site has no Holiday List DocType (it comes with ERPNext or HRMS). Choose Holiday List "
					"Type {0} and make one in Desk."
				).format(BTU_HOLIDAY_LIST),
				title=_("Invalid Business Calendar"),
			)


def validate_schedule(doc: Any) -> None:
	"""Holiday List Type, Holiday List, On Holiday and Jitter of a schedule being saved."""
	try:
		doc.jitter_seconds = normalize_jitter(doc.get("jitter_seconds"))
		doc.on_holiday = normalize_policy(doc.get("on_holiday"))
		doc.holiday_list = (doc.get("holiday_list") or "").strip() or None
		if not doc.holiday_list:
			doc.holiday_list_doctype = doc.get("holiday_list_doctype") or BTU_HOLIDAY_LIST
			return
		doc.holiday_list_doctype = normalize_list_doctype(doc.get("holiday_list_doctype"))
	except (CalendarError, JitterError) as exc:
		throw_text(str(exc), title=_("Invalid Business Calendar"))
	require_list_doctype(doc)
	if not frappe.db.exists(doc.holiday_list_doctype, doc.holiday_list):
		frappe.throw(
			_("{0} {1} does not exist.").format(doc.holiday_list_doctype, frappe.bold(doc.holiday_list)),
			title=_("Invalid Business Calendar"),
		)


__all__ = ["fire_times_of", "forget_holidays", "holidays_of", "require_list_doctype", "validate_schedule"]
