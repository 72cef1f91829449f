"""Upgrade from the original BTU: every schedule keeps firing at the instants the original daemon used.

Runs after model sync on the rows ``prepare_original_schedules`` marked (a site of the original
BTU; nothing happens elsewhere). The decision per row is
``btu.btu_core.legacy_schedules.migrate_schedule`` (frappe-free, tested against tables built like
the original's); this is the loop: read the zone the original daemon used, rewrite each row's cron
string, zone and frequency fields, and tell the owner what changed and why, in the migrate output,
on the schedule's timeline and, where something needs a decision, in the Error Log.
"""

from __future__ import annotations

import html

import frappe
from frappe.utils import get_system_timezone

from btu.btu_core.legacy_config import original_time_zone
from btu.btu_core.legacy_schedules import (
	ORIGINAL_MARK_COLUMN,
	SCHEDULE_TABLE,
	OriginalSchedule,
	cleanup_statements,
	migrate_schedule,
	original_daemon_zone,
)


def execute() -> None:
	if not frappe.db.table_exists("BTU Task Schedule") or not frappe.db.has_column(
		"BTU Task Schedule", ORIGINAL_MARK_COLUMN
	):
		return
	stored = frappe.db.sql(
		"SELECT value FROM `tabSingles` WHERE doctype = 'BTU Configuration' AND field = 'cron_time_zone'"
	)
	daemon = original_daemon_zone(stored[0][0] if stored else None, present=bool(stored))
	system_zone = frappe.db.get_single_value("System Settings", "time_zone") or get_system_timezone()
	say(f"schedules: {daemon.note}; System Settings' time zone (the original form's) is {system_zone}")
	toml_zone, source = original_time_zone()
	if toml_zone:
		say(
			f"time_zone_string {toml_zone!r} ({source}) only formatted the original daemon's log lines; "
			"it is not used"
		)
	rows = frappe.db.sql(
		f"SELECT * FROM `{SCHEDULE_TABLE}` WHERE `{ORIGINAL_MARK_COLUMN}` = 1 ORDER BY name", as_dict=True
	)
	for row in rows:
		migration = migrate_schedule(OriginalSchedule.from_row(row), daemon, system_zone)
		frappe.db.set_value("BTU Task Schedule", row.name, migration.values, update_modified=False)
		for line in migration.lines:
			say(f"{row.name}: {line}")
		add_timeline_note(row.name, migration.lines)
		if migration.attention:
			frappe.log_error(
				title=f"BTU upgrade: schedule {row.name} needs your decision",
				message="\n".join(migration.lines),
			)
	if not daemon.ran or not stored:
		frappe.db.set_single_value("BTU Configuration", "cron_time_zone", "UTC")
		say("BTU Configuration's Cron Time Zone set to UTC")
	for statement in cleanup_statements(SCHEDULE_TABLE):
		frappe.db.sql_ddl(statement)  # commits the rows above first
	say(f"{len(rows)} schedule(s) of the original BTU migrated")


def say(line: str) -> None:
	print(f"BTU upgrade: {line}")


def add_timeline_note(name: str, lines: list[str]) -> None:
	content = "<b>Upgraded from the original BTU</b><br>" + "<br>".join(html.escape(x) for x in lines)
	frappe.get_doc(
		{
			"doctype": "Comment",
			"comment_type": "Info",
			"reference_doctype": "BTU Task Schedule",
			"reference_name": name,
			"content": content,
		}
	).insert(ignore_permissions=True)
