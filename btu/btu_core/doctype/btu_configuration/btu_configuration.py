"""BTU Configuration: site-wide scheduler and email settings."""

from __future__ import annotations

import os

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint

from btu.btu_api.daemon_link import refresh_after_commit
from btu.btu_core.legacy_config import ORIGINAL_SOCKET_PATH
from btu.btu_core.text import throw_text
from btu.contracts.protocol import MAX_SOCKET_PATH
from btu.contracts.schedule_rules import TimeZoneError, validate_timezone

LOG_DOCTYPE = "BTU Task Log"
MAX_RETENTION_DAYS = 36500


def log_retention_days() -> int | None:
	"""Days Log Settings keeps BTU Task Logs (its row for them), None when it has no row yet."""
	days = frappe.db.get_value(
		"Logs To Clear", {"parent": "Log Settings", "ref_doctype": LOG_DOCTYPE}, "days"
	)
	return None if days is None else cint(days)


def set_log_retention_days(days: int) -> None:
	"""Write the days into Log Settings' row for BTU Task Log (made when missing)."""
	settings = frappe.get_single("Log Settings")
	settings.register_doctype(LOG_DOCTYPE, cint(days))
	settings.flags.ignore_permissions = True
	settings.save()


class BTUConfiguration(Document):
	def onload(self) -> None:
		# Log Settings holds the retention: show what it says, also when it was changed there.
		days = log_retention_days()
		if days is not None:
			self.log_retention_days = days

	def validate(self) -> None:
		self.validate_log_retention()
		self.validate_time_zone()
		self.validate_socket_path()
		self.validate_email_account()
		if self.email_subject_prefix is None:
			self.email_subject_prefix = "[BTU]"

	def validate_time_zone(self) -> None:
		from btu.install import site_time_zone

		self.cron_time_zone = (self.cron_time_zone or "").strip() or site_time_zone() or "UTC"
		try:
			validate_timezone(self.cron_time_zone)
		except TimeZoneError as exc:
			throw_text(str(exc), title=_("Invalid Time Zone"))

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
		if path != ORIGINAL_SOCKET_PATH:
			frappe.throw(
				_(
					"The daemon's socket is set by the server's administrator (bench set-config "
					"btu_socket_path PATH): here only the original BTU's {0} may be kept, or leave it empty."
				).format(ORIGINAL_SOCKET_PATH),
				title=_("Set by the server"),
			)

	def validate_email_account(self) -> None:
		if self.email_account and not cint(
			frappe.db.get_value("Email Account", self.email_account, "enable_outgoing")
		):
			frappe.throw(
				_("Email Account {0} does not have Enable Outgoing set.").format(self.email_account),
				title=_("Invalid Email Account"),
			)

	def validate_log_retention(self) -> None:
		if self.log_retention_days in (None, ""):
			self.log_retention_days = log_retention_days() if log_retention_days() is not None else 90
		days = cint(self.log_retention_days)
		if not 0 <= days <= MAX_RETENTION_DAYS:
			frappe.throw(
				_("Keep Task Logs must be from 0 (keep every log) to {0} days, got {1}.").format(
					MAX_RETENTION_DAYS, days
				),
				title=_("Invalid Retention"),
			)
		self.log_retention_days = days

	def on_update(self) -> None:
		# Only a change made here is written (a stale copy must never undo one made in Log Settings).
		if self.has_value_changed("log_retention_days") or log_retention_days() is None:
			set_log_retention_days(self.log_retention_days)
		# Schedules without their own zone follow cron_time_zone: let the daemon re-plan them. A
		# refresh also re-reads Pause All Schedules (the daemon pauses or resumes the site at once).
		if self.has_value_changed("cron_time_zone") or self.has_value_changed("pause_all_schedules"):
			refresh_after_commit()
