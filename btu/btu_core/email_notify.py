"""Task run emails, sent through Frappe's email queue to a schedule's recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint, get_url_to_form

# Recipient checkbox for each event.
EVENT_FLAGS = {
	"start": "email_on_start",
	"success": "email_on_success",
	"error": "email_on_error",
	"timeout": "email_on_timeout",
}
# Event for each final log status.
STATUS_EVENTS = {"Success": "success", "Failed": "error", "Timeout": "timeout"}
EVENT_LABELS = {"start": "Started", "success": "Succeeded", "error": "Failed", "timeout": "Timed Out"}
MAX_EMAIL_OUTPUT = 20_000
TEMPLATE = "btu/templates/emails/btu_task_run.html"


def recipients_for(schedule: Document, event: str) -> list[str]:
	"""Addresses of the schedule's recipients that asked for ``event`` (unique, in table order)."""
	flag = EVENT_FLAGS[event]
	addresses: list[str] = []
	seen: set[str] = set()
	for row in schedule.get("email_recipients") or []:
		address = (row.email_address or "").strip()
		if address and cint(row.get(flag)) and address.lower() not in seen:
			seen.add(address.lower())
			addresses.append(address)
	return addresses


def sender_address() -> str | None:
	"""Email ID of BTU Configuration's Email Account when it may send; None = the site's default outgoing account."""
	account = frappe.db.get_single_value("BTU Configuration", "email_account")
	if not account:
		return None
	values = frappe.db.get_value("Email Account", account, ["email_id", "enable_outgoing"], as_dict=True)
	if values and values.email_id and cint(values.enable_outgoing):
		return values.email_id
	return None


def send_run_email(
	event: str,
	*,
	task: Document,
	schedule: Document,
	log_name: str | None,
	status: str,
	started: datetime | None,
	execution_time: float,
	stdout: str = "",
	result_message: str = "",
) -> bool:
	"""Queue one email about a run to every recipient that wants ``event``; True when one was queued."""
	recipients = recipients_for(schedule, event)
	if not recipients:
		return False
	prefix = frappe.db.get_single_value("BTU Configuration", "email_subject_prefix") or ""
	include_stdout = cint(frappe.db.get_single_value("BTU Configuration", "email_include_stdout"))
	subject = f"{prefix} {task.desc_short}: {_(EVENT_LABELS[event])}".strip()
	context: dict[str, Any] = {
		"event": event,
		"event_label": _(EVENT_LABELS[event]),
		"status": status,
		"task": task,
		"schedule": schedule,
		"site": frappe.local.site,
		"started": started,
		"execution_time": execution_time,
		"log_name": log_name,
		"log_url": get_url_to_form("BTU Task Log", log_name) if log_name else None,
		"task_url": get_url_to_form("BTU Task", task.name),
		"result_message": _clip(result_message),
		"stdout": _clip(stdout) if include_stdout else None,
	}
	frappe.sendmail(
		recipients=recipients,
		sender=sender_address() or "",
		subject=subject,
		message=frappe.render_template(TEMPLATE, context),
		reference_doctype="BTU Task Log" if log_name else "BTU Task Schedule",
		reference_name=log_name or schedule.name,
		delayed=True,
	)
	return True


def _clip(text: str | None) -> str:
	text = text or ""
	if len(text) <= MAX_EMAIL_OUTPUT:
		return text
	return f"[... {len(text) - MAX_EMAIL_OUTPUT} characters omitted ...]\n" + text[-MAX_EMAIL_OUTPUT:]
