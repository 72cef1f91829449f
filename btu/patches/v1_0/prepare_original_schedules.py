"""Before model sync, on a site upgraded from the original BTU: let `hour` become an Int column.

The original stored the hour as text (a Data field), NULL for Hourly and Cron Style rows; model
sync's ``ALTER TABLE ... MODIFY hour int(11) not null default 0`` fails on those in MariaDB's strict
mode ("Data truncated for column 'hour'"), so ``bench migrate`` would stop. This keeps every row's
text hour in a column of its own (with a mark saying the row is the original's), leaves in
``hour`` only what an Int column takes, and lets ``migrate_original_schedules`` (after model sync)
read the original values and drop both columns.

A site is the original's when its schedule table has no ``cron_timezone`` column (BTU 1.0 added it).
"""

from __future__ import annotations

import frappe

from btu.btu_core.legacy_schedules import SCHEDULE_TABLE, prepare_statements


def execute() -> None:
	if not frappe.db.table_exists("BTU Task Schedule") or frappe.db.has_column(
		"BTU Task Schedule", "cron_timezone"
	):
		return
	for statement in prepare_statements(SCHEDULE_TABLE):
		# ALTER commits implicitly, which frappe.db.sql refuses inside a transaction
		run = frappe.db.sql_ddl if statement.startswith("ALTER") else frappe.db.sql
		run(statement)
	count = frappe.db.sql(f"SELECT COUNT(*) FROM `{SCHEDULE_TABLE}`")[0][0]
	print(f"BTU: {count} schedule(s) of the original BTU kept aside for migrate_original_schedules")
