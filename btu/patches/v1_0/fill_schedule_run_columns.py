"""Fill the BTU Task Schedule columns that lists show (Next Run, Last Run, Last Status, Last Task
Log) on sites that had schedules before them (``btu.btu_core.run_summary``): the next run by each
enabled schedule's rule, and its newest Task Log. Nothing else is changed."""

from __future__ import annotations

import frappe

from btu.btu_api.status import configuration_time_zone
from btu.btu_core import run_summary


def execute() -> None:
	default_zone = configuration_time_zone()
	for row in frappe.get_all("BTU Task Schedule", fields=["*"]):
		values = {"next_run": run_summary.expected_next_run(row, row.cron_timezone or default_zone)}
		last = frappe.get_all(
			"BTU Task Log",
			filters={"schedule": row.name},
			fields=["name", "success_fail", "date_time_started"],
			order_by="creation desc",
			limit_page_length=1,
		)
		if last and last[0].success_fail != "In-Progress":
			values.update(
				last_run=last[0].date_time_started, last_status=last[0].success_fail, last_log=last[0].name
			)
		frappe.db.set_value("BTU Task Schedule", row.name, values, update_modified=False)
