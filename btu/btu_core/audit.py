"""Who pressed what: BTU's actions on the timeline of the document they concern.

Field changes are Frappe's Version records (Track Changes is on for tasks, schedules and BTU
Configuration: a schedule disabled, Pause All Schedules ticked, a rule edited). The buttons that
change no field of the document they are pressed on (Run now, Run once, Retry, Requeue, Cancel a
run, delete a failed job) add an Info comment there instead, naming the user. Values in the
comment are escaped: Frappe's timeline renders a comment as HTML.
"""

from __future__ import annotations

import frappe
from frappe.utils import get_fullname

from btu.btu_core.text import as_html_text


def note_action(doctype: str, name: str | None, message: str) -> None:
	"""An Info comment on ``doctype`` ``name`` (when it exists), by the session's user: Frappe's
	timeline shows the user, then ``message`` (translated text whose values the caller escaped with
	``text``). BTU's own actions (an alert, a pause) start with "(automatic)"."""
	if not name or not frappe.db.exists(doctype, name):
		return
	user = frappe.session.user
	frappe.get_doc(
		{
			"doctype": "Comment",
			"comment_type": "Info",
			"reference_doctype": doctype,
			"reference_name": name,
			"comment_email": user,
			"comment_by": get_fullname(user),
			"content": message,
		}
	).insert(ignore_permissions=True)


def text(value: object) -> str:
	"""A value (a name, a job id, a time) for a comment: escaped."""
	return as_html_text("" if value is None else str(value))
