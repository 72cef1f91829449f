"""Upgrade from the original BTU (version 13): task-level email recipients, task types, run-later.

* **Task recipients.** Version 13 mailed a scheduled run's task recipients as well as its
  schedule's (each flag OR-ed). BTU has recipients on schedules only, so each task's recipients
  are added to every schedule of that task (flags OR-ed); runs started by hand mail no one.
* **task_type** (Persistent / One-Shot / Subtask / Other) has no meaning in BTU; the column stays
  and the patch counts the tasks of each type. One-Shot tasks were made by ``run_later`` and
  ``create_and_run_one_shot``; nothing runs them again.
* **run_later.** Pending ``btu_scheduler:run_later:*`` hashes in the bench's Redis queue were run
  by a BTU Task calling ``btu.btu_core.run_later.poll_for_ready_work``, which BTU does not have:
  its schedules are disabled (they would fail every minute) and every pending request is listed
  in the migrate output and the Error Log with its function, arguments and time, and the
  ``bench execute btu.api.run_function`` command that runs it once at that time (BTU's run-later),
  so that none is lost unseen. The hashes are left in Redis until you have run them.
* The original daemon's ``btu_scheduler:task_execution_times`` key is reported if still there.
"""

from __future__ import annotations

import frappe

from btu.btu_core.legacy_config import merge_recipients, run_later_command

POLLER = "btu.btu_core.run_later.poll_for_ready_work"
RUN_LATER_PATTERN = "btu_scheduler:run_later:*"
OLD_NEXT_RUNS_KEY = "btu_scheduler:task_execution_times"
FLAGS = ("email_on_start", "email_on_success", "email_on_error", "email_on_timeout")


def execute() -> None:
	carry_task_recipients()
	report_task_types()
	disable_poller_schedules()
	report_redis_leftovers()


def carry_task_recipients() -> None:
	rows = frappe.db.sql(
		"SELECT parent, email_address, " + ", ".join(FLAGS) + " FROM `tabBTU Email Recipient` "
		"WHERE parenttype = 'BTU Task' ORDER BY parent, idx",
		as_dict=True,
	)
	by_task: dict[str, list[dict]] = {}
	for row in rows:
		by_task.setdefault(row.parent, []).append(row)
	for task, task_rows in by_task.items():
		for schedule in frappe.get_all("BTU Task Schedule", filters={"task": task}, pluck="name"):
			current = frappe.get_all(
				"BTU Email Recipient",
				filters={"parenttype": "BTU Task Schedule", "parent": schedule},
				fields=["name", "email_address", "idx", *FLAGS],
				order_by="idx",
			)
			added, raised = merge_recipients(task_rows, current)
			idx = max([r.idx for r in current] or [0])
			for new in added:
				idx += 1
				frappe.get_doc(
					{
						"doctype": "BTU Email Recipient",
						"parent": schedule,
						"parenttype": "BTU Task Schedule",
						"parentfield": "email_recipients",
						"idx": idx,
						**new,
					}
				).db_insert()
			for change in raised:
				name = change.pop("name")
				frappe.db.set_value("BTU Email Recipient", name, change, update_modified=False)
			if added or raised:
				who = ", ".join(r["email_address"] for r in added) or "existing recipients"
				say(f"{schedule}: recipients of task {task} carried over ({who})")
	defaults = frappe.db.sql(
		"SELECT email_address FROM `tabBTU Email Recipient` WHERE parenttype = 'BTU Configuration'"
	)
	if defaults:
		say(
			"BTU Configuration's default recipients ("
			+ ", ".join(r[0] for r in defaults)
			+ ") were copied onto new tasks by the original; BTU has no defaults: add them to schedules"
		)


def report_task_types() -> None:
	if not frappe.db.has_column("BTU Task", "task_type"):
		return
	counts = frappe.db.sql(
		"SELECT IFNULL(task_type, ''), COUNT(*) FROM `tabBTU Task` GROUP BY task_type ORDER BY task_type"
	)
	if counts:
		say(
			"task types of the original (not used by BTU): "
			+ ", ".join(f"{kind or 'none'} {count}" for kind, count in counts)
		)


def disable_poller_schedules() -> None:
	tasks = frappe.get_all("BTU Task", filters={"function_string": POLLER}, pluck="name")
	if not tasks:
		return
	schedules = frappe.get_all(
		"BTU Task Schedule", filters={"task": ("in", tasks), "enabled": 1}, pluck="name"
	)
	for name in schedules:
		frappe.db.set_value("BTU Task Schedule", name, "enabled", 0, update_modified=False)
	message = (
		f"task(s) {', '.join(tasks)} call {POLLER}, which BTU does not have; their schedules "
		f"{', '.join(schedules) or '(none enabled)'} are disabled"
	)
	say(message)
	frappe.log_error(title="BTU upgrade: the run-later poller is disabled", message=message)


def report_redis_leftovers() -> None:
	url = frappe.conf.get("redis_queue")
	if not url:
		return
	import redis

	try:
		client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
		keys = sorted(client.scan_iter(match=RUN_LATER_PATTERN, count=500))
		pending = []
		for key in keys:
			data = client.hgetall(key)
			if data.get("status", "") == "pending":
				pending.append((key, data))
		old_runs = client.zcard(OLD_NEXT_RUNS_KEY)
	except redis.RedisError as exc:
		say(f"could not look for the original's run-later requests in {url}: {exc}")
		return
	if old_runs:
		say(
			f"{OLD_NEXT_RUNS_KEY} ({old_runs} entries) is the original daemon's; delete it once it is stopped"
		)
	if not pending:
		return
	site = frappe.local.site
	lines = []
	for key, data in pending:
		lines.append(
			f"{key}: {data.get('short_name', '')!r} calls {data.get('path_to_function')} "
			f"with {data.get('arguments') or '{}'} not before {data.get('not_before_time')} "
			f"in queue {data.get('target_queue') or 'default'}; to run it: {run_later_command(site, data)} "
			f"&& redis-cli -u {url} DEL {key}"
		)
	head = (
		f"{len(pending)} run-later request(s) of the original are pending; version 13's poller is gone, "
		"so each is left in Redis for you to run the BTU way (btu.api.run_function: once, at its time; "
		"now when its time has passed) and then delete"
	)
	for line in [head, *lines]:
		say(line)
	frappe.log_error(title="BTU upgrade: pending run-later requests", message="\n".join([head, *lines]))


def say(line: str) -> None:
	print(f"BTU upgrade: {line}")
