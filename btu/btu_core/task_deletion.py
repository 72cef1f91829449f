"""Deleting a task, and what its schedules and logs become.

A task's finished one-shots (runs once at..., retries, ``btu.api`` runs that ran or were cancelled)
are its history, not its configuration: deleting the task deletes them with it. Its recurring
schedules and its pending one-shots are configuration: the deletion is refused with their names,
and *Delete with its schedules* (``delete_task_with_schedules``) deletes them too. The Task Logs
stay and keep the names as text: a deleted task's or schedule's name is marked in its logs
(``task_deleted``, ``schedule_deleted``) and Desk shows it as text, not a link to nothing.
"""

from __future__ import annotations

import frappe
from frappe import _

from btu.btu_core.text import as_html_text
from btu.contracts.runs import ONCE

LOG = "BTU Task Log"
SCHEDULE = "BTU Task Schedule"
MAX_NAMED = 10


def finished_one_shots(task: str) -> list[str]:
	return frappe.get_all(
		SCHEDULE,
		filters={
			"task": task,
			"run_frequency": ONCE,
			"enabled": 0,
			"last_status": ("not in", ["In-Progress"]),
		},
		pluck="name",
	)


def live_schedules(task: str) -> list[str]:
	"""Schedules that keep a task: every recurring one, and one-shots still pending or running."""
	finished = set(finished_one_shots(task))
	return [
		name
		for name in frappe.get_all(SCHEDULE, filters={"task": task}, pluck="name")
		if name not in finished
	]


def before_task_deleted(task: str) -> None:
	"""BTU Task on_trash: refuse while live schedules remain; delete its finished one-shots."""
	live = live_schedules(task)
	if live:
		named = ", ".join(as_html_text(name) for name in live[:MAX_NAMED])
		more = " " + _("and {0} more").format(len(live) - MAX_NAMED) if len(live) > MAX_NAMED else ""
		frappe.throw(
			_(
				"Task {0} still has {1} schedule(s): {2}{3}. Delete them first, or use Delete with its "
				"schedules in the task's menu. (Its finished one-shot runs are deleted with it.)"
			).format(as_html_text(task), len(live), named, more),
			frappe.LinkExistsError,
			title=_("Task Has Schedules"),
		)
	for name in finished_one_shots(task):
		frappe.delete_doc(SCHEDULE, name, ignore_permissions=True, force=True)
	frappe.db.sql(f"UPDATE `tab{LOG}` SET task_deleted = 1 WHERE task = %s", (task,))


def after_schedule_deleted(schedule: str) -> None:
	"""BTU Task Schedule on_trash: its logs show its name as text from now on."""
	frappe.db.sql(f"UPDATE `tab{LOG}` SET schedule_deleted = 1 WHERE schedule = %s", (schedule,))


@frappe.whitelist(methods=["POST"])
def delete_task_with_schedules(task: str) -> dict:
	"""Delete a task with every schedule of it (pending one-shots are cancelled by their deletion),
	cancelling the task first when it is submitted. Needs delete permission on both."""
	frappe.has_permission("BTU Task", "delete", doc=task, throw=True)
	frappe.has_permission(SCHEDULE, "delete", throw=True)
	schedules = frappe.get_all(SCHEDULE, filters={"task": task}, pluck="name")
	for name in schedules:
		frappe.delete_doc(SCHEDULE, name)
	doc = frappe.get_doc("BTU Task", task)
	if doc.docstatus == 1:
		doc.cancel()
	frappe.delete_doc("BTU Task", task)
	return {"task": task, "schedules_deleted": len(schedules)}
