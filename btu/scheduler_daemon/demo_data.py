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


class DemoDataConflict(Exception):
	"""The database holds a task or schedule of a demo name that is not the demo's."""


def _refuse_foreign_load_schedules(cur: Any, db_name: str) -> None:
	cur.execute(
		"SELECT name, task FROM `tabBTU Task Schedule` WHERE name LIKE %s AND task <> %s LIMIT 1",
		("TS-L%", "BTU-00001"),
	)
	foreign = cur.fetchone()
	if foreign:
		raise DemoDataConflict(
			f"database {db_name} already has a BTU Task Schedule {foreign[0]} that is not a demo load "
			f"schedule (task {foreign[1]!r}); the demo erases nothing it did not create: "
			"use a database of its own"
		)


def _refuse_foreign_rows(cur: Any, db_name: str) -> None:
	"""The demo writes its own rows again (init-db --demo twice) but never overwrites another
	task or schedule that happens to bear one of its names (a site's TS-000001, say)."""
	cur.execute(
		"SELECT name, function_string FROM `tabBTU Task` WHERE name IN %s", ([t[0] for t in DEMO_TASKS],)
	)
	functions = {name: function for name, _desc, function, _args in DEMO_TASKS}
	for name, function in cur.fetchall():
		if function != functions[name]:
			raise DemoDataConflict(
				f"database {db_name} already has a BTU Task {name} that is not the demo's (it runs "
				f"{function!r}); the demo erases nothing it did not create: use a database of its own"
			)
	cur.execute(
		"SELECT name, task, cron_string FROM `tabBTU Task Schedule` WHERE name IN %s",
		([s[0] for s in DEMO_SCHEDULES],),
	)
	rules = {name: (task, cron) for name, task, cron, *_ in DEMO_SCHEDULES}
	for name, task, cron in cur.fetchall():
		if (task, cron) != rules[name]:
			raise DemoDataConflict(
				f"database {db_name} already has a BTU Task Schedule {name} that is not the demo's "
				f"(task {task!r}, cron {cron!r}); the demo erases nothing it did not create: "
				"use a database of its own"
			)


def insert_demo_data(
	connection_args: dict[str, Any], db_name: str, load_schedules: bool = False
) -> list[str]:
	"""The demo's tasks and schedules; DemoDataConflict, before writing anything, when one of their
	names (or, with ``load_schedules``, a load schedule's) is taken by another."""
	conn = pymysql.connect(**connection_args, database=db_name, autocommit=True)
	try:
		with conn.cursor() as cur:
			_refuse_foreign_rows(cur, db_name)
			if load_schedules:
				_refuse_foreign_load_schedules(cur, db_name)
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
			_refuse_foreign_load_schedules(cur, db_name)
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
