"""Whitelisted methods behind the Task Log buttons and BTU Configuration's housekeeping.

* ``retry_task_log`` - a Task Log's *Retry* (a new run, its log linked to this one);
* ``task_log_attempts`` - the attempts of a run and the retry planned after it (the log's form);
* ``count_task_logs`` / ``delete_task_logs`` - the list view's *Delete by date range*;
* ``send_test_email`` - BTU Configuration's *Send test email*.

Retrying and test emails are reserved to System Managers (a run executes server code); deleting
logs needs delete permission on BTU Task Log.
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe import _
from frappe.utils import getdate, validate_email_address

from btu.btu_api.permissions import require_doc_permission, require_manager
from btu.btu_core import audit
from btu.btu_core.text import throw_text

LOG = "BTU Task Log"
STATUSES = ("Success", "Failed", "Timeout", "Skipped")


# --- retries ------------------------------------------------------------------------------------


@frappe.whitelist(methods=["POST"])
def retry_task_log(log: str) -> dict[str, Any]:
	"""Run a Failed or Timeout run again now with the same arguments; returns the new run's id."""
	require_manager()
	require_doc_permission(LOG, log, "read")
	import btu.api

	run_id = btu.api.retry(log)
	audit.note_action(LOG, log, _("pressed Retry: run {0}.").format(audit.text(run_id)))
	return {
		"log": log,
		"run_id": run_id,
		"description": frappe.db.get_value("BTU Task Schedule", run_id, "schedule_description"),
	}


@frappe.whitelist()
def task_log_attempts(log: str) -> dict[str, Any]:
	"""The attempts of the chain this log belongs to, and the retry already made of it (if any)."""
	require_doc_permission(LOG, log, "read")
	from btu.btu_core.retries import attempts, existing_retry, retry_settings

	task = frappe.db.get_value(LOG, log, "task")
	max_attempts = None
	if task and frappe.db.exists("BTU Task", task):
		max_attempts = retry_settings(frappe.get_cached_doc("BTU Task", task))["max_retries"] + 1
	return {"attempts": attempts(log), "retry": existing_retry(log), "max_attempts": max_attempts}


# --- deleting logs by date range ----------------------------------------------------------------------


def _range_filters(from_date: Any, to_date: Any, status: str | None, task: str | None) -> list[list[Any]]:
	from btu.btu_core.doctype.btu_task_log.btu_task_log import log_filters

	if not from_date or not to_date:
		frappe.throw(
			_(
				"Give both dates: From Date and To Date (the logs started on those days and between are deleted)."
			)
		)
	try:
		start, end = getdate(from_date), getdate(to_date)
	except Exception:  # noqa: BLE001 - frappe raises several kinds for bad text
		throw_text(_("From Date {0!r} or To Date {1!r} is not a date.").format(from_date, to_date))
	if start > end:
		throw_text(_("From Date {0} is after To Date {1}.").format(start, end))
	status = (status or "").strip() or None
	if status and status not in STATUSES:
		frappe.throw(
			_("Status {0!r} is not one of {1} (In-Progress logs are never deleted here).").format(
				status, ", ".join(STATUSES)
			)
		)
	task = (task or "").strip() or None
	if task and not frappe.db.exists("BTU Task", task) and not frappe.db.exists(LOG, {"task": task}):
		throw_text(_("Task {0} has no Task Logs and does not exist.").format(task))
	return log_filters(start, end, status, task)


@frappe.whitelist()
def count_task_logs(from_date: str, to_date: str, status: str | None = None, task: str | None = None) -> int:
	"""How many logs ``delete_task_logs`` would delete (the dialog shows it before asking)."""
	require_doc_permission(LOG, None, "delete")
	return frappe.db.count(LOG, _range_filters(from_date, to_date, status, task))


@frappe.whitelist(methods=["POST"])
def delete_task_logs(
	from_date: str, to_date: str, status: str | None = None, task: str | None = None
) -> dict[str, Any]:
	"""Delete the Task Logs started from ``from_date`` to ``to_date`` (whole days, the system's time
	zone), optionally of one status and one task, with their steps; In-Progress logs stay."""
	require_doc_permission(LOG, None, "delete")
	from btu.btu_core.doctype.btu_task_log.btu_task_log import delete_logs

	filters = _range_filters(from_date, to_date, status, task)
	names = frappe.get_all(LOG, filters=filters, pluck="name")
	deleted = delete_logs(names)
	frappe.db.commit()
	return {"deleted": deleted}


# --- test email --------------------------------------------------------------------------------------


@frappe.whitelist(methods=["POST"])
def send_test_email(recipient: str | None = None) -> dict[str, Any]:
	"""Send one email now, as BTU sends its run emails (BTU Configuration's Email Account, else the
	site's default outgoing one; its subject prefix): {sent, recipient, sender, email_queue, error}."""
	require_manager()
	from btu.btu_core.email_notify import send_test_email as send

	recipient = (recipient or "").strip() or frappe.db.get_value("User", frappe.session.user, "email")
	if not recipient or not validate_email_address(recipient):
		frappe.throw(
			_("{0!r} is not an email address.").format(recipient or ""), title=_("Invalid Recipient")
		)
	return send(recipient)
