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


class EmailNotQueued(Exception):
	"""Recipients want this email, but it cannot be queued (the message says why and what to do)."""


def no_account_reason() -> str:
	return _(
		"no outgoing Email Account: set one as Default Outgoing (Email Account) or in BTU Configuration "
		"> Email Account"
	)


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
	attempt: int = 1,
	max_attempts: int = 1,
	retry: dict[str, Any] | None = None,
) -> bool:
	"""Queue one email about a run to every recipient that wants ``event``; True when one was queued.

	``attempt`` of ``max_attempts`` (the task's automatic retries + 1) and, after a failure, the
	``retry`` planned ({run_id, attempt, delay}) are shown when the task retries at all."""
	recipients = recipients_for(schedule, event)
	if not recipients:
		return False
	if outgoing_account() is None:
		raise EmailNotQueued(
			_("The email to {0} could not be queued: {1}.").format(", ".join(recipients), no_account_reason())
		)
	prefix = frappe.db.get_single_value("BTU Configuration", "email_subject_prefix") or ""
	include_stdout = cint(frappe.db.get_single_value("BTU Configuration", "email_include_stdout"))
	subject = f"{prefix} {task.desc_short}: {_(EVENT_LABELS[event])}".strip()
	if max_attempts > 1 or attempt > 1:
		subject += " " + _("(attempt {0} of {1})").format(attempt, max(max_attempts, attempt))
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
		"attempt": attempt,
		"max_attempts": max(max_attempts, attempt),
		"retry": retry,
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


def outgoing_account() -> str | None:
	"""The Email Account BTU's emails go out through: BTU Configuration's, else the site's default outgoing."""
	account = frappe.db.get_single_value("BTU Configuration", "email_account")
	if account and cint(frappe.db.get_value("Email Account", account, "enable_outgoing")):
		return account
	return frappe.db.get_value("Email Account", {"enable_outgoing": 1, "default_outgoing": 1}, "name")


def send_test_email(recipient: str) -> dict[str, Any]:
	"""Send one email to ``recipient`` now, through the account and with the subject prefix of BTU's
	run emails. Returns {sent, recipient, account, sender, email_queue, error}; a failure to send is
	reported, not raised (the Email Queue entry is set to Error so that it is not sent again later)."""
	account = outgoing_account()
	out: dict[str, Any] = {"sent": False, "recipient": recipient, "account": account, "email_queue": None}
	if not account:
		out["error"] = _(
			"There is no outgoing Email Account: choose one in BTU Configuration > Email Account, or mark an "
			"Email Account with Enable Outgoing as Default Outgoing."
		)
		return out
	sender = frappe.db.get_value("Email Account", account, "email_id")
	out["sender"] = sender
	prefix = frappe.db.get_single_value("BTU Configuration", "email_subject_prefix") or ""
	subject = f"{prefix} {_('Test email from BTU on {0}').format(frappe.local.site)}".strip()
	message = _(
		"<p>This is a test email from BTU (Background Tasks Unleashed) on site <b>{0}</b>, sent by {1} from "
		"BTU Configuration through the Email Account <b>{2}</b>.</p><p>Task run emails use the same account "
		"and subject prefix.</p>"
	).format(
		frappe.utils.escape_html(frappe.local.site),
		frappe.utils.escape_html(frappe.session.user),
		frappe.utils.escape_html(account),
	)
	queue = frappe.sendmail(
		recipients=[recipient],
		sender=sender or "",
		subject=subject,
		message=message,
		reference_doctype="BTU Configuration",
		reference_name="BTU Configuration",
		delayed=True,
		now=False,
	)
	if not queue:
		out["error"] = _("Frappe made no email for {0} (is the address unsubscribed?).").format(recipient)
		return out
	out["email_queue"] = queue.name
	try:
		queue.send()
	except Exception as exc:  # noqa: BLE001 - SMTP refused, unreachable, bad credentials...
		frappe.clear_last_message()
		out["error"] = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
	status = frappe.db.get_value("Email Queue", queue.name, "status")
	if status == "Sent":
		out["sent"] = True
	else:
		frappe.db.set_value("Email Queue", queue.name, "status", "Error")
		out.setdefault(
			"error",
			_("The email was not sent (Email Queue {0} is {1}); emails may be muted on this site.").format(
				queue.name, status
			),
		)
	frappe.db.commit()
	return out


def _clip(text: str | None) -> str:
	text = text or ""
	if len(text) <= MAX_EMAIL_OUTPUT:
		return text
	return f"[... {len(text) - MAX_EMAIL_OUTPUT} characters omitted ...]\n" + text[-MAX_EMAIL_OUTPUT:]
