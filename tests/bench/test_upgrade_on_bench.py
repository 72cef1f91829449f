"""`bench migrate` on a real Frappe v15 bench carries rows of the original BTU over (issue 10).

BTU_SITE2 already runs BTU 1.0, so its tables have BTU's columns. The test puts the original's
data in them the way ``prepare_original_schedules`` leaves an original site right before model
sync (the original's text hour kept aside, its rows marked; the SQL of that step itself is tested
on the original's own table in tests/test_upgrade_fire_times.py), plus the original's BTU
Configuration fields, Desk records, a version-13 task recipient, a run-later poller and a pending
run-later hash. It then makes ``bench --site <site2> migrate`` run BTU's upgrade patches again and
checks what they did: next fire times equal to the original daemon's (modelled in
tests/test_upgrade_fire_times.py), rows that save in BTU's form, the report (migrate output,
timeline notes, Error Log), the Desk records gone, the socket path and the subject prefix. Every
row, key and setting it made or changed is removed or restored at the end. Its tasks are drafts,
so the daemon never runs them.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pymysql
import pytest
import redis

from btu.btu_core.legacy_schedules import ORIGINAL_HOUR_COLUMN, ORIGINAL_MARK_COLUMN
from btu.contracts import protocol
from btu.contracts.schedule_rules import next_fire_times

from ..test_upgrade_fire_times import CrateRule, DaemonPanic, form_save, original_runs

UTC = timezone.utc
PATCHES = (
	"btu.patches.v1_0.prepare_original_schedules",
	"btu.patches.v1_0.migrate_original_schedules",
	"btu.patches.v1_0.carry_original_daemon_settings",
	"btu.patches.v1_0.carry_original_email_settings",
	"btu.patches.v1_0.carry_original_task_settings",
	"btu.patches.v1_0.remove_original_desk_records",
)
DESK_RECORDS = (
	("Report", "BTU Scheduled Task Summary"),
	("Report", "BTU Task Log Summary"),
	("Report", "Task Log Averages"),
	("Page", "btu-redis-queue"),
	("Workspace", "Automated Tasks"),
)
ORIGINAL_CONFIG = {
	"environment_name": "UPGTEST",
	"send_email_via": "SMTP",
	"email_server": "smtp.upgrade-test.invalid",
	"email_server_port": "587",
	"email_auth_username": "upgrade-test@example.com",
	"email_encryption": "STARTTLS",
}
PROBES = [datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC)]


class SiteDatabase:
	def __init__(self, bench_path: str, site: str):
		config = json.loads(Path(bench_path, "sites", site, "site_config.json").read_text())
		args = dict(
			user=config.get("db_user") or config["db_name"],
			password=config["db_password"],
			database=config["db_name"],
			autocommit=True,
			cursorclass=pymysql.cursors.DictCursor,
		)
		# Frappe v15's own default: TCP to 127.0.0.1 (the site's user is created for that host)
		args.update(host=config.get("db_host") or "127.0.0.1", port=int(config.get("db_port") or 3306))
		self.conn = pymysql.connect(**args)

	def rows(self, sql: str, params=()) -> list[dict]:
		with self.conn.cursor() as cur:
			cur.execute(sql, params)
			return list(cur.fetchall())

	def run(self, sql: str, params=()) -> int:
		with self.conn.cursor() as cur:
			return cur.execute(sql, params)

	def insert(self, table: str, values: dict) -> None:
		columns = ", ".join(f"`{c}`" for c in values)
		self.run(
			f"INSERT INTO `{table}` ({columns}) VALUES ({', '.join(['%s'] * len(values))})",
			list(values.values()),
		)

	def single(self, field: str):
		found = self.rows(
			"SELECT value FROM tabSingles WHERE doctype = 'BTU Configuration' AND field = %s", (field,)
		)
		return found[0]["value"] if found else None

	def set_single(self, field: str, value) -> None:
		self.run("DELETE FROM tabSingles WHERE doctype = 'BTU Configuration' AND field = %s", (field,))
		if value is not None:
			self.insert("tabSingles", {"doctype": "BTU Configuration", "field": field, "value": value})


def _upgrade_error_logs(site: SiteDatabase) -> dict[str, str]:
	"""name -> method of every Error Log BTU's upgrade patches write ('BTU upgrade: ...')."""
	return {
		row["name"]: row["method"]
		for row in site.rows(
			"SELECT name, method FROM `tabError Log` WHERE method LIKE %s", ("BTU upgrade:%",)
		)
	}


@pytest.fixture
def site2(bench_config):
	if not bench_config.site2:
		pytest.skip("needs BTU_SITE2: a second site with BTU installed, whose migrate this test runs")
	db = SiteDatabase(bench_config.path, bench_config.site2)
	yield db
	db.conn.close()


def test_bench_migrate_carries_the_originals_rows_over(bench, bench_config, site2):
	tag = uuid.uuid4().hex[:6].upper()
	task, poller = f"BTU-UPG{tag}", f"BTU-UPG{tag}-P"
	# The upgrade's Error Logs are told apart by name, not by time: `creation` is written in the
	# site's time zone, which may be behind the database server's clock (NOW() would miss them).
	upgrade_errors_before = _upgrade_error_logs(site2)
	system_zone = site2.rows(
		"SELECT value FROM tabSingles WHERE doctype = 'System Settings' AND field = 'time_zone'"
	)[0]["value"]
	daemon_zone = site2.single("cron_time_zone") or "UTC"
	summer, winter = datetime(2025, 7, 10, 18, tzinfo=UTC), datetime(2025, 1, 10, 18, tzinfo=UTC)
	daily = form_save("Daily", system_zone, summer, minute=30, hour="9")
	rows = {
		f"TS-UPG{tag}-D": daily,
		f"TS-UPG{tag}-W": form_save("Weekly", system_zone, winter, minute=30, hour="0", weekday="Monday"),
		f"TS-UPG{tag}-H": form_save("Hourly", system_zone, summer, minute=15),
		f"TS-UPG{tag}-S": form_save("Weekly", system_zone, summer, minute=0, hour="10", weekday="Sunday"),
		f"TS-UPG{tag}-Y": daily | {"run_frequency": "Yearly", "day_of_month": 15, "month": "JAN"},
		f"TS-UPG{tag}-C": form_save("Cron Style", system_zone, summer, cron="0 9 * * 1-5"),
	}
	poller_schedule = f"TS-UPG{tag}-P"
	saved = {field: site2.single(field) for field in ("email_subject_prefix", "path_to_btu_scheduler_uds")}
	had_columns = {c["Field"] for c in site2.rows("SHOW COLUMNS FROM `tabBTU Task Schedule`")} & {
		ORIGINAL_HOUR_COLUMN,
		ORIGINAL_MARK_COLUMN,
	}
	assert not had_columns, f"{had_columns} left from an earlier run"
	existing_desk = [
		(d, n) for d, n in DESK_RECORDS if site2.rows(f"SELECT name FROM `tab{d}` WHERE name = %s", (n,))
	]
	assert not existing_desk, f"site2 already has {existing_desk}"
	module_def_made = not site2.rows("SELECT name FROM `tabModule Def` WHERE name = 'btu_core'")
	redis_url = json.loads(Path(bench_config.path, "sites", "common_site_config.json").read_text())[
		"redis_queue"
	]
	run_later_key = f"btu_scheduler:run_later:upgtest{tag.lower()}"
	queue = redis.Redis.from_url(redis_url, decode_responses=True)
	patch_log = site2.rows("SELECT * FROM `tabPatch Log` WHERE patch IN %(p)s", {"p": PATCHES})
	now = "2025-01-01 00:00:00"
	std = {"creation": now, "modified": now, "owner": "Administrator", "modified_by": "Administrator"}
	try:
		# --- the original's data, as prepare_original_schedules leaves it before model sync -------
		site2.run(
			f"ALTER TABLE `tabBTU Task Schedule` ADD COLUMN `{ORIGINAL_HOUR_COLUMN}` varchar(140) DEFAULT NULL, "
			f"ADD COLUMN `{ORIGINAL_MARK_COLUMN}` int(1) NOT NULL DEFAULT 0"
		)
		for name, function in (
			(task, "btu.btu_core.sample_tasks.hello"),
			(poller, "btu.btu_core.run_later.poll_for_ready_work"),
		):
			site2.insert(
				"tabBTU Task",
				std
				| {
					"name": name,
					"docstatus": 0,
					"desc_short": f"upgrade test {name}",
					"function_string": function,
					"queue_name": "default",
				},
			)
		for name, row in rows.items():
			hour_text = row["hour"]
			site2.insert(
				"tabBTU Task Schedule",
				std
				| {
					"name": name,
					"task": task,
					"enabled": 1,
					"queue_name": "default",
					"run_frequency": row["run_frequency"],
					"cron_string": row["cron_string"],
					"minute": row["minute"],
					"hour": int(hour_text) if hour_text and hour_text.isdigit() else 0,
					"day_of_week": row["day_of_week"],
					"day_of_month": row["day_of_month"],
					"month": row["month"],
					ORIGINAL_HOUR_COLUMN: hour_text,
					ORIGINAL_MARK_COLUMN: 1,
				},
			)
		site2.insert(
			"tabBTU Task Schedule",
			std
			| {
				"name": poller_schedule,
				"task": poller,
				"enabled": 1,
				"queue_name": "default",
				"run_frequency": "Cron Style",
				"cron_string": "* * * * *",
			},
		)
		# version 13: a recipient on the task itself
		site2.insert(
			"tabBTU Email Recipient",
			std
			| {
				"name": f"upg{tag.lower()}r",
				"parent": task,
				"parenttype": "BTU Task",
				"parentfield": "email_recipients",
				"idx": 1,
				"email_address": "upgrade-test-task@example.com",
				"email_on_error": 1,
			},
		)
		for field, value in ORIGINAL_CONFIG.items():
			site2.set_single(field, value)
		site2.set_single("path_to_btu_scheduler_uds", "/tmp/btu_scheduler.sock")
		if module_def_made:
			site2.insert(
				"tabModule Def", std | {"name": "btu_core", "module_name": "btu_core", "app_name": "btu"}
			)
		site2.insert(
			"tabReport",
			std
			| {
				"name": "BTU Scheduled Task Summary",
				"report_name": "BTU Scheduled Task Summary",
				"ref_doctype": "BTU Task Log",
				"is_standard": "Yes",
				"module": "BTU_Core",
				"report_type": "Query Report",
			},
		)
		site2.insert(
			"tabReport",
			std
			| {
				"name": "BTU Task Log Summary",
				"report_name": "BTU Task Log Summary",
				"ref_doctype": "BTU Task Log",
				"is_standard": "Yes",
				"module": "BTU_Core",
				"report_type": "Query Report",
			},
		)
		site2.insert(
			"tabReport",
			std
			| {
				"name": "Task Log Averages",
				"report_name": "Task Log Averages",
				"ref_doctype": "BTU Task Log",
				"is_standard": "Yes",
				"module": "BTU_Core",
				"report_type": "Query Report",
			},
		)
		site2.insert(
			"tabPage",
			std
			| {
				"name": "btu-redis-queue",
				"page_name": "BTU Redis Queue",
				"title": "Redis Queues",
				"module": "BTU_Core",
				"standard": "Yes",
			},
		)
		site2.insert(
			"tabWorkspace",
			std
			| {
				"name": "Automated Tasks",
				"label": "Automated Tasks",
				"title": "Automated Tasks",
				"module": "BTU_Core",
				"public": 1,
				"content": "[]",
			},
		)
		queue.hset(
			run_later_key,
			mapping={
				"uid": f"upgtest{tag.lower()}",
				"short_name": "upgrade test",
				"target_queue": "default",
				"not_before_time": "2031-01-01T00:00:00",
				"not_before_timestamp": 1924992000,
				"path_to_function": "btu.btu_core.sample_tasks.hello",
				"arguments": '{"name": "upgrade"}',
				"status": "pending",
				"unique_identifier": "",
			},
		)
		site2.run("DELETE FROM `tabPatch Log` WHERE patch IN %(p)s", {"p": PATCHES})

		# --- bench migrate -------------------------------------------------------------------------
		result = bench.bench("migrate", site=bench_config.site2, timeout=900)
		output = result.stdout + result.stderr
		assert "BTU upgrade:" in output, output[-3000:]
		print("\n".join(line for line in output.splitlines() if "BTU upgrade:" in line))

		# --- what it did ------------------------------------------------------------------------
		columns = {c["Field"] for c in site2.rows("SHOW COLUMNS FROM `tabBTU Task Schedule`")}
		assert not columns & {ORIGINAL_HOUR_COLUMN, ORIGINAL_MARK_COLUMN}, "the upgrade columns are dropped"
		new = {
			r["name"]: r
			for r in site2.rows(
				"SELECT * FROM `tabBTU Task Schedule` WHERE name LIKE %s", (f"TS-UPG{tag}-%",)
			)
		}
		for name, row in rows.items():
			assert f"{name}: " in output, (name, output[-3000:])
			try:
				CrateRule.parse(row["cron_string"])
			except DaemonPanic:
				assert name.endswith("-S") and new[name]["enabled"] == 0, new[name]
				continue
			assert new[name]["enabled"] == 1, new[name]
			assert new[name]["cron_timezone"], new[name]
			for probe in PROBES:
				expected = original_runs(row["cron_string"], daemon_zone, probe - timedelta(days=9), probe, 6)
				ours = next_fire_times(new[name]["cron_string"], new[name]["cron_timezone"], probe, 6)
				assert ours == expected, (name, row, new[name]["cron_string"], new[name]["cron_timezone"])
		assert new[f"TS-UPG{tag}-Y"]["month"] == "" and new[f"TS-UPG{tag}-Y"]["run_frequency"] == "Daily"
		assert new[poller_schedule]["enabled"] == 0, "the run-later poller's schedule is disabled"
		notes = site2.rows(
			"SELECT reference_name FROM tabComment WHERE reference_doctype = 'BTU Task Schedule' "
			"AND reference_name LIKE %s AND content LIKE %s",
			(f"TS-UPG{tag}-%", "%Upgraded from the original BTU%"),
		)
		assert {n["reference_name"] for n in notes} == set(rows)
		errors = {
			method for name, method in _upgrade_error_logs(site2).items() if name not in upgrade_errors_before
		}
		assert f"BTU upgrade: schedule TS-UPG{tag}-S needs your decision" in errors, errors
		assert (
			"BTU upgrade: pending run-later requests" in errors
			and "BTU upgrade: create BTU's Email Account" in errors
		)
		assert run_later_key in output
		recipients = site2.rows(
			"SELECT parent, email_address, email_on_error FROM `tabBTU Email Recipient` WHERE parenttype = 'BTU Task Schedule' AND parent LIKE %s",
			(f"TS-UPG{tag}-%",),
		)
		assert {r["parent"] for r in recipients} == set(rows) and all(r["email_on_error"] for r in recipients)
		for doctype, name in DESK_RECORDS:
			assert not site2.rows(f"SELECT name FROM `tab{doctype}` WHERE name = %s", (name,)), (
				doctype,
				name,
			)
		assert not site2.rows("SELECT name FROM `tabModule Def` WHERE name = 'btu_core'")
		assert site2.single("path_to_btu_scheduler_uds") == ""
		assert site2.single("email_subject_prefix").endswith("(UPGTEST)")

		# --- every migrated row saves in BTU's form and keeps its rule ----------------------------
		for name in (f"TS-UPG{tag}-W", f"TS-UPG{tag}-Y", f"TS-UPG{tag}-H", f"TS-UPG{tag}-C"):
			site2.run("UPDATE `tabBTU Task Schedule` SET enabled = 0 WHERE name = %s", (name,))
			bench.bench(
				"execute",
				"frappe.client.set_value",
				"--kwargs",
				repr(
					{
						"doctype": "BTU Task Schedule",
						"name": name,
						"fieldname": "queue_name",
						"value": "default",
					}
				),
				site=bench_config.site2,
			)
			after = site2.rows(
				"SELECT cron_string, cron_timezone FROM `tabBTU Task Schedule` WHERE name = %s", (name,)
			)[0]
			assert (after["cron_string"], after["cron_timezone"]) == (
				new[name]["cron_string"],
				new[name]["cron_timezone"],
			)
	finally:
		names = [*rows, poller_schedule]
		site2.run("UPDATE `tabBTU Task Schedule` SET enabled = 0 WHERE name IN %(n)s", {"n": names})
		for name in names:
			protocol.cancel_task_schedule(bench.socket_path, name, bench_config.site2, timeout=2.0)
		site2.run("DELETE FROM `tabBTU Email Recipient` WHERE parent IN %(n)s", {"n": [*names, task, poller]})
		site2.run(
			"DELETE FROM tabComment WHERE reference_doctype = 'BTU Task Schedule' AND reference_name IN %(n)s",
			{"n": names},
		)
		site2.run("DELETE FROM tabVersion WHERE docname IN %(n)s", {"n": names})
		site2.run("DELETE FROM `tabBTU Task Log` WHERE task IN %(t)s", {"t": [task, poller]})
		site2.run("DELETE FROM `tabBTU Task Schedule` WHERE name IN %(n)s", {"n": names})
		site2.run("DELETE FROM `tabBTU Task` WHERE name IN %(t)s", {"t": [task, poller]})
		made = sorted(set(_upgrade_error_logs(site2)) - set(upgrade_errors_before))
		if made:
			site2.run("DELETE FROM `tabError Log` WHERE name IN %(n)s", {"n": made})
		for doctype, name in DESK_RECORDS:
			site2.run(f"DELETE FROM `tab{doctype}` WHERE name = %s AND module = 'BTU_Core'", (name,))
		if module_def_made:
			site2.run("DELETE FROM `tabModule Def` WHERE name = 'btu_core'")
		for field in ORIGINAL_CONFIG:
			site2.set_single(field, None)
		for field, value in saved.items():
			site2.set_single(field, value)
		site2.run(
			f"ALTER TABLE `tabBTU Task Schedule` DROP COLUMN IF EXISTS `{ORIGINAL_HOUR_COLUMN}`, "
			f"DROP COLUMN IF EXISTS `{ORIGINAL_MARK_COLUMN}`"
		)
		present = {
			r["patch"]
			for r in site2.rows("SELECT patch FROM `tabPatch Log` WHERE patch IN %(p)s", {"p": PATCHES})
		}
		for entry in patch_log:
			if entry["patch"] not in present:
				site2.insert("tabPatch Log", entry)
		queue.delete(run_later_key)
		queue.close()
		bench.bench("clear-cache", site=bench_config.site2)
