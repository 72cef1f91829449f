"""Task Log Summary: runs per task in a period, by outcome, with timings."""

from __future__ import annotations

from typing import Any

import frappe
from frappe import _
from frappe.utils import add_days, flt, get_datetime, getdate, nowdate

STATUSES = ("Success", "Failed", "Timeout", "In-Progress")


def execute(filters: dict | None = None):
	filters = frappe._dict(filters or {})
	rows = get_data(filters)
	# The chart is drawn by the report's script (task_log_summary.js): its tooltips must escape the
	# task descriptions, which a chart built here cannot say.
	return get_columns(), rows, None, None, get_summary(rows)


def get_columns() -> list[dict[str, Any]]:
	return [
		{"fieldname": "task", "label": _("Task"), "fieldtype": "Link", "options": "BTU Task", "width": 130},
		{"fieldname": "task_desc_short", "label": _("Description"), "fieldtype": "Data", "width": 220},
		{"fieldname": "task_group", "label": _("Group"), "fieldtype": "Data", "width": 100},
		{"fieldname": "runs", "label": _("Runs"), "fieldtype": "Int", "width": 70},
		{"fieldname": "success", "label": _("Success"), "fieldtype": "Int", "width": 80},
		{"fieldname": "failed", "label": _("Failed"), "fieldtype": "Int", "width": 70},
		{"fieldname": "timeout", "label": _("Timeout"), "fieldtype": "Int", "width": 80},
		{"fieldname": "in_progress", "label": _("In-Progress"), "fieldtype": "Int", "width": 90},
		{"fieldname": "success_rate", "label": _("Success %"), "fieldtype": "Percent", "width": 90},
		{
			"fieldname": "avg_time",
			"label": _("Avg Time (s)"),
			"fieldtype": "Float",
			"precision": 3,
			"width": 100,
		},
		{
			"fieldname": "max_time",
			"label": _("Max Time (s)"),
			"fieldtype": "Float",
			"precision": 3,
			"width": 100,
		},
		{"fieldname": "last_run", "label": _("Last Run"), "fieldtype": "Datetime", "width": 160},
		{"fieldname": "last_status", "label": _("Last Status"), "fieldtype": "Data", "width": 100},
	]


def get_data(filters: frappe._dict) -> list[dict[str, Any]]:
	from_date = getdate(filters.from_date or add_days(nowdate(), -7))
	to_date = getdate(filters.to_date or nowdate())
	conditions = ["log.date_time_started >= %(start)s", "log.date_time_started < %(end)s"]
	values: dict[str, Any] = {"start": get_datetime(from_date), "end": get_datetime(add_days(to_date, 1))}
	for key, column in (
		("task", "log.task"),
		("schedule", "log.schedule"),
		("task_group", "task.task_group"),
	):
		if filters.get(key):
			conditions.append(f"{column} = %({key})s")
			values[key] = filters.get(key)
	rows = frappe.db.sql(
		f"""
		SELECT log.task, MAX(log.task_desc_short) AS task_desc_short, MAX(task.task_group) AS task_group,
			COUNT(*) AS runs,
			SUM(log.success_fail = 'Success') AS success,
			SUM(log.success_fail = 'Failed') AS failed,
			SUM(log.success_fail = 'Timeout') AS timeout,
			SUM(log.success_fail = 'In-Progress') AS in_progress,
			AVG(CASE WHEN log.success_fail != 'In-Progress' THEN log.execution_time END) AS avg_time,
			MAX(log.execution_time) AS max_time,
			MAX(log.date_time_started) AS last_run
		FROM `tabBTU Task Log` log
		LEFT JOIN `tabBTU Task` task ON task.name = log.task
		WHERE {" AND ".join(conditions)}
		GROUP BY log.task
		ORDER BY runs DESC, log.task
		""",
		values,
		as_dict=True,
	)
	for row in rows:
		finished = (row.runs or 0) - (row.in_progress or 0)
		row.success_rate = flt(100.0 * (row.success or 0) / finished, 1) if finished else None
		row.last_status = frappe.db.get_value(
			"BTU Task Log", {"task": row.task, "date_time_started": row.last_run}, "success_fail"
		)
	return rows


def get_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
	totals = {
		key: sum(int(r.get(key) or 0) for r in rows) for key in ("runs", "success", "failed", "timeout")
	}
	return [
		{"value": totals["runs"], "label": _("Runs"), "datatype": "Int", "indicator": "Blue"},
		{"value": totals["success"], "label": _("Success"), "datatype": "Int", "indicator": "Green"},
		{"value": totals["failed"], "label": _("Failed"), "datatype": "Int", "indicator": "Red"},
		{"value": totals["timeout"], "label": _("Timeout"), "datatype": "Int", "indicator": "Orange"},
	]
