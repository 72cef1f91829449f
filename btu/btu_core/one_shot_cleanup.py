"""Finished one-shots go after a while (BTU Configuration > Keep Finished One-shots (days)).

Every one-shot, retry and ``btu.api`` run is a BTU Task Schedule with Run Frequency Once. Once it
ran (or was cancelled) it is disabled and only clutters the list; its Task Log is the record. A
daily job deletes the disabled one-shots whose last change (the run's end, or the cancel) is older
than the setting; 0 keeps them. Their Task Logs stay and keep the one-shot's name.
"""

from __future__ import annotations

import frappe
from frappe.utils import add_days, cint, now_datetime

from btu.contracts.runs import ONCE


def retention_days() -> int:
	return cint(frappe.db.get_single_value("BTU Configuration", "keep_finished_one_shots_days"))


def delete_finished_one_shots(days: int | None = None, task: str | None = None) -> int:
	"""Delete the finished one-shots older than ``days`` (default: the setting), of one ``task`` or
	of all; returns how many."""
	days = retention_days() if days is None else days
	if days <= 0:
		return 0
	cutoff = add_days(now_datetime(), -days)
	filters = {
		"run_frequency": ONCE,
		"enabled": 0,
		"last_status": ("not in", ["In-Progress"]),  # a run still going keeps its one-shot
		"modified": ("<", cutoff),
	}
	if task:
		filters["task"] = task
	names = frappe.get_all(
		"BTU Task Schedule",
		filters=filters,
		pluck="name",
		limit_page_length=5000,
	)
	for name in names:
		frappe.delete_doc("BTU Task Schedule", name, ignore_permissions=True, force=True)
	frappe.db.commit()
	return len(names)
