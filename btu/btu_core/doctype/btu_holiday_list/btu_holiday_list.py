"""BTU Holiday List: the dates a schedule's business calendar skips or moves (btu.contracts.calendars).

BTU's own list for sites without ERPNext's or HRMS's Holiday List; the same columns, so the daemon
reads both alike. Saving one replans the schedules that follow it.
"""

from __future__ import annotations

import frappe
from frappe import _
from frappe.utils import getdate

from btu.btu_core import holiday_lists
from btu.btu_core.text import TextDocument


class BTUHolidayList(TextDocument):
	def validate(self) -> None:
		seen: set = set()
		for row in self.get("holidays") or []:
			day = getdate(row.holiday_date)
			if day in seen:
				frappe.throw(
					_("Row {0}: the date {1} is listed twice.").format(row.idx, day.isoformat()),
					title=_("Duplicate Holiday"),
				)
			seen.add(day)
		self.holidays.sort(key=lambda row: getdate(row.holiday_date))
		for idx, row in enumerate(self.holidays, start=1):
			row.idx = idx

	def on_update(self) -> None:
		holiday_lists.after_holiday_list_change(self)

	@frappe.whitelist()
	def add_weekly_offs(self) -> int:
		"""Rows for every Weekly Off day from From Date to To Date (dates already listed are kept)."""
		frappe.only_for("System Manager")
		listed = {getdate(row.holiday_date) for row in self.get("holidays") or []}
		added = 0
		for day in holiday_lists.weekly_off_dates(self.from_date, self.to_date, self.weekly_off):
			if day not in listed:
				self.append(
					"holidays", {"holiday_date": day, "weekly_off": 1, "description": self.weekly_off}
				)
				added += 1
		self.holidays.sort(key=lambda row: getdate(row.holiday_date))
		for idx, row in enumerate(self.holidays, start=1):
			row.idx = idx
		return added
