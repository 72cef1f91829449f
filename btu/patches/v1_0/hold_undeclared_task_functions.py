"""Upgrade: tasks whose function is not declared runnable stay, but their schedules stop.

Since BTU runs only functions an app declares (``@btu.runnable`` or hooks.py's
``btu_runnable_functions``; docs/security.md), a task of the original BTU may name one that is
no longer allowed. No task is deleted or changed: each such task's enabled schedules are
disabled (the runner would refuse every run anyway), a note on each says why, and the migrate
output lists every task with the exact declaration, or the server's opt-in, that would allow it.
After declaring the function, enable the schedules again (the note names them).
"""

from __future__ import annotations

import html

import frappe

from btu.btu_core.callables import CallableError
from btu.btu_core.runnables import resolve_task_function


def execute() -> None:
	if not frappe.db.table_exists("BTU Task"):
		return
	held = 0
	for task in frappe.get_all(
		"BTU Task", filters={"docstatus": ["<", 2]}, fields=["name", "function_string"], order_by="name"
	):
		try:
			resolve_task_function(task.function_string)
			continue
		except CallableError as exc:
			why = str(exc)
		schedules = frappe.get_all(
			"BTU Task Schedule", filters={"task": task.name, "enabled": 1}, pluck="name", order_by="name"
		)
		for name in schedules:
			frappe.db.set_value("BTU Task Schedule", name, "enabled", 0, update_modified=False)
			add_note(name, task.name, why)
		held += 1
		stopped = ", ".join(schedules) if schedules else "none enabled"
		say(f"task {task.name} ({task.function_string}) may not run: {why} Schedules disabled: {stopped}.")
	if held:
		say(f"{held} task(s) hold functions that are not declared runnable; see above for what allows each")


def say(line: str) -> None:
	print(f"BTU upgrade: {line}")


def add_note(schedule: str, task: str, why: str) -> None:
	content = (
		f"<b>Disabled by the BTU upgrade</b>: the function of task {html.escape(task)} may not run.<br>"
		f"{html.escape(why)}<br>Enable this schedule again once the function is declared."
	)
	frappe.get_doc(
		{
			"doctype": "Comment",
			"comment_type": "Info",
			"reference_doctype": "BTU Task Schedule",
			"reference_name": schedule,
			"content": content,
		}
	).insert(ignore_permissions=True)
