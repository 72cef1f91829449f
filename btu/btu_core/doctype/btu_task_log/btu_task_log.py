"""BTU Task Log: one run of a BTU Task (written by btu.btu_core.task_runner, read-only for users)."""

from __future__ import annotations

from typing import Any

import frappe
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now

from btu.btu_core.text import TextDocument

STEP_DOCTYPE = "BTU Task Log Step"
DELETE_BATCH = 1000


class BTUTaskLog(TextDocument):
	def on_trash(self) -> None:
		release_retry_links([self.name])

	@staticmethod
	def clear_old_logs(days: int = 90) -> None:
		"""Log Settings hook: delete logs (and their steps) not modified for ``days`` days; 0 keeps them all."""
		if int(days or 0) <= 0:
			return
		table = frappe.qb.DocType("BTU Task Log")
		names = (
			frappe.qb.from_(table)
			.select(table.name)
			.where(table.modified < (Now() - Interval(days=days)))
			.run(pluck=True)
		)
		delete_logs(names)


# Desk's Task Log list sorts by `modified` (the DocType's sort_field). Filtered by a task or a schedule
# it would read every log of it and sort them (951 logs of a task on a site of 1,000,000 logs:
# 0.1 s, bench/desk_lists.py); with these it reads the 20 rows it shows, newest first.
LIST_INDEXES = (("task", "modified"), ("schedule", "modified"))


def on_doctype_update() -> None:
	"""Run by Frappe when the DocType is installed or changed (migrate): the list's composite indexes."""
	for fields in LIST_INDEXES:
		frappe.db.add_index("BTU Task Log", list(fields))


def delete_logs(names: list[str]) -> int:
	"""Delete these Task Logs with their steps, in batches, without loading each document; returns how many.

	What links to a Task Log is its retries (``retry_of``) and the runs it started (``chained_from``):
	their logs keep the name, their one-shots let go of it (``release_retry_links``)."""
	deleted = 0
	for start in range(0, len(names), DELETE_BATCH):
		batch = names[start : start + DELETE_BATCH]
		release_retry_links(batch)
		frappe.db.delete(STEP_DOCTYPE, {"parent": ("in", batch), "parenttype": "BTU Task Log"})
		frappe.db.delete("BTU Task Log", {"name": ("in", batch)})
		deleted += len(batch)
	return deleted


def release_retry_links(names: list[str]) -> None:
	"""The one-shots that retried these logs (``retry_of``) or that they started (``chained_from``) forget
	them, so that a log can be deleted like any log: a one-shot is kept as the history of a run, and must
	not hold a link to a log that is gone."""
	if not names:
		return
	schedule = frappe.qb.DocType("BTU Task Schedule")
	for fieldname in ("retry_of", "chained_from"):
		if frappe.db.has_column("BTU Task Schedule", fieldname):
			field = getattr(schedule, fieldname)
			frappe.qb.update(schedule).set(field, None).where(field.isin(names)).run()


def log_filters(
	from_date: Any = None, to_date: Any = None, status: str | None = None, task: str | None = None
) -> list[list[Any]]:
	"""The filters of a date-range deletion: started on ``from_date`` .. ``to_date`` (whole days)."""
	from frappe.utils import add_days, getdate

	filters: list[list[Any]] = [["success_fail", "!=", "In-Progress"]]
	if from_date:
		filters.append(["date_time_started", ">=", str(getdate(from_date))])
	if to_date:
		filters.append(["date_time_started", "<", str(add_days(getdate(to_date), 1))])
	if status:
		filters.append(["success_fail", "=", status])
	if task:
		filters.append(["task", "=", task])
	return filters
