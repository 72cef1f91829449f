"""Scheduled Task Summary: every schedule with its rule, zone, next run (from the daemon) and last run."""

from __future__ import annotations

from typing import Any

import frappe
from frappe import _

from btu.btu_api import status
from btu.contracts import pending


def execute(filters: dict | None = None):
	filters = frappe._dict(filters or {})
	rows, message = get_data(filters)
	return get_columns(), rows, message


def get_columns() -> list[dict[str, Any]]:
	return [
		{
			"fieldname": "schedule",
			"label": _("Schedule"),
			"fieldtype": "Link",
			"options": "BTU Task Schedule",
			"width": 120,
		},
		{"fieldname": "task", "label": _("Task"), "fieldtype": "Link", "options": "BTU Task", "width": 120},
		{"fieldname": "task_description", "label": _("Description"), "fieldtype": "Data", "width": 200},
		{"fieldname": "enabled", "label": _("Enabled"), "fieldtype": "Check", "width": 70},
		{"fieldname": "run_frequency", "label": _("Frequency"), "fieldtype": "Data", "width": 95},
		{"fieldname": "cron_string", "label": _("Cron"), "fieldtype": "Data", "width": 110},
		{"fieldname": "schedule_description", "label": _("Runs"), "fieldtype": "Data", "width": 220},
		{"fieldname": "time_zone", "label": _("Time Zone"), "fieldtype": "Data", "width": 130},
		{
			"fieldname": "queue_name",
			"label": _("Queue"),
			"fieldtype": "Link",
			"options": "BTU Queue",
			"width": 80,
		},
		{"fieldname": "next_run", "label": _("Next Run (schedule zone)"), "fieldtype": "Data", "width": 160},
		{"fieldname": "scheduler_note", "label": _("Scheduler"), "fieldtype": "Data", "width": 200},
		{"fieldname": "last_run", "label": _("Last Run"), "fieldtype": "Datetime", "width": 160},
		{"fieldname": "last_status", "label": _("Last Status"), "fieldtype": "Data", "width": 100},
		{"fieldname": "recipients", "label": _("Email Recipients"), "fieldtype": "Int", "width": 80},
	]


def get_data(filters: frappe._dict) -> tuple[list[dict[str, Any]], str | None]:
	conditions: dict[str, Any] = {}
	if filters.get("task"):
		conditions["task"] = filters.task
	if filters.get("enabled") in ("Enabled", "Disabled"):
		conditions["enabled"] = 1 if filters.enabled == "Enabled" else 0
	schedules = frappe.get_all(
		"BTU Task Schedule",
		filters=conditions,
		fields=[
			"name as schedule",
			"task",
			"task_description",
			"enabled",
			"run_frequency",
			"cron_string",
			"schedule_description",
			"cron_timezone",
			"queue_name",
			"minute",
			"hour",
			"day_of_week",
			"day_of_month",
			"month",
			"run_at",
			"holiday_list_doctype",
			"holiday_list",
			"on_holiday",
			"jitter_seconds",
		],
		order_by="task asc, name asc",
	)
	default_zone = status.configuration_time_zone()
	message = None
	try:
		held = pending.read_pending(
			status.redis_conn(), status.keys(), frappe.local.site, [row.schedule for row in schedules]
		)
		errors = status.schedule_errors()
	except Exception as exc:  # noqa: BLE001 - Redis down: show the rest
		held, errors = {}, {}
		message = _("Next runs are unavailable: cannot read the scheduler's Redis ({0}).").format(exc)
	for row in schedules:
		row.time_zone = row.cron_timezone or f"{default_zone} ({_('default')})"
		planned = held.get(row.schedule)
		state = pending.confirmation(
			planned, status.current_timing({**row, "name": row.schedule}, default_zone)
		)
		if planned is not None and planned.fire_time is not None:
			# Shown in the zone that produced it, with what it is worth (btu.contracts.pending).
			row.next_run = status.wall_time(
				planned.fire_time, planned.zone or row.cron_timezone or default_zone
			)
		row.scheduler_note = errors.get(row.schedule) or _state_note(row, planned, state, message)
		last = frappe.get_all(
			"BTU Task Log",
			filters={"schedule": row.schedule},
			fields=["date_time_started", "success_fail"],
			order_by="date_time_started desc",
			limit_page_length=1,
		)
		if last:
			row.last_run, row.last_status = last[0].date_time_started, last[0].success_fail
		row.recipients = frappe.db.count(
			"BTU Email Recipient", {"parent": row.schedule, "parenttype": "BTU Task Schedule"}
		)
	return schedules, message


def _state_note(row: Any, planned: Any, state: str, message: str | None) -> str:
	"""What the Scheduler column says of a schedule the daemon did not refuse."""
	if message is not None:
		return ""
	if state == pending.NOT_PLANNED:
		return _("not planned") if row.enabled else ""
	if state == pending.UNCONFIRMED:
		return _("not confirmed: planned by the previous rule {0} ({1})").format(planned.rule, planned.zone)
	if state == pending.OVERDUE:
		return _("overdue: the daemon has not enqueued it")
	return ""
