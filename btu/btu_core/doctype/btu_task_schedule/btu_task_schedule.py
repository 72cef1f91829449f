"""BTU Task Schedule: when (cron rule + time zone) a submitted BTU Task runs, and who hears about it.

The rules live in btu.contracts.schedule_rules; this controller only applies them and
tells the scheduler daemon about changes after the transaction commits.
"""

from __future__ import annotations

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint

from btu.btu_api.daemon import notify_after_commit
from btu.btu_core.callables import CallableError, check_arguments, resolve_callable
from btu.btu_core.naming import name_not_in_logs
from btu.contracts.arguments import ArgumentsError, merge_arguments, parse_arguments
from btu.contracts.schedule_rules import (
	CronError,
	TimeZoneError,
	describe_cron,
	frequency_to_cron,
	validate_timezone,
)


class BTUTaskSchedule(Document):
	def autoname(self) -> None:
		self.name = name_not_in_logs("TS-.######", "schedule")

	def validate(self) -> None:
		task = self.validate_task()
		self.set_cron_string()
		self.validate_time_zone()
		self.validate_argument_overrides(task)
		self.queue_name = self.queue_name or task.queue_name or "default"

	def validate_task(self):
		if not self.task:
			frappe.throw(_("Task is required."), frappe.MandatoryError)
		task = frappe.get_cached_doc("BTU Task", self.task)
		if cint(self.enabled) and task.docstatus != 1:
			state = _("cancelled") if task.docstatus == 2 else _("not submitted")
			frappe.throw(
				_("Task {0} is {1}; only submitted tasks may be scheduled.").format(self.task, state),
				title=_("Task Not Submitted"),
			)
		self.task_description = task.desc_short
		return task

	def set_cron_string(self) -> None:
		"""Frequency fields -> cron string (Cron Style: the cron string itself, validated)."""
		try:
			self.cron_string = frequency_to_cron(
				self.run_frequency,
				minute=self.minute,
				hour=self.hour,
				day_of_week=self.day_of_week or None,
				day_of_month=self.day_of_month,
				month=self.month or None,
				cron_string=self.cron_string,
			)
		except CronError as exc:
			frappe.throw(str(exc), title=_("Invalid Schedule"))
		self.schedule_description = describe_cron(self.cron_string)

	def validate_time_zone(self) -> None:
		"""Empty means BTU Configuration's zone."""
		self.cron_timezone = (self.cron_timezone or "").strip()
		if self.cron_timezone:
			try:
				validate_timezone(self.cron_timezone)
			except TimeZoneError as exc:
				frappe.throw(str(exc), title=_("Invalid Time Zone"))

	def validate_argument_overrides(self, task) -> None:
		"""Overrides are a JSON object, and task arguments + overrides fit the function."""
		try:
			overrides = parse_arguments(self.argument_overrides, _("Argument Overrides"))
			arguments = merge_arguments(
				parse_arguments(task.arguments, _("Task {0} arguments").format(task.name)), overrides
			)
		except ArgumentsError as exc:
			frappe.throw(str(exc), title=_("Invalid Arguments"))
		try:
			func = resolve_callable(task.function_string, allowed_packages=frappe.get_installed_apps())
			check_arguments(func, arguments, complete=True)
		except CallableError as exc:
			frappe.throw(str(exc), title=_("Invalid Arguments"))

	def on_update(self) -> None:
		notify_after_commit("create" if cint(self.enabled) else "cancel", self.name)

	def on_trash(self) -> None:
		notify_after_commit("cancel", self.name)
