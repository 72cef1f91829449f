"""A schedule that pauses itself after N failed runs in a row (Pause After Failures).

After a run of a recurring schedule ends Failed or Timeout, its newest N finished runs (Success,
Failed, Timeout; Skipped runs do not count either way) are read from its Task Logs; when all N
failed, the schedule is disabled with the reason in Paused Reason, the timeline says so, and the
site's System Managers get a Notification Log alert (Frappe emails it to those whose notification
settings ask for email). Resuming is enabling the schedule again (the form's *Resume* button),
which clears the reason. Retries are one-shots of their own: they do not count for the schedule.
"""

from __future__ import annotations

from typing import Any

import frappe
from frappe import _
from frappe.utils import cint

from btu.btu_core import audit, notifications

SCHEDULE = "BTU Task Schedule"
FAILED_STATES = ("Failed", "Timeout")
FINISHED_STATES = ("Success", "Failed", "Timeout")


def failed_in_a_row(schedule: str, limit: int) -> bool:
	"""True when the newest ``limit`` finished runs of ``schedule`` all failed."""
	newest = frappe.get_all(
		"BTU Task Log",
		filters={"schedule": schedule, "success_fail": ("in", FINISHED_STATES)},
		pluck="success_fail",
		order_by="modified desc",
		limit=limit,
	)
	return len(newest) == limit and all(status in FAILED_STATES for status in newest)


def after_failed_run(schedule_doc: Any, log: str | None) -> bool:
	"""Pause the schedule (its document, as the run read it) when its failures reached its limit;
	True when it was paused now. A schedule without a limit costs no query."""
	if cint(schedule_doc.get("pause_after_failures")) <= 0:
		return False
	schedule = schedule_doc.name
	row = frappe.db.get_value(
		SCHEDULE, schedule, ["enabled", "pause_after_failures", "run_frequency"], as_dict=True
	)
	if not row or not cint(row.enabled) or row.run_frequency == "Once":
		return False
	limit = cint(row.pause_after_failures)
	if limit <= 0 or not failed_in_a_row(schedule, limit):
		return False
	doc = frappe.get_doc(SCHEDULE, schedule)
	doc.enabled = 0
	doc.paused_reason = (
		_("Paused after a failed run ({0}).").format(log or "?")
		if limit == 1
		else _("Paused after {0} failed runs in a row (the last: {1}).").format(limit, log or "?")
	)
	doc.flags.ignore_permissions = True
	doc.flags.btu_paused_after_failures = True
	doc.save()  # tells the daemon (after commit) to plan nothing more
	audit.note_action(
		SCHEDULE, schedule, _("(automatic) disabled it: {0}").format(audit.text(doc.paused_reason))
	)
	alert_managers(doc, limit)
	return True


def alert_managers(doc, limit: int) -> None:
	notifications.notify_system_managers(
		_("BTU schedule {0} ({1}) paused after {2} failed runs in a row").format(
			audit.text(doc.name), audit.text(doc.task_description or doc.task), limit
		),
		audit.text(doc.paused_reason),
		SCHEDULE,
		doc.name,
	)
