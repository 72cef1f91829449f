"""Demo tasks and schedules (firing every few seconds) for the README's demo."""

from __future__ import annotations

import json
from typing import Any, Callable

import pymysql

DEMO_TASKS = [
	("BTU-00001", "Say hello", "btu.scheduler_daemon.demo_tasks.say_hello", {"name": "world"}),
	("BTU-00002", "Add two numbers", "btu.scheduler_daemon.demo_tasks.add", {"a": 2, "b": 3}),
	("BTU-00003", "Flaky task", "btu.scheduler_daemon.demo_tasks.flaky", {"failure_rate": 0.3}),
]
DEMO_SCHEDULES = [
	("TS-000001", "BTU-00001", "*/5 * * * * *", "UTC", {}, 1),
	("TS-000002", "BTU-00002", "*/7 * * * * *", "Europe/Paris", {"b": 40}, 1),
	("TS-000003", "BTU-00003", "*/10 * * * * *", "America/New_York", {}, 1),
	("TS-000004", "BTU-00001", "0 9 * * 1", "Asia/Tokyo", {"name": "Monday"}, 1),
	("TS-000005", "BTU-00002", "* * * * *", "UTC", {}, 0),
]


def insert_demo_data(connection_args: dict[str, Any], db_name: str) -> list[str]:
	conn = pymysql.connect(**connection_args, database=db_name, autocommit=True)
	try:
		with conn.cursor() as cur:
			for name, desc, function, arguments in DEMO_TASKS:
				cur.execute(
					"REPLACE INTO `tabBTU Task` (name, creation, modified, owner, modified_by, docstatus, desc_short,"
					" function_string, arguments, max_task_duration, queue_name)"
					" VALUES (%s, NOW(6), NOW(6), 'Administrator', 'Administrator', 1, %s, %s, %s, 60, 'default')",
					(name, desc, function, json.dumps(arguments)),
				)
			for name, task, cron, zone, overrides, enabled in DEMO_SCHEDULES:
				cur.execute(
					"REPLACE INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task, enabled,"
					" queue_name, run_frequency, cron_string, cron_timezone, argument_overrides)"
					" VALUES (%s, NOW(6), NOW(6), 'Administrator', 'Administrator', %s, %s, 'default', 'Cron Style',"
					" %s, %s, %s)",
					(name, task, enabled, cron, zone, json.dumps(overrides)),
				)
	finally:
		conn.close()
	return [s[0] for s in DEMO_SCHEDULES]


def load_schedule_name(number: int) -> str:
	return f"TS-L{number:07d}"


def insert_load_schedules(
	connection_args: dict[str, Any],
	db_name: str,
	count: int,
	progress: Callable[[int], None] | None = None,
	batch: int = 2000,
) -> int:
	"""Insert ``count`` daily schedules of demo task BTU-00001, one a minute round the clock (idempotent)."""
	sql = (
		"REPLACE INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task, enabled,"
		" queue_name, run_frequency, cron_string, cron_timezone, argument_overrides)"
		" VALUES (%s, NOW(6), NOW(6), 'Administrator', 'Administrator', 'BTU-00001', 1, 'default',"
		" 'Cron Style', %s, 'UTC', %s)"
	)
	conn = pymysql.connect(**connection_args, database=db_name, autocommit=False)
	done = 0
	try:
		with conn.cursor() as cur:
			while done < count:
				rows = []
				for number in range(done + 1, min(count, done + batch) + 1):
					minute_of_day = (number - 1) % 1440
					rows.append(
						(
							load_schedule_name(number),
							f"{minute_of_day % 60} {minute_of_day // 60} * * *",
							json.dumps({"name": f"load {number}"}),
						)
					)
				cur.executemany(sql, rows)
				conn.commit()
				done += len(rows)
				if progress:
					progress(done)
	finally:
		conn.close()
	return done
