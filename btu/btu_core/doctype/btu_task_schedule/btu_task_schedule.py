"""BTU Task Schedule: when (cron rule + time zone) a submitted BTU Task runs, and who hears about it.

The rules live in btu.contracts.schedule_rules (and btu.contracts.runs for one-shots, Run
Frequency "Once": a single run at Run At, a wall-clock time in the schedule's zone); this
controller only applies them and tells the scheduler daemon about changes after the
transaction commits.
"""

from __future__ import annotations

import time

import frappe
from frappe import _
from frappe.utils import cint, get_datetime

from btu.btu_api.daemon_link import notify_after_commit
from btu.btu_core import business_calendar, run_summary, site_transfer, task_deletion
from btu.btu_core.callables import CallableError, check_arguments
from btu.btu_core.naming import unused_name
from btu.btu_core.runnables import resolve_task_function
from btu.btu_core.text import TextDocument, as_html_text, throw_text
from btu.contracts.arguments import ArgumentsError, merge_arguments, parse_arguments
from btu.contracts.runs import ONCE, RunAtError, describe_once, normalize_overlap, wall_time_to_timestamp
from btu.contracts.schedule_rules import (
	CronError,
	TimeZoneError,
	describe_cron,
	frequency_to_cron,
	validate_timezone,
)

# A one-shot may be saved (enabled) for a time at most this far in the past: "now" from a form or
# btu.api, read a moment later. Older ones are refused: the time is most likely a typing mistake.
PAST_TOLERANCE_SECONDS = 300


class BTUTaskSchedule(TextDocument):
	def autoname(self) -> None:
		self.name = unused_name("TS-.######", "BTU Task Schedule", "schedule")

	def before_import(self) -> None:
		site_transfer.remember_site_state(self, site_transfer.SCHEDULE_SITE_FIELDS)

	def _validate_links(self) -> None:
		business_calendar.require_list_doctype(self)  # a clearer message than Frappe's link check
		super()._validate_links()

	def validate(self) -> None:
		site_transfer.keep_site_state(self, site_transfer.SCHEDULE_SITE_FIELDS)
		task = self.validate_task()
		self.validate_time_zone()
		if self.is_one_shot():
			self.set_one_shot()
		else:
			self.set_cron_string()
			business_calendar.validate_schedule(self)
		self.validate_overlap_policy()
		if cint(self.enabled):
			self.paused_reason = None  # resumed (Pause After Failures)
		if task is not None:
			self.validate_argument_overrides(task)
		self.queue_name = self.queue_name or (task.queue_name if task is not None else None) or "default"
		self.attempt = cint(self.attempt) or 1
		self.next_run = run_summary.expected_next_run(self, self.time_zone())

	def is_one_shot(self) -> bool:
		return (self.run_frequency or "").strip() == ONCE

	def time_zone(self) -> str:
		"""The zone its rule or Run At is read in: its own, else BTU Configuration's."""
		from btu.btu_api.status import configuration_time_zone

		return self.cron_timezone or configuration_time_zone()

	def run_at_timestamp(self) -> int | None:
		"""A one-shot's fire time (Unix s), None when it has no Run At."""
		if not self.run_at:
			return None
		return wall_time_to_timestamp(get_datetime(self.run_at), self.time_zone())

	def set_one_shot(self) -> None:
		"""Run At is required; an enabled one-shot whose time is (well) past is refused."""
		self.cron_string = ""
		for fieldname in ("minute", "hour", "day_of_month"):
			self.set(fieldname, None)
		self.day_of_week = self.month = None
		if not self.run_at:
			frappe.throw(
				_("Run At is required for a one-shot (Run Frequency Once)."),
				frappe.MandatoryError,
				title=_("Invalid Schedule"),
			)
		try:
			fire_ts = self.run_at_timestamp()
		except RunAtError as exc:
			throw_text(str(exc), title=_("Invalid Schedule"))
		changed = self.is_new() or self.has_value_changed("run_at") or self.has_value_changed("enabled")
		if cint(self.enabled) and changed and fire_ts < time.time() - PAST_TOLERANCE_SECONDS:
			frappe.throw(
				_("Run At {0} ({1}) is in the past; choose a later time.").format(
					get_datetime(self.run_at).strftime("%Y-%m-%d %H:%M:%S"), self.time_zone()
				),
				title=_("Invalid Schedule"),
			)
		self.schedule_description = describe_once(fire_ts, self.time_zone())

	def validate_overlap_policy(self) -> None:
		try:
			self.overlap_policy = normalize_overlap(self.overlap_policy)
		except ValueError as exc:
			throw_text(str(exc), title=_("Invalid Schedule"))

	def validate_task(self):
		"""The schedule's task (None: imported before its task, which checks it on arrival)."""
		if not self.task:
			frappe.throw(_("Task is required."), frappe.MandatoryError)
		if site_transfer.task_not_imported_yet(self.task):
			return None
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
			throw_text(str(exc), title=_("Invalid Schedule"))
		self.schedule_description = describe_cron(self.cron_string)

	def validate_time_zone(self) -> None:
		"""Empty means BTU Configuration's zone."""
		self.cron_timezone = (self.cron_timezone or "").strip()
		if self.cron_timezone:
			try:
				validate_timezone(self.cron_timezone)
			except TimeZoneError as exc:
				throw_text(str(exc), title=_("Invalid Time Zone"))

	def validate_argument_overrides(self, task) -> None:
		"""Overrides are a JSON object, and task arguments + overrides fit the function."""
		try:
			overrides = parse_arguments(self.argument_overrides, _("Argument Overrides"))
			arguments = merge_arguments(
				parse_arguments(task.arguments, _("Task {0} arguments").format(task.name)), overrides
			)
		except ArgumentsError as exc:
			throw_text(str(exc), title=_("Invalid Arguments"))
		try:
			func = resolve_task_function(task.function_string)
			check_arguments(func, arguments, complete=True)
		except CallableError as exc:
			throw_text(str(exc), title=_("Invalid Arguments"))

	def warn_when_emails_cannot_go_out(self) -> None:
		"""Recipients but no outgoing Email Account: the save goes through, with a warning."""
		from btu.btu_core import email_notify

		if any((row.email_address or "").strip() for row in self.get("email_recipients") or []):
			if email_notify.outgoing_account() is None:
				frappe.msgprint(
					_("This schedule's emails will not be sent: {0}.").format(
						email_notify.no_account_reason()
					),
					title=_("No Outgoing Email Account"),
					indicator="orange",
				)

	def warn_when_no_worker_listens(self) -> None:
		"""An enabled schedule whose queue no worker serves: its runs would wait, then be skipped."""
		from btu.btu_api import status

		if not cint(self.enabled):
			return
		queue = self.queue_name or "default"
		try:
			count = status.workers_listening(queue)
		except Exception:  # noqa: BLE001 - Redis away: the status page says so; the save goes on
			return
		if count == 0:
			frappe.msgprint(
				_(
					"No worker listens on queue {0}: this schedule's runs will wait in it, and a run that "
					"waits longer than its start deadline is skipped. Start one with: bench worker --queue {0}"
				).format(as_html_text(queue)),
				title=_("No Worker for This Queue"),
				indicator="orange",
			)

	def on_update(self) -> None:
		from btu.btu_core import alerts

		alerts.after_save(self)
		self.warn_when_emails_cannot_go_out()
		self.warn_when_no_worker_listens()
		notify_after_commit("create" if cint(self.enabled) else "cancel", self.name)

	def on_trash(self) -> None:
		notify_after_commit("cancel", self.name)
		task_deletion.after_schedule_deleted(self.name)
