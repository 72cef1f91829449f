"""BTU Configuration: site-wide scheduler and email settings."""

from __future__ import annotations

import os

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint

from btu.btu_api.daemon import refresh_after_commit
from btu.contracts.protocol import MAX_SOCKET_PATH
from btu.contracts.schedule_rules import TimeZoneError, validate_timezone


class BTUConfiguration(Document):
	def validate(self) -> None:
		self.validate_time_zone()
		self.validate_socket_path()
		self.validate_email_account()
		if self.email_subject_prefix is None:
			self.email_subject_prefix = "[BTU]"

	def validate_time_zone(self) -> None:
		self.cron_time_zone = (self.cron_time_zone or "").strip() or "UTC"
		try:
			validate_timezone(self.cron_time_zone)
		except TimeZoneError as exc:
			frappe.throw(str(exc), title=_("Invalid Time Zone"))

	def validate_socket_path(self) -> None:
		path = (self.path_to_btu_scheduler_uds or "").strip()
		self.path_to_btu_scheduler_uds = path
		if not path:
			return
		if not os.path.isabs(path):
			frappe.throw(
				_("The socket path must be absolute, e.g. /home/frappe/bench/config/btu_scheduler.sock.")
			)
		if len(path.encode()) > MAX_SOCKET_PATH:
			frappe.throw(
				_("The socket path is {0} bytes long; a Unix socket path may have at most {1}.").format(
					len(path.encode()), MAX_SOCKET_PATH
				)
			)

	def validate_email_account(self) -> None:
		if self.email_account and not cint(
			frappe.db.get_value("Email Account", self.email_account, "enable_outgoing")
		):
			frappe.throw(
				_("Email Account {0} does not have Enable Outgoing set.").format(self.email_account),
				title=_("Invalid Email Account"),
			)

	def on_update(self) -> None:
		# Schedules without their own zone follow cron_time_zone: let the daemon re-plan them. A
		# refresh also re-reads Pause All Schedules (the daemon pauses or resumes the site at once).
		if self.has_value_changed("cron_time_zone") or self.has_value_changed("pause_all_schedules"):
			refresh_after_commit()
