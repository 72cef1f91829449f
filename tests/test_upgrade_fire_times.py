"""Upgrading from the original BTU keeps every schedule firing at the instants the original daemon used.

The test builds the original's `tabBTU Task Schedule` in its own MariaDB database (field list of
Datahenge/btu version-15, checked against the original's DocType JSON when a copy of that
repository is at hand), stores rows the way the original's form stored them (its cron builder
modelled below: System Settings zone -> UTC with the offset of the saving instant, weekdays
Sun=0..Sat=6, day of month dropped), runs the pre-model-sync SQL, model sync's ALTER and the
patch's per-row decision, then compares BTU's next fire times with an independent model of the
original daemon (cron crate 0.9: weekdays 1 = Sunday; hour '*' read on the UTC clock, any other
rule taken from the UTC clock and re-read in cron_time_zone; re-computed from "now" after each
run). Nothing here calls the module under test to decide what the original did.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pymysql
import pytest

from btu.btu_core.legacy_schedules import (
	ORIGINAL_HOUR_COLUMN,
	OriginalSchedule,
	migrate_schedule,
	original_daemon_zone,
	prepare_statements,
)
from btu.contracts.schedule_rules import frequency_to_cron, next_fire_times
from btu.scheduler_daemon.schema import DOCTYPE_DIR, SINGLES_SQL, create_table_sql

from .services import MARIADB

UTC = timezone.utc

# The original (version-15 and version-13) BTU Task Schedule's data fields: (fieldname, fieldtype, default).
ORIGINAL_SCHEDULE_FIELDS = [
	("task", "Link", None),
	("task_description", "Data", "task.desc_short"),
	("enabled", "Check", "0"),
	("queue_name", "Link", "default"),
	("redis_job_id", "Data", None),
	("argument_overrides", "Long Text", None),
	("cron_string", "Data", None),
	("schedule_description", "Data", None),
	("run_frequency", "Select", "Cron Style"),
	("day_of_week", "Select", None),
	("day_of_month", "Int", None),
	("month", "Select", None),
	("hour", "Data", None),
	("minute", "Int", None),
]
# A git copy of the original repository (Datahenge/btu), e.g. a bare clone: its git directory.
ORIGINAL_REPO = Path(os.environ["BTU_ORIGINAL_REPO"]) if os.environ.get("BTU_ORIGINAL_REPO") else None


def original_doctype() -> dict:
	return {
		"name": "BTU Task Schedule",
		"fields": [{"fieldname": n, "fieldtype": t, "default": d} for n, t, d in ORIGINAL_SCHEDULE_FIELDS],
	}


# --- the original form's cron builder, modelled from its code --------------------------------------

FORM_WEEKDAY = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}
# The original's validate_cron_string: a regular expression matched at the start only.
FORM_CRON_CHECK = re.compile(
	r"(\*(/[0-5]?\d)?|[0-5]?\d)\s+(\*|[01]?\d|2[0-3])\s+(\*|0?[1-9]|[12]\d|3[01])\s+(\*|0?[1-9]|1[012])"
	r"\s+(\*|[0-6](-[0-6])?)"
)


def form_save(frequency, system_zone, saved_at, minute=None, hour=None, weekday=None, cron=None):
	"""The row the original form wrote for these inputs (a Desk save that succeeded)."""
	day_of_month = month = None
	if frequency == "Cron Style":
		weekday = hour = minute = None
	elif frequency == "Hourly":
		weekday = hour = None
	elif frequency == "Daily":
		weekday = None
	if frequency != "Cron Style":
		local_now = saved_at.astimezone(ZoneInfo(system_zone))
		offset = local_now.utcoffset()  # of the saving instant, as its pytz tzinfo held it
		wall = datetime(local_now.year, local_now.month, local_now.day, int(hour or 0), minute or 0)
		utc = wall - offset
		parts = [
			"*" if minute is None else str(utc.minute),
			"*" if not hour else str(utc.hour),
			"*",  # a day of month made it raise TypeError instead
			"*" if month is None else month,
			"*" if not weekday else str(FORM_WEEKDAY[weekday[:3]]),
		]
		cron = " ".join(parts)
	assert FORM_CRON_CHECK.match(cron), f"the original form would have refused {cron!r}"
	return {
		"run_frequency": frequency,
		"cron_string": cron,
		"minute": minute or 0,  # Int: None is stored as 0
		"hour": hour,  # Data: NULL stays NULL
		"day_of_week": weekday,
		"day_of_month": day_of_month or 0,
		"month": month,
	}


# --- the original daemon, modelled from its code -------------------------------------------------


class DaemonPanic(Exception):
	pass


CRATE_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
CRATE_DAYS = {d: i + 1 for i, d in enumerate("sun mon tue wed thu fri sat".split())}


def crate_values(text, low, high, names=None):
	values = set()
	for item in text.split(","):
		base, _, step = item.partition("/")
		if base in ("*", "?"):
			start, end = low, high
		elif "-" in base:
			a, b = base.split("-")
			start, end = (
				(int(a) if a.isdigit() else names[a.lower()]),
				(int(b) if b.isdigit() else names[b.lower()]),
			)
		else:
			start = int(base) if base.isdigit() else names[base.lower()]
			end = high if step else start
		values.update(range(start, end + 1, int(step) if step else 1))
	if not all(low <= v <= high for v in values):
		raise DaemonPanic(f"{text!r} out of {low}-{high}")
	return values


@dataclass
class CrateRule:
	minutes: set
	hours: set
	doms: set
	months: set
	dows: set  # 1 = Sunday
	years: set
	utc_clock: bool

	@classmethod
	def parse(cls, stored):
		parts = stored.split()
		if len(parts) == 5:
			parts = ["0"] + parts + ["*"]
		elif len(parts) == 6:
			parts = ["0"] + parts
		assert parts[0] == "0", "the rules of this test have second 0"
		return cls(
			crate_values(parts[1], 0, 59),
			crate_values(parts[2], 0, 23),
			crate_values(parts[3], 1, 31),
			crate_values(parts[4], 1, 12, CRATE_MONTHS),
			crate_values(parts[5], 1, 7, CRATE_DAYS),
			crate_values(parts[6], 1970, 2100),
			parts[2] == "*",
		)

	def matches(self, wall):
		return (
			wall.minute in self.minutes
			and wall.hour in self.hours
			and wall.day in self.doms
			and wall.month in self.months
			and (wall.isoweekday() % 7) + 1 in self.dows
			and wall.year in self.years
		)

	def next_utc_wall(self, after):
		"""The first UTC-clock match strictly after ``after`` (naive UTC), minute by minute."""
		wall = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
		for _ in range(800 * 1440):
			if not (
				wall.day in self.doms
				and wall.month in self.months
				and (wall.isoweekday() % 7) + 1 in self.dows
			):
				wall = (wall + timedelta(days=1)).replace(hour=0, minute=0)
				continue
			if self.matches(wall):
				return wall
			wall += timedelta(minutes=1)
		return None


def reread_in_zone(wall, zone):
	"""chrono's from_local_datetime(..).unwrap(): one instant, or a panic when skipped or repeated."""
	first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
	if first.utcoffset() != second.utcoffset():
		raise DaemonPanic(f"{wall} is skipped or repeated in {zone}")
	return first.astimezone(UTC)


def original_runs(stored, zone_name, start, after, count):
	"""The distinct instants the original daemon, running from ``start``, enqueued after ``after``."""
	rule = CrateRule.parse(stored)
	zone = ZoneInfo(zone_name)

	def compute(now):
		match = rule.next_utc_wall(now.astimezone(UTC).replace(tzinfo=None))
		if match is None:
			return None, None
		if rule.utc_clock:
			return match.replace(tzinfo=UTC), match.replace(tzinfo=UTC)
		return reread_in_zone(match, zone), match.replace(tzinfo=UTC)

	now = start
	score, _ = compute(now)
	runs = set()
	while score is not None and len(runs) < count:
		now = max(now, score)
		if score > after:
			runs.add(score)
		score, match = compute(now)
		while score is not None and score <= now:
			# East of UTC: a fire time already past, enqueued at once (again, or late), at every
			# polling interval until the clock passes the UTC-clock match it came from.
			if score > after:
				runs.add(score)
			now = match
			score, match = compute(now)
	return sorted(runs)[:count]


# --- the test ----------------------------------------------------------------------------------


@pytest.fixture
def original_db(mariadb_available):
	name = f"btu_test_orig_{os.urandom(5).hex()}"
	conn = pymysql.connect(**MARIADB, autocommit=True, cursorclass=pymysql.cursors.DictCursor)
	with conn.cursor() as cur:
		cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
		cur.execute(f"USE `{name}`")
		cur.execute(SINGLES_SQL)
		cur.execute(create_table_sql(original_doctype()))
	try:
		yield conn
	finally:
		with conn.cursor() as cur:
			cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
		conn.close()


def insert(conn, name, row, enabled=1):
	columns = ["name", "creation", "modified", "owner", "modified_by", "task", "enabled", *row]
	values = [name, "2025-01-01", "2025-01-01", "Administrator", "Administrator", "BTU-00001", enabled]
	values += list(row.values())
	with conn.cursor() as cur:
		cur.execute(
			f"INSERT INTO `tabBTU Task Schedule` ({', '.join(f'`{c}`' for c in columns)}) "
			f"VALUES ({', '.join(['%s'] * len(values))})",
			values,
		)


def model_sync(conn):
	"""The ALTER statements Frappe v15's model sync runs for BTU's BTU Task Schedule here."""
	ours = json.loads((DOCTYPE_DIR / "btu_task_schedule" / "btu_task_schedule.json").read_text())
	types = {f["fieldname"]: f["fieldtype"] for f in ours["fields"]}
	assert types["hour"] == "Int" and types["cron_timezone"] == "Autocomplete"
	with conn.cursor() as cur:
		cur.execute(
			"ALTER TABLE `tabBTU Task Schedule` MODIFY `hour` int(11) not null default 0, "
			"MODIFY `schedule_description` text, MODIFY `enabled` int(1) not null default 1, "
			"ADD COLUMN `cron_timezone` varchar(140)"
		)


def run_patch_loop(conn, daemon_zone, system_zone):
	"""What btu.patches.v1_0.migrate_original_schedules does per row, with plain SQL."""
	results = {}
	with conn.cursor() as cur:
		cur.execute("SELECT * FROM `tabBTU Task Schedule` ORDER BY name")
		for row in cur.fetchall():
			migration = migrate_schedule(OriginalSchedule.from_row(row), daemon_zone, system_zone)
			sets = ", ".join(f"`{k}` = %s" for k in migration.values)
			cur.execute(
				f"UPDATE `tabBTU Task Schedule` SET {sets} WHERE name = %s",
				[*migration.values.values(), row["name"]],
			)
			results[row["name"]] = migration
		cur.execute("SELECT * FROM `tabBTU Task Schedule` ORDER BY name")
		stored = {row["name"]: row for row in cur.fetchall()}
	return results, stored


SUMMER = datetime(2025, 7, 10, 18, 0, tzinfo=UTC)
WINTER = datetime(2025, 1, 10, 18, 0, tzinfo=UTC)
# Moments to look ahead from, around both DST changes of the US and of the EU.
PROBES = [
	datetime(2026, 3, 1, tzinfo=UTC),
	datetime(2026, 3, 25, tzinfo=UTC),
	datetime(2026, 10, 20, tzinfo=UTC),
]


def form_rows(system_zone):
	rows = {}
	for label, saved in (("s", SUMMER), ("w", WINTER)):
		rows[f"TS-H{label}"] = form_save("Hourly", system_zone, saved, minute=15)
		rows[f"TS-D{label}"] = form_save("Daily", system_zone, saved, minute=30, hour="9")
		rows[f"TS-E{label}"] = form_save("Daily", system_zone, saved, minute=45, hour="20")
		rows[f"TS-W{label}"] = form_save("Weekly", system_zone, saved, minute=0, hour="20", weekday="Monday")
		rows[f"TS-X{label}"] = form_save(
			"Weekly", system_zone, saved, minute=0, hour="8", weekday="Wednesday"
		)
	rows["TS-S"] = form_save("Weekly", system_zone, SUMMER, minute=0, hour="10", weekday="Sunday")
	rows["TS-C1"] = form_save("Cron Style", system_zone, SUMMER, cron="*/15 * * * *")
	rows["TS-C2"] = form_save("Cron Style", system_zone, SUMMER, cron="0 9 * * 1-5")
	# The form's check read only the start of the day-of-week field, so these passed too.
	rows["TS-C3"] = form_save("Cron Style", system_zone, SUMMER, cron="0 8 * * 2/2")
	rows["TS-C7"] = form_save("Cron Style", system_zone, SUMMER, cron="30 6 * * 1,7")
	rows["TS-C4"] = form_save("Cron Style", system_zone, SUMMER, cron="0 9 1 * *")
	rows["TS-C5"] = form_save("Cron Style", system_zone, SUMMER, cron="*/15 9 * * *")
	rows["TS-C6"] = form_save("Cron Style", system_zone, SUMMER, cron="30 2 * * *")
	# Monthly and Yearly: the original form could not save them (TypeError); these rows were
	# saved as Daily and then changed outside the form, as such rows exist.
	monthly = form_save("Daily", system_zone, SUMMER, minute=0, hour="7")
	rows["TS-M"] = monthly | {"run_frequency": "Monthly", "day_of_month": 15}
	rows["TS-Y"] = monthly | {"run_frequency": "Yearly", "day_of_month": 15, "month": "JAN"}
	return rows


CASES = [
	# (System Settings zone, BTU Configuration's cron_time_zone: None = no tabSingles row)
	("America/Los_Angeles", "UTC"),  # what the original's docs told users to set
	("Europe/Berlin", "UTC"),
	("Asia/Kolkata", "UTC"),
	("America/Los_Angeles", "America/Los_Angeles"),  # not what the docs said, but possible
	("America/Los_Angeles", "Europe/Berlin"),
	("Asia/Kolkata", "Asia/Kolkata"),  # half-hour offset: hour "*" rules were read on the UTC clock
	("Europe/Berlin", None),
]


@pytest.mark.parametrize(("system_zone", "daemon_zone_name"), CASES)
def test_next_fire_times_are_the_original_daemons(original_db, system_zone, daemon_zone_name):
	rows = form_rows(system_zone)
	for name, row in rows.items():
		insert(original_db, name, row)
	with original_db.cursor() as cur:
		if daemon_zone_name is not None:
			cur.execute(
				"INSERT INTO tabSingles (doctype, field, value) VALUES ('BTU Configuration', 'cron_time_zone', %s)",
				(daemon_zone_name,),
			)
		for statement in prepare_statements():
			cur.execute(statement)
		cur.execute(
			"SELECT value FROM tabSingles WHERE doctype = 'BTU Configuration' AND field = 'cron_time_zone'"
		)
		found = cur.fetchone()
	model_sync(original_db)
	daemon = original_daemon_zone(found["value"] if found else None, present=found is not None)
	assert daemon.ran is (daemon_zone_name is not None)
	results, stored = run_patch_loop(original_db, daemon, system_zone)

	ours_options = json.loads((DOCTYPE_DIR / "btu_task_schedule" / "btu_task_schedule.json").read_text())
	options = {f["fieldname"]: f.get("options", "").split("\n") for f in ours_options["fields"]}
	read_zone = daemon_zone_name or "UTC"
	for name, row in rows.items():
		new = stored[name]
		migration = results[name]
		report = " ".join(migration.lines)
		# Every migrated row saves in BTU's form unchanged: valid options, fields that give its rule.
		assert new["month"] in options["month"] and new["day_of_week"] in options["day_of_week"], name
		if new["run_frequency"] != "Cron Style":
			again = frequency_to_cron(
				new["run_frequency"],
				minute=new["minute"],
				hour=new["hour"],
				day_of_week=new["day_of_week"] or None,
				day_of_month=new["day_of_month"] or None,
				month=new["month"] or None,
			)
			assert again == new["cron_string"], (name, again, new["cron_string"])
		try:
			CrateRule.parse(row["cron_string"])
		except DaemonPanic:
			# Sunday (0): the original daemon's cron library refused it and the daemon panicked.
			assert name == "TS-S" and migration.attention and new["enabled"] == 0, (name, report)
			assert "panicked" in report
			assert new["cron_string"] == "0 10 * * 0" and new["cron_timezone"] == system_zone
			continue
		assert new["enabled"] == 1, (name, report)
		for probe in PROBES:
			try:
				expected = original_runs(row["cron_string"], read_zone, probe - timedelta(days=9), probe, 6)
			except DaemonPanic:
				# A wall time a DST change skips or repeats: the original daemon panicked there.
				assert name == "TS-C6" and "panic" in report, (name, report)
				continue
			ours = next_fire_times(new["cron_string"], new["cron_timezone"], probe, 6)
			if name == "TS-C5" and read_zone == "America/Los_Angeles":
				# West of UTC it skipped the hours after each run; BTU runs every one and says so.
				assert set(expected) <= set(
					next_fire_times(new["cron_string"], new["cron_timezone"], probe, 60)
				)
				assert "skipped" in report, report
				continue
			assert ours == expected, (
				name,
				row["cron_string"],
				new["cron_string"],
				new["cron_timezone"],
				probe,
			)
		if not daemon.ran:
			assert "ran none" in report, report


def test_the_report_explains_the_original_forms_differences(original_db):
	system_zone = "America/Los_Angeles"
	rows = form_rows(system_zone)
	daemon = original_daemon_zone("UTC")
	lines = {
		name: " ".join(
			migrate_schedule(OriginalSchedule.from_row(r | {"name": name}), daemon, system_zone).lines
		)
		for name, r in rows.items()
	}
	# Saved in summer: 09:30 PDT became 16:30 UTC, which it kept all year (08:30 PST in winter).
	assert rows["TS-Ds"]["cron_string"] == "30 16 * * *"
	assert "did not follow that local time through daylight saving" in lines["TS-Ds"]
	assert "Daily at 09:30 America/Los_Angeles" in lines["TS-Ds"]
	# Monday 20:00 PDT -> '0 3 * * 1': Sunday 03:00 UTC (weekday 1 = Sunday, midnight crossed).
	assert rows["TS-Ws"]["cron_string"] == "0 3 * * 1"
	assert "1 = Sunday" in lines["TS-Ws"] and "crossed midnight" in lines["TS-Ws"]
	assert "Monthly on day 15" in lines["TS-M"] and "could not save a Monthly" in lines["TS-M"]
	assert "'JAN'" in lines["TS-Y"] and "could not save a Yearly" in lines["TS-Y"]
	assert "panicked" in lines["TS-S"]
	assert "1 = Sunday" in lines["TS-C2"]
	# 6 fields were 5 + a year for the original daemon; a year that is over leaves nothing to run.
	over = migrate_schedule(
		OriginalSchedule("TS-O", "Cron Style", "0 9 * * * 2020", enabled=1), daemon, system_zone
	)
	assert over.attention and over.values["enabled"] == 0 and "fires no more" in over.lines[0], over.lines
	later = migrate_schedule(
		OriginalSchedule("TS-L", "Cron Style", "0 9 * * * 2031", enabled=1), daemon, system_zone
	)
	assert later.values["cron_string"] == "0 0 9 * * * 2031" and later.values["cron_timezone"] == "UTC"
	both = migrate_schedule(
		OriginalSchedule("TS-B", "Cron Style", "0 9 1 * 2", enabled=1), daemon, system_zone
	)
	assert both.attention and both.values["enabled"] == 0 and "cannot express" in both.lines[0]


def test_model_sync_fails_on_original_rows_without_the_pre_model_sync_statements(original_db):
	"""Why the pre-model-sync patch exists: `hour` (Data -> Int) holds NULL for Hourly and Cron Style."""
	for name, row in form_rows("Europe/Berlin").items():
		insert(original_db, name, row)
	with pytest.raises(pymysql.MySQLError, match="Data truncated for column 'hour'|Incorrect integer value"):
		model_sync(original_db)
	with original_db.cursor() as cur:
		for statement in prepare_statements():
			cur.execute(statement)
		cur.execute(f"SELECT name, hour, `{ORIGINAL_HOUR_COLUMN}` AS kept FROM `tabBTU Task Schedule`")
		kept = {r["name"]: (r["hour"], r["kept"]) for r in cur.fetchall()}
	assert kept["TS-Hs"] == ("0", None) and kept["TS-Ds"] == ("9", "9")
	model_sync(original_db)


def test_field_list_is_the_originals():
	"""The field list above against the original's own DocType JSON (when a copy is at hand)."""
	if ORIGINAL_REPO is None or not (ORIGINAL_REPO / "HEAD").exists():
		pytest.skip(
			"needs a git copy of the original BTU repository (Datahenge/btu, branches version-15 and "
			"version-13): set BTU_ORIGINAL_REPO to its git directory"
			+ (f" ({ORIGINAL_REPO} has no HEAD)" if ORIGINAL_REPO is not None else "")
		)
	for branch in ("version-15", "version-13"):
		text = subprocess.run(
			[
				"git",
				f"--git-dir={ORIGINAL_REPO}",
				"show",
				f"{branch}:btu/btu_core/doctype/btu_task_schedule/btu_task_schedule.json",
			],
			check=True,
			capture_output=True,
			text=True,
		).stdout
		fields = {
			f["fieldname"]: (f["fieldtype"], f.get("default"))
			for f in json.loads(text)["fields"]
			if f["fieldtype"] not in ("Section Break", "Column Break", "HTML", "Button", "Table")
		}
		assert fields == {n: (t, d) for n, t, d in ORIGINAL_SCHEDULE_FIELDS}, branch
