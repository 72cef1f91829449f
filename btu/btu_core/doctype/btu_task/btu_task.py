"""BTU Task: a Python function and its keyword arguments, run by workers or on demand."""

from __future__ import annotations

import frappe
from frappe import _
from frappe.utils import cint

from btu.btu_api.daemon_link import notify_after_commit
from btu.btu_core import chains, site_transfer, task_deletion
from btu.btu_core.callables import (
	BTUAwareFunction,
	CallableError,
	check_arguments,
	is_task_class,
	task_class_run,
)
from btu.btu_core.naming import unused_name
from btu.btu_core.runnables import resolve_task_function
from btu.btu_core.text import TextDocument, throw_text
from btu.contracts.arguments import ArgumentsError, parse_arguments

# The original BTU's base of BTU-aware classes, where its users import it from.
BTU_AWARE_FUNCTION = BTUAwareFunction
ORIGINAL_TASK_COMPONENT = "btu.btu_core.btu_task_component"


class BTUTask(TextDocument):
	def autoname(self) -> None:
		self.name = unused_name("BTU-.#####", "BTU Task", "task")

	def before_import(self) -> None:
		site_transfer.remember_site_state(self, site_transfer.TASK_SITE_FIELDS)

	def validate(self) -> None:
		site_transfer.keep_site_state(self, site_transfer.TASK_SITE_FIELDS)
		func = self.validate_function_string()
		self.validate_arguments(func)
		if cint(self.max_task_duration) <= 0:
			frappe.throw(
				_("Max Task Duration must be a positive number of seconds."), title=_("Invalid Duration")
			)
		self.queue_name = self.queue_name or "default"
		self.validate_retries()
		chains.validate_task(self)

	def before_update_after_submit(self) -> None:
		self.validate_retries()  # the retry settings may change on a submitted task
		chains.validate_task(self)  # so may Then Run (btu.btu_core.chains: no loop of tasks)

	def validate_retries(self) -> None:
		"""Max Retries 0..100; the first delay at least a second; the cap at least the first delay, at most 30 days."""
		from btu.btu_core.retries import DEFAULT_CAP, DEFAULT_DELAY, MAX_CAP_SECONDS, MAX_RETRIES

		self.max_retries = cint(self.max_retries)
		if not 0 <= self.max_retries <= MAX_RETRIES:
			frappe.throw(
				_("Max Retries must be from 0 to {0}, got {1}.").format(MAX_RETRIES, self.max_retries),
				title=_("Invalid Retries"),
			)
		if self.retry_delay_seconds in (None, ""):
			self.retry_delay_seconds = DEFAULT_DELAY
		if self.retry_delay_cap_seconds in (None, ""):
			self.retry_delay_cap_seconds = DEFAULT_CAP
		delay, cap = cint(self.retry_delay_seconds), cint(self.retry_delay_cap_seconds)
		if delay < 1:
			frappe.throw(
				_("Retry Delay must be at least 1 second, got {0}.").format(delay), title=_("Invalid Retries")
			)
		if not delay <= cap <= MAX_CAP_SECONDS:
			frappe.throw(
				_("Retry Delay Cap must be from the Retry Delay ({0} s) to {1} s (30 days), got {2}.").format(
					delay, MAX_CAP_SECONDS, cap
				),
				title=_("Invalid Retries"),
			)

	def validate_function_string(self):
		"""The function must be importable from an installed app and callable; a class must have a
		run() method and be creatable by BTU (btu.btu_core.callables explains BTU-aware classes)."""
		self.function_string = (self.function_string or "").strip()
		try:
			func = resolve_task_function(self.function_string)
			if is_task_class(func):
				task_class_run(func)
			return func
		except CallableError as exc:
			message = str(exc)
			if ORIGINAL_TASK_COMPONENT in message:
				message += " " + _(
					"The original BTU's TaskComponent is not part of this BTU: record the parts of a run with "
					"btu.api.step('name') and start further runs with btu.api.run_later(task, ...)."
				)
			throw_text(message, title=_("Invalid Function"))

	def validate_arguments(self, func) -> None:
		"""JSON object whose names the function accepts (required ones may come from schedules)."""
		try:
			arguments = parse_arguments(self.arguments, _("Arguments"))
		except ArgumentsError as exc:
			throw_text(str(exc), title=_("Invalid Arguments"))
		try:
			check_arguments(func, arguments, complete=False)
		except CallableError as exc:
			throw_text(str(exc), title=_("Invalid Arguments"))

	def on_update(self) -> None:
		site_transfer.check_schedules_of(self)

	def on_submit(self) -> None:
		if self.amended_from:
			self.move_schedules_from(self.amended_from)

	def on_cancel(self) -> None:
		# The daemon re-reads these schedules, finds the task cancelled and stops planning them.
		for name in frappe.get_all(
			"BTU Task Schedule", filters={"task": self.name, "enabled": 1}, pluck="name"
		):
			notify_after_commit("create", name)

	def on_trash(self) -> None:
		task_deletion.before_task_deleted(self.name)

	def move_schedules_from(self, old_task: str) -> None:
		"""Schedules of the cancelled original follow its amendment."""
		for name in frappe.get_all("BTU Task Schedule", filters={"task": old_task}, pluck="name"):
			frappe.db.set_value(
				"BTU Task Schedule", name, {"task": self.name, "task_description": self.desc_short}
			)
			notify_after_commit("create", name)
