"""Upgrade from the original BTU: keep every schedule firing at the instants the original daemon used.

Frappe-free, so the decision can be tested against real tables without a bench; the patch
``btu.patches.v1_0.migrate_original_schedules`` is a thin loop over rows around
:func:`migrate_schedule`.

What the original did (Datahenge/btu version-12..15 and its Rust btu_scheduler_daemon 0.3.x):

* **The form.** Hourly/Daily/Weekly fields became a cron string converted from the System
  Settings zone to UTC with the offset of the day the schedule was saved: minute and hour of
  "today at HH:MM local" in UTC. The weekday was written as Sun=0 .. Sat=6 and never moved when
  the conversion crossed midnight. The day of month never reached the string: a Monthly or
  Yearly save failed (``TypeError: sequence item 2``), so such rows only exist when written
  outside the form, and hold whatever cron string they had. A Desk-made Yearly row also carried
  the month as ``JAN`` .. ``DEC``.
* **The daemon** read ``cron_string`` and BTU Configuration's ``cron_time_zone`` (INNER JOIN on
  tabSingles: no such row, no run at all). It padded 5 fields to 7 (``0 <cron> *``) and 6 fields
  as 5 + a year. Its cron library (the ``cron`` crate 0.9) numbers weekdays 1 = Sunday .. 7 =
  Saturday, ANDs day of month with day of week, and refuses 0 (so a Sunday schedule, stored as
  0, made the daemon panic). When the hour field is literally ``*`` the rule is read on the UTC
  clock whatever the zone; otherwise on the wall clock of ``cron_time_zone`` (each UTC-clock
  match re-read as local time). ``time_zone_string`` of its TOML only formatted log lines.

So the instants a schedule fired at are: its stored cron string, read with those semantics, in
UTC when its hour field is ``*`` and else in ``cron_time_zone``. :func:`migrate_schedule` writes
the same rule in BTU's own (ISC cron) terms with an explicit zone, keeps the frequency fields
when they can say it, and explains every difference from what the original form showed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from btu.contracts.schedule_rules import (
	MONTHS,
	WEEKDAYS,
	CronError,
	TimeZoneError,
	describe_cron,
	frequency_to_cron,
	next_fire_times,
	normalize_cron,
	validate_timezone,
)

# The column the pre-model-sync patch keeps the original (text) hour in, while model sync turns
# `hour` from Data (varchar) into Int: MariaDB's strict mode refuses that ALTER for NULL or ''
# ("Data truncated for column 'hour'"), which every Hourly and Cron Style row of the original holds.
ORIGINAL_HOUR_COLUMN = "_btu_original_hour"
# Set to 1 on every row of the original's table by the same patch: the rows to migrate.
ORIGINAL_MARK_COLUMN = "_btu_original_row"
SCHEDULE_TABLE = "tabBTU Task Schedule"

# The original form's weekday numbers (Python side), which its daemon's cron library read as 1 = Sunday.
ORIGINAL_FORM_WEEKDAY = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}
ORIGINAL_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def prepare_statements(table: str = SCHEDULE_TABLE) -> list[str]:
	"""SQL the pre-model-sync patch runs on an original table (one without ``cron_timezone``):
	mark its rows, keep their text hour aside, then leave in ``hour`` only values an Int column takes."""
	hour, mark = ORIGINAL_HOUR_COLUMN, ORIGINAL_MARK_COLUMN
	return [
		f"ALTER TABLE `{table}` ADD COLUMN IF NOT EXISTS `{hour}` varchar(140) DEFAULT NULL, "
		f"ADD COLUMN IF NOT EXISTS `{mark}` int(1) NOT NULL DEFAULT 0",
		f"UPDATE `{table}` SET `{hour}` = `hour`, `{mark}` = 1",
		f"UPDATE `{table}` SET `hour` = CASE WHEN TRIM(`hour`) REGEXP '^[0-9]{{1,9}}$' "
		"THEN TRIM(`hour`) ELSE '0' END",
	]


def cleanup_statements(table: str = SCHEDULE_TABLE) -> list[str]:
	"""SQL that drops the two columns once every marked row is migrated."""
	return [
		f"ALTER TABLE `{table}` DROP COLUMN IF EXISTS `{ORIGINAL_HOUR_COLUMN}`, "
		f"DROP COLUMN IF EXISTS `{ORIGINAL_MARK_COLUMN}`"
	]


# --- the original daemon's reading of a cron string (cron crate 0.9 semantics) -----------------


class OriginalRuleError(ValueError):
	"""A cron string the original daemon could not turn into fire times.

	``panicked`` is True when the daemon's scheduling thread panicked on it (an unwrap on the cron
	library's error), which stopped every schedule of that daemon, not just this one.
	"""

	def __init__(self, message: str, panicked: bool):
		super().__init__(message)
		self.panicked = panicked


@dataclass(frozen=True)
class _Unit:
	name: str
	low: int
	high: int
	names: dict[str, int] = field(default_factory=dict)
	any_allowed: bool = False  # '?' (days only)


_CRATE_MONTHS = {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS)} | {
	m.lower(): i + 1 for i, m in enumerate(MONTHS)
}
_CRATE_DAYS = {d[:3].lower(): i + 1 for i, d in enumerate(WEEKDAYS)} | {
	d.lower(): i + 1 for i, d in enumerate(WEEKDAYS)
}
_CRATE_DAYS |= {"tues": 3, "thurs": 5}
_UNITS = (
	_Unit("seconds", 0, 59),
	_Unit("minutes", 0, 59),
	_Unit("hours", 0, 23),
	_Unit("days of month", 1, 31, any_allowed=True),
	_Unit("months", 1, 12, _CRATE_MONTHS),
	_Unit("days of week", 1, 7, _CRATE_DAYS, any_allowed=True),
	_Unit("years", 1970, 2100),
)
_NUMBER = re.compile(r"[0-9]+$")
_NAME = re.compile(r"[A-Za-z]+$")


def _crate_ordinal(text: str, unit: _Unit, whole: str) -> int:
	if _NUMBER.match(text):
		return int(text)
	if _NAME.match(text):
		if not unit.names:
			raise OriginalRuleError(f"{unit.name} take no names ({whole!r})", True)
		value = unit.names.get(text.lower())
		if value is None:
			raise OriginalRuleError(f"{text!r} is not a name of {unit.name}", True)
		return value
	raise OriginalRuleError(f"{text!r} is not a value of {unit.name}", True)


def _crate_specifier(text: str, unit: _Unit, whole: str) -> list[int]:
	if text == "*" or (text == "?" and unit.any_allowed):
		return list(range(unit.low, unit.high + 1))
	if "-" in text:
		start_text, _, end_text = text.partition("-")
		start, end = _crate_ordinal(start_text, unit, whole), _crate_ordinal(end_text, unit, whole)
		if not (unit.low <= start <= end <= unit.high):
			raise OriginalRuleError(f"invalid range for {unit.name}: {text}", True)
		return list(range(start, end + 1))
	return [_crate_ordinal(text, unit, whole)]


def _crate_field(text: str, unit: _Unit) -> frozenset[int]:
	values: set[int] = set()
	for part in text.split(","):
		if not part:
			raise OriginalRuleError(f"empty item in {unit.name} {text!r}", True)
		if "/" in part:
			start_text, _, step_text = part.partition("/")
			if not _NUMBER.match(step_text):
				raise OriginalRuleError(f"step {step_text!r} of {unit.name} is not a number", True)
			step = int(step_text)
			if step == 0:
				raise OriginalRuleError(f"step 0 in {unit.name} {text!r}", True)
			if _NUMBER.match(start_text):  # 'a/s' = a..max every s
				start = int(start_text)
				if not unit.low <= start <= unit.high:
					raise OriginalRuleError(f"{unit.name} value {start} is out of range", True)
				base = list(range(start, unit.high + 1))
			else:
				base = _crate_specifier(start_text, unit, text)
			values.update(base[::step])
		else:
			values.update(_crate_specifier(part, unit, text))
	for value in values:
		if not unit.low <= value <= unit.high:
			raise OriginalRuleError(
				f"{unit.name} value {value} is outside {unit.low}-{unit.high} ({text!r})", True
			)
	return frozenset(values)


@dataclass(frozen=True)
class OriginalRule:
	"""A cron string as the original daemon read it: one value set per unit (weekdays 1 = Sunday)."""

	stored: str
	seconds: frozenset[int]
	minutes: frozenset[int]
	hours: frozenset[int]
	days_of_month: frozenset[int]
	months: frozenset[int]
	days_of_week: frozenset[int]  # cron crate ordinals: 1 = Sunday .. 7 = Saturday
	years: frozenset[int]
	utc_clock: bool  # hour field literally '*': read on the UTC clock, whatever the zone
	texts: tuple[str, ...]  # the seven fields as the daemon split them


def read_original_rule(stored: str | None) -> OriginalRule:
	"""The original daemon's reading of ``stored``; OriginalRuleError when it had none."""
	text = stored or ""
	count = len(text.split())
	if count == 5:
		padded = f"0 {text} *"
	elif count == 6:
		padded = f"0 {text}"
	elif count == 7:
		padded = text
	else:
		raise OriginalRuleError(
			f"it has {count} fields; the original daemon took 5 to 7 and never ran it", False
		)
	pieces = padded.split(" ")  # the daemon split on single spaces
	if len(pieces) < 7:
		raise OriginalRuleError("its fields are not separated by single spaces", True)
	texts = tuple(pieces[:7])
	fields = " ".join(texts).split()  # what its cron library then parsed
	if len(fields) not in (6, 7):
		raise OriginalRuleError(f"its cron library could not read {' '.join(fields)!r}", True)
	sets = [_crate_field(value, unit) for value, unit in zip(fields, _UNITS)]
	if len(sets) == 6:
		sets.append(frozenset(range(1970, 2101)))
	return OriginalRule(text, *sets, utc_clock=texts[2] == "*", texts=texts)


# --- BTU's cron text for the same sets -----------------------------------------------------------


def _isc_field(values: frozenset[int], low: int, high: int, star: bool = True) -> str:
	"""ISC text for a value set; '*' forms only where the original field was one (``star``), since
	BTU reads a rule whose minute or hour starts with '*' with the wall clock's rhythm over DST."""
	ordered = sorted(values)
	if star and ordered == list(range(low, high + 1)):
		return "*"
	for step in range(2, (high - low) // 2 + 2):
		if star and ordered == list(range(low, high + 1, step)):
			return f"*/{step}"
	parts, run = [], [ordered[0]]
	for value in ordered[1:]:
		if value == run[-1] + 1:
			run.append(value)
			continue
		parts.append(run)
		run = [value]
	parts.append(run)
	return ",".join(f"{r[0]}-{r[-1]}" if len(r) >= 3 else ",".join(map(str, r)) for r in parts)


@dataclass(frozen=True)
class Translation:
	cron: str  # BTU (ISC) cron string with the same fire times
	zone: str
	notes: tuple[str, ...]


class NotExpressible(ValueError):
	"""The original's rule has no ISC cron equivalent (e.g. day of month AND day of week)."""


def translate_rule(rule: OriginalRule, daemon_zone: str) -> Translation:
	"""The ISC cron string and zone that fire at the instants the original daemon used."""
	notes = []
	if rule.days_of_month != frozenset(range(1, 32)) and rule.days_of_week != frozenset(range(1, 8)):
		raise NotExpressible(
			"it restricts both the day of month and the day of week; the original ran it only on days "
			"matching both, which a cron string (where either one is enough) cannot say"
		)
	weekdays = frozenset(d - 1 for d in rule.days_of_week)
	star = [text.startswith(("*", "?")) for text in rule.texts]
	fields = [
		_isc_field(rule.minutes, 0, 59, star[1]),
		_isc_field(rule.hours, 0, 23, star[2]),
		_isc_field(rule.days_of_month, 1, 31, True),
		_isc_field(rule.months, 1, 12, True),
		_isc_field(weekdays, 0, 6, True),
	]
	if rule.days_of_week != frozenset(range(1, 8)):
		ran = ", ".join(WEEKDAYS[d] for d in sorted(weekdays))
		notes.append(
			f"its cron library counts weekdays from 1 = Sunday, so day-of-week {rule.texts[5]!r} ran on {ran}"
		)
	if rule.seconds != frozenset({0}):
		fields.insert(0, _isc_field(rule.seconds, 0, 59, star[0]))
	years = rule.years & frozenset(range(1970, 2100))
	if years != frozenset(range(1970, 2100)):
		if len(fields) == 5:
			fields.insert(0, "0")
		fields.append(_isc_field(years, 1970, 2099) if years else "2099")
		if not years:
			raise NotExpressible("its years are over")
	cron = " ".join(fields)
	zone = "UTC" if rule.utc_clock else daemon_zone
	if rule.utc_clock and daemon_zone != "UTC":
		notes.append(
			"its hour field is '*', which the original daemon read on the UTC clock "
			f"whatever the Time Zone for Scheduling ({daemon_zone})"
		)
	return Translation(normalize_cron(cron), zone, tuple(notes))


def _wall_time_exists_once(zone: Any, day: datetime, minutes: int) -> bool:
	wall = day.replace(hour=minutes // 60, minute=minutes % 60, tzinfo=zone)
	first, second = wall.replace(fold=0), wall.replace(fold=1)
	if first.utcoffset() != second.utcoffset():
		return False  # repeated (fall back) or skipped (spring forward)
	return True


def _hours(minutes: int) -> str:
	return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")


def zone_quirk_notes(rule: OriginalRule, zone_name: str) -> list[str]:
	"""Where the original daemon's reading in a non-UTC zone differed from the zone's wall clock.

	It took the next match on the UTC clock after "now" and re-read it as local time, and
	chrono's ``from_local_datetime(..).unwrap()`` panicked on a wall time that a daylight-saving
	change skips or repeats.
	"""
	if rule.utc_clock or zone_name == "UTC":
		return []
	zone = validate_timezone(zone_name)
	year = 2030
	offsets = {
		int((datetime(year, month, 1, 12, tzinfo=zone).utcoffset() or timedelta(0)).total_seconds() // 60)
		for month in range(1, 13)
	}
	times = sorted(h * 60 + m for h in rule.hours for m in rule.minutes)
	notes = []
	if max(offsets) > 0:
		notes.append(
			f"in {zone_name} (east of UTC) the original daemon, for up to {_hours(max(offsets))} after each "
			"fire time, found that run (and the rule's next ones in that span) already due and enqueued "
			"them at every polling interval, late; BTU runs each fire time once, on time"
		)
	west = -min(offsets)
	if west > 0 and len(times) > 1:
		gaps = [b - a for a, b in zip(times, times[1:])] + [times[0] + 1440 - times[-1]]
		if min(gaps) < west:
			notes.append(
				f"in {zone_name} (west of UTC) the original daemon skipped the fire times that come less "
				f"than {_hours(west)} after the previous one (it looked for the next match on the UTC clock); "
				"BTU runs every one"
			)
	transitions = []
	day = datetime(year, 1, 1)
	while day.year == year:
		if datetime(year, day.month, day.day, tzinfo=zone).utcoffset() != (
			datetime(year, day.month, day.day, 23, 59, tzinfo=zone).utcoffset()
		):
			transitions.append(day)
		day += timedelta(days=1)
	if any(not _wall_time_exists_once(zone, t, m) for t in transitions for m in times):
		notes.append(
			f"on the days {zone_name} changes its clock, a fire time the change skips or repeats made the "
			"original daemon panic (and stop scheduling); BTU runs it once: at the first of a repeated "
			"time, right after the jump for a skipped one"
		)
	return notes


# --- one row ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginalSchedule:
	"""A BTU Task Schedule row as the original stored it."""

	name: str
	run_frequency: str | None
	cron_string: str | None
	minute: Any = None
	hour: Any = None  # text in the original (a Data field)
	day_of_week: str | None = None
	day_of_month: Any = None
	month: str | None = None
	enabled: Any = 1

	@classmethod
	def from_row(cls, row: dict[str, Any]) -> "OriginalSchedule":
		hour = row.get(ORIGINAL_HOUR_COLUMN, row.get("hour"))
		return cls(
			name=row["name"],
			run_frequency=row.get("run_frequency"),
			cron_string=row.get("cron_string"),
			minute=row.get("minute"),
			hour=hour,
			day_of_week=row.get("day_of_week"),
			day_of_month=row.get("day_of_month"),
			month=row.get("month"),
			enabled=row.get("enabled"),
		)


@dataclass(frozen=True)
class DaemonZone:
	"""The zone the original daemon read fixed-hour rules in, or why it read none."""

	zone: str  # what to read the rules in now
	ran: bool  # False: the original daemon ran no schedule of this site
	note: str


def original_daemon_zone(stored: str | None, present: bool = True) -> DaemonZone:
	"""From tabSingles' ``BTU Configuration`` / ``cron_time_zone`` (``present`` False: no such row)."""
	if not present:
		return DaemonZone(
			"UTC",
			False,
			"BTU Configuration had no Time Zone for Scheduling row, so the original daemon's query "
			"(INNER JOIN tabSingles) found no schedule and ran none; they are read in UTC, the "
			"default that setting showed, and run from now on",
		)
	text = (stored or "").strip()
	try:
		validate_timezone(text)
	except TimeZoneError:
		return DaemonZone(
			"UTC",
			False,
			f"BTU Configuration's Time Zone for Scheduling is {text!r}, which the original daemon could "
			"not read (it stopped scheduling); they are read in UTC and run from now on",
		)
	return DaemonZone(text, True, f"the original daemon read them in {text} (BTU Configuration)")


@dataclass
class ScheduleMigration:
	name: str
	values: dict[str, Any]  # the columns to write
	lines: list[str]  # what was done and why, for the migrate output and the schedule's timeline
	attention: bool = False  # the owner must decide something (also logged as an error)


def _int(value: Any) -> int | None:
	try:
		return int(str(value).strip())
	except (TypeError, ValueError):
		return None


def _month_name(value: Any) -> str:
	text = str(value or "").strip()
	if not text:
		return ""
	for index, name in enumerate(MONTHS):
		if text.lower() in (name.lower(), ORIGINAL_MONTHS[index].lower()):
			return name
	if text.isdigit() and 1 <= int(text) <= 12:
		return MONTHS[int(text) - 1]
	return ""


def _weekday_name(value: Any) -> str:
	text = str(value or "").strip().lower()
	for name in WEEKDAYS:
		if text and text in (name.lower(), name[:3].lower()):
			return name
	return ""


def _form_intent(row: OriginalSchedule) -> tuple[str | None, str]:
	"""The cron string the original form's fields meant (read in the system zone), and in words."""
	frequency = (row.run_frequency or "Cron Style").strip()
	minute, hour = _int(row.minute) or 0, _int(row.hour) or 0
	day, month, weekday = _int(row.day_of_month), _month_name(row.month), _weekday_name(row.day_of_week)
	weekday_text = weekday or repr(row.day_of_week)
	month_text = month or repr(row.month)
	words = {
		"Hourly": f"Hourly at minute {minute}",
		"Daily": f"Daily at {hour:02d}:{minute:02d}",
		"Weekly": f"Weekly on {weekday_text} at {hour:02d}:{minute:02d}",
		"Monthly": f"Monthly on day {day} at {hour:02d}:{minute:02d}",
		"Yearly": f"Yearly on {month_text} {day} at {hour:02d}:{minute:02d}",
	}.get(frequency, f"Cron Style {row.cron_string!r}")
	if frequency == "Cron Style":
		return None, words
	try:
		cron = frequency_to_cron(
			frequency,
			minute=minute,
			hour=hour,
			day_of_week=weekday or None,
			day_of_month=day,
			month=month or None,
		)
	except CronError:
		return None, words
	return cron, words


_SINGLE = re.compile(r"[0-9]+$")
# Instants compared to tell whether the form's rule and the kept one differ: some in each season.
_PROBES = tuple(datetime(2030, month, 1, tzinfo=timezone.utc) for month in (1, 4, 7, 10))


def _same_instants(first: tuple[str, str], second: tuple[str, str]) -> bool:
	try:
		return all(
			next_fire_times(first[0], first[1], probe, 6) == next_fire_times(second[0], second[1], probe, 6)
			for probe in _PROBES
		)
	except (CronError, TimeZoneError):
		return False


def _fields_for(cron: str) -> dict[str, Any]:
	"""Frequency fields that produce exactly ``cron`` (Cron Style when none do)."""
	empty = {"minute": 0, "hour": 0, "day_of_week": "", "day_of_month": 0, "month": ""}
	parts = cron.split()
	if len(parts) == 5 and _SINGLE.match(parts[0]):
		minute, hour, dom, month, dow = parts
		candidate: dict[str, Any] | None = None
		if (hour, dom, month, dow) == ("*", "*", "*", "*"):
			candidate = {"run_frequency": "Hourly", "minute": int(minute)}
		elif _SINGLE.match(hour) and (dom, month) == ("*", "*") and dow == "*":
			candidate = {"run_frequency": "Daily", "minute": int(minute), "hour": int(hour)}
		elif _SINGLE.match(hour) and (dom, month) == ("*", "*") and _SINGLE.match(dow) and int(dow) < 7:
			candidate = {
				"run_frequency": "Weekly",
				"minute": int(minute),
				"hour": int(hour),
				"day_of_week": WEEKDAYS[int(dow)],
			}
		elif _SINGLE.match(hour) and _SINGLE.match(dom) and (month, dow) == ("*", "*"):
			candidate = {
				"run_frequency": "Monthly",
				"minute": int(minute),
				"hour": int(hour),
				"day_of_month": int(dom),
			}
		elif _SINGLE.match(hour) and _SINGLE.match(dom) and _SINGLE.match(month) and dow == "*":
			candidate = {
				"run_frequency": "Yearly",
				"minute": int(minute),
				"hour": int(hour),
				"day_of_month": int(dom),
				"month": MONTHS[int(month) - 1],
			}
		if candidate is not None:
			values = empty | candidate
			try:
				again = frequency_to_cron(
					values["run_frequency"],
					minute=values["minute"],
					hour=values["hour"],
					day_of_week=values["day_of_week"] or None,
					day_of_month=values["day_of_month"] or None,
					month=values["month"] or None,
				)
			except CronError:
				again = None
			if again == cron:
				return values
	return empty | {"run_frequency": "Cron Style"}


def _utc_offset_note(row: OriginalSchedule, system_zone: str | None, translation: Translation) -> str | None:
	"""For a form row: how its local time became a fixed UTC (or zone) time."""
	if not system_zone or system_zone in ("UTC", "Etc/UTC") or (row.run_frequency or "") == "Cron Style":
		return None
	hour = _int(row.hour)
	minute = _int(row.minute) or 0
	if hour is None or (row.run_frequency or "") == "Hourly":
		return None
	try:
		zone = validate_timezone(system_zone)
	except TimeZoneError:
		return None
	offsets = sorted(
		{
			datetime(2021, month, 15, hour, minute, tzinfo=zone).utcoffset() or timedelta(0)
			for month in (1, 4, 7, 10)
		}
	)

	def clock(offset: timedelta) -> str:
		total = (hour * 60 + minute) - int(offset.total_seconds() // 60)
		return f"{(total // 60) % 24:02d}:{total % 60:02d} UTC"

	said = f"{hour:02d}:{minute:02d} {system_zone}"
	read = "" if translation.zone == "UTC" else f", which its daemon then read as {translation.zone} time"
	crossed = ""
	if (row.run_frequency or "") == "Weekly":
		days = {(hour * 60 + minute - int(o.total_seconds() // 60)) // (24 * 60) for o in offsets}
		if days != {0}:
			crossed = (
				"; the conversion crossed midnight but the original kept the weekday, so the run moved "
				"a day as well"
			)
	if len(offsets) > 1:
		return (
			f"its form said {said}; the original converted that to UTC with the offset of the day it was "
			f"saved ({' or '.join(clock(o) for o in offsets)}){read}, so it did not follow that "
			f"local time through daylight saving{crossed}"
		)
	return f"its form said {said}; the original stored it as {clock(offsets[0])}{read}{crossed}"


def migrate_schedule(
	row: OriginalSchedule, daemon: DaemonZone, system_zone: str | None = None
) -> ScheduleMigration:
	"""Our columns for one original row, and the report lines that explain them."""
	enabled = bool(_int(row.enabled))
	lines: list[str] = []
	intent_cron, intent_words = _form_intent(row)
	try:
		rule = read_original_rule(row.cron_string)
		translation = translate_rule(rule, daemon.zone)
	except (OriginalRuleError, NotExpressible, CronError) as exc:
		return _cannot_carry(row, exc, intent_cron, intent_words, system_zone, enabled)

	frequency = (row.run_frequency or "Cron Style").strip()
	fields = _fields_for(translation.cron)
	if frequency == "Cron Style":  # what its owner typed stays a cron string
		fields = fields | {
			"run_frequency": "Cron Style",
			"minute": 0,
			"hour": 0,
			"day_of_week": "",
			"day_of_month": 0,
			"month": "",
		}
	values = fields | {
		"cron_string": translation.cron,
		"cron_timezone": translation.zone,
		"schedule_description": describe_cron(translation.cron),
	}
	kept = f"kept at the instants the original daemon used: {translation.cron!r} in {translation.zone}"
	if not daemon.ran:
		kept = f"now {translation.cron!r} in {translation.zone} ({daemon.note})"
	lines.append(kept + f" ({values['schedule_description']})")
	lines.extend(translation.notes)
	lines.extend(zone_quirk_notes(rule, translation.zone))
	if frequency in ("Monthly", "Yearly") and values["run_frequency"] != frequency:
		lines.append(
			f"its Run Frequency said {intent_words}, but the original could not save a {frequency} "
			f"schedule (its cron builder dropped the day of month) and ran the stored string "
			f"{row.cron_string!r}; Run Frequency is now {values['run_frequency']}"
		)
	elif frequency != values["run_frequency"]:
		lines.append(f"Run Frequency {frequency} is now {values['run_frequency']} (the same rule)")
	if str(row.month or "").strip().upper() in ORIGINAL_MONTHS:
		now = values["month"] or "cleared"
		lines.append(f"its month {row.month!r} (the original's spelling, refused by BTU's form) is now {now}")
	offset_note = _utc_offset_note(row, system_zone, translation)
	if offset_note:
		lines.append(offset_note)
	if (
		intent_cron is not None
		and system_zone
		and not _same_instants((intent_cron, system_zone), (translation.cron, translation.zone))
	):
		lines.append(
			f"to run as its form said instead ({intent_words} {system_zone}), set that in the form "
			f"with Time Zone {system_zone}"
		)
	return ScheduleMigration(row.name, values, lines, attention=False)


def _cannot_carry(
	row: OriginalSchedule,
	exc: Exception,
	intent_cron: str | None,
	intent_words: str,
	system_zone: str | None,
	enabled: bool,
) -> ScheduleMigration:
	"""A row whose original rule had no fire times (or none BTU can say): disabled, with the form's rule."""
	if isinstance(exc, NotExpressible):
		what = f"BTU cannot express the rule the original ran, {row.cron_string!r}: {exc}"
	elif isinstance(exc, CronError):
		what = f"its rule {row.cron_string!r} fires no more ({exc})"
	else:
		what = f"the original could not run its rule {row.cron_string!r}: {exc}"
		if isinstance(exc, OriginalRuleError) and exc.panicked:
			what += " (its daemon panicked on it, which stopped every schedule of that daemon)"
	values: dict[str, Any] = {"enabled": 0}
	if intent_cron is not None and system_zone:
		values |= _fields_for(intent_cron) | {
			"cron_string": intent_cron,
			"cron_timezone": system_zone,
			"schedule_description": describe_cron(intent_cron),
		}
		then = f"its fields now say what its form said ({intent_words} {system_zone})"
	else:
		values |= {"run_frequency": "Cron Style", "cron_timezone": ""}
		then = f"its cron string {row.cron_string!r} is kept for you to correct"
	lines = [
		f"{what}; {'disabled' if enabled else 'left disabled'}, {then}; enable it when that is what you want"
	]
	return ScheduleMigration(row.name, values, lines, attention=enabled)
