"""Fill cron_string and schedule_description of schedules created before BTU 1.0.

Writes the columns directly (no controller, no daemon messages): the daemon's next
full refresh reads the result.
"""

from __future__ import annotations

import frappe

from btu.contracts.schedule_rules import CronError, describe_cron, frequency_to_cron


def execute() -> None:
	fields = [
		"name",
		"run_frequency",
		"minute",
		"hour",
		"day_of_week",
		"day_of_month",
		"month",
		"cron_string",
	]
	for row in frappe.get_all("BTU Task Schedule", fields=fields):
		try:
			cron = frequency_to_cron(
				row.run_frequency or "Cron Style",
				minute=row.minute,
				hour=row.hour,
				day_of_week=row.day_of_week or None,
				day_of_month=row.day_of_month or None,
				month=row.month or None,
				cron_string=row.cron_string,
			)
		except CronError as exc:
			frappe.log_error(title=f"BTU: schedule {row.name} has no valid cron rule", message=str(exc))
			continue
		frappe.db.set_value(
			"BTU Task Schedule",
			row.name,
			{"cron_string": cron, "schedule_description": describe_cron(cron)},
			update_modified=False,
		)
