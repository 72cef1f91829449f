"""Cron rules: next fire times across daylight-saving changes, checked against a brute-force walk.

The reference here (``_field_values``, ``_matches``, ``brute_force``) is written from ISC
cron's rules, not from btu.contracts.schedule_rules: tests/test_cron_semantics.py uses it too.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest

from btu.contracts.schedule_rules import (
	CronError,
	TimeZoneError,
	describe_cron,
	frequency_to_cron,
	next_fire_times,
	normalize_cron,
	parse_cron,
	validate_timezone,
)

UTC = timezone.utc
ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago"]
RULES = [
	"30 2 * * *",
	"0 * * * *",
	"*/15 * * * *",
	"15,45 1-3 * * *",
	"0 2 * * *",
	"59 1 * * *",
	"0 0 * * *",
	"*/20 2 * * *",
	"0 */2 * * *",
	"45 0-4 * * 0-6",
	"30 1-2 * * sun-7",  # day-of-week names, 7 = Sunday
	"*/30 2-2 */1 * 0-0",  # equal-end ranges; day of month starts with '*': AND (Sundays)
	"15 1-3 1,15 * SUN",  # both day fields restricted: OR (the changes fall on Sundays)
]


# --- an independent brute-force reference: walk every UTC minute ---------------------------------

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _value(text: str, names: tuple[str, ...] | None, first: int) -> int:
	if names and text.lower() in names:
		return names.index(text.lower()) + first
	return int(text)


@lru_cache(maxsize=None)
def _field_values(text: str, low: int, high: int, names: tuple[str, ...] | None = None) -> frozenset[int]:
	"""ISC cron's reading of one field: '*', n, a-b, */s, a-b/s, names; 'a-a' is just a. Plus
	'n/s', which ISC has not: n up to the last value (Saturday for weekdays), as croniter reads it."""
	values: set[int] = set()
	for part in text.split(","):
		step, stepped = 1, "/" in part
		if stepped:
			part, step_text = part.split("/")
			step = int(step_text)
		if part == "*":
			start, end = low, high
		elif "-" in part:
			start, end = (_value(t, names, low) for t in part.split("-"))
		elif stepped:
			start = _value(part, names, low)
			end = max(6, start) if names == DOW_NAMES else high  # '7/s' is Sunday
		else:
			start = end = _value(part, names, low)
		values.update(range(start, end + 1, step))
	return frozenset(values)


def _dow_values(text: str) -> frozenset[int]:
	return frozenset(d % 7 for d in _field_values(text, 0, 7, DOW_NAMES))  # 0 and 7 are Sunday


def _day_matches(dom: str, month: str, dow: str, day: date) -> bool:
	"""ISC cron: day of month AND day of week when either field starts with '*', else OR."""
	if day.month not in _field_values(month, 1, 12, MONTH_NAMES):
		return False
	in_dom = day.day in _field_values(dom, 1, 31)
	in_dow = (day.weekday() + 1) % 7 in _dow_values(dow)
	if dom.startswith("*") or dow.startswith("*"):
		return in_dom and in_dow
	return in_dom or in_dow


def _matches(cron: str, wall: datetime) -> bool:
	minute, hour, dom, month, dow = cron.split()
	return (
		wall.minute in _field_values(minute, 0, 59)
		and wall.hour in _field_values(hour, 0, 23)
		and _day_matches(dom, month, dow, wall.date())
	)


def brute_force(cron: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
	"""ISC cron semantics by exhaustive minute walk (see README.md 'Time')."""
	tz = ZoneInfo(zone)
	minute_field, hour_field = cron.split()[:2]
	wildcard = minute_field.startswith("*") or hour_field.startswith("*")
	fires: list[datetime] = []
	instant = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
	previous_wall = (instant - timedelta(minutes=1)).astimezone(tz).replace(tzinfo=None)
	while instant <= end:
		local = instant.astimezone(tz)
		wall = local.replace(tzinfo=None)
		fire = False
		if wildcard:
			fire = _matches(cron, wall)
		else:
			# (the repeated-wall-time walk only for a matching minute: same verdict, much less work)
			fire = _matches(cron, wall) and not (
				(instant - timedelta(hours=3)).astimezone(tz).replace(tzinfo=None)
				>= wall - timedelta(hours=3)
				and any(
					(instant - timedelta(minutes=m)).astimezone(tz).replace(tzinfo=None) == wall
					for m in range(1, 181)
				)
			)
			skipped = previous_wall + timedelta(minutes=1)
			while skipped < wall:  # wall minutes jumped over by spring forward
				if _matches(cron, skipped):
					fire = True
				skipped += timedelta(minutes=1)
		if fire and instant > start:
			fires.append(instant)
		previous_wall = wall
		instant += timedelta(minutes=1)
	return fires


def transitions(zone: str, year: int) -> list[datetime]:
	tz = ZoneInfo(zone)
	found = []
	instant = datetime(year, 1, 1, tzinfo=UTC)
	offset = instant.astimezone(tz).utcoffset()
	while instant.year == year:
		nxt = instant + timedelta(hours=1)
		if nxt.astimezone(tz).utcoffset() != offset:
			found.append(nxt)
			offset = nxt.astimezone(tz).utcoffset()
		instant = nxt
	return found


CASES = [(zone, moment) for zone in ZONES for moment in transitions(zone, 2026)]


def test_each_zone_has_both_transitions():
	for zone in ZONES:
		assert len(transitions(zone, 2026)) == 2, zone


@pytest.mark.parametrize("zone,moment", CASES, ids=[f"{z}-{m:%m%d}" for z, m in CASES])
@pytest.mark.parametrize("cron", RULES)
def test_next_fire_times_match_brute_force_across_dst(zone, moment, cron):
	start = moment - timedelta(hours=6)
	end = moment + timedelta(hours=6)
	expected = brute_force(cron, zone, start, end)
	got = [t for t in next_fire_times(cron, zone, start, len(expected) + 1) if t <= end]
	assert got == expected


def test_new_york_spring_forward_fixed_rule_runs_once_at_the_jump():
	start = datetime(2026, 3, 7, 12, tzinfo=UTC)
	got = next_fire_times("30 2 * * *", "America/New_York", start, 2)
	assert got == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 3, 9, 6, 30, tzinfo=UTC)]


def test_new_york_fall_back_fixed_rule_runs_at_first_occurrence_only():
	start = datetime(2026, 10, 31, 12, tzinfo=UTC)
	got = next_fire_times("30 1 * * *", "America/New_York", start, 2)
	assert got == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 2, 6, 30, tzinfo=UTC)]


def test_wildcard_rule_keeps_real_time_rhythm_through_fall_back():
	start = datetime(2026, 11, 1, 4, 50, tzinfo=UTC)
	got = next_fire_times("*/15 * * * *", "America/New_York", start, 10)
	assert [(b - a) for a, b in zip(got, got[1:])] == [timedelta(minutes=15)] * 9


def test_six_field_seconds_and_seven_field_year():
	start = datetime(2026, 1, 1, tzinfo=UTC)
	assert next_fire_times("*/20 * * * * *", "UTC", start, 3) == [
		start + timedelta(seconds=20),
		start + timedelta(seconds=40),
		start + timedelta(seconds=60),
	]
	assert next_fire_times("0 30 12 1 1 * 2028", "UTC", start, 2) == [
		datetime(2028, 1, 1, 12, 30, tzinfo=UTC)
	]


@pytest.mark.parametrize(
	"alias,expected",
	[
		("@hourly", "0 * * * *"),
		("@daily", "0 0 * * *"),
		("@midnight", "0 0 * * *"),
		("@weekly", "0 0 * * 0"),
		("@monthly", "0 0 1 * *"),
		("@yearly", "0 0 1 1 *"),
		("@ANNUALLY", "0 0 1 1 *"),
	],
)
def test_aliases(alias, expected):
	assert normalize_cron(alias) == expected


def test_rule_kind_detection():
	assert parse_cron("0 */2 * * *").wildcard and parse_cron("*/5 1 * * *").wildcard
	assert not parse_cron("0 2 * * *").wildcard and not parse_cron("0 30 2 * * *").wildcard
	assert parse_cron("* 30 2 * * *").seconds_first and not parse_cron("* 30 2 * * *").wildcard


@pytest.mark.parametrize(
	"bad,fragment",
	[
		("", "empty"),
		("* * *", "has 3 fields"),
		("61 * * * *", "61 * * * *"),
		("@reboot", "not supported"),
		("* * * * * * * *", "has 8 fields"),
		("a b c d e", "invalid"),
	],
)
def test_bad_cron_strings_are_reported_clearly(bad, fragment):
	with pytest.raises(CronError) as info:
		next_fire_times(bad, "UTC", datetime(2026, 1, 1, tzinfo=UTC))
	assert fragment in str(info.value)


def test_bad_time_zone_is_reported_clearly():
	with pytest.raises(TimeZoneError, match="Unknown time zone 'Mars/Olympus'"):
		next_fire_times("* * * * *", "Mars/Olympus")
	with pytest.raises(TimeZoneError, match="empty"):
		validate_timezone(" ")


def test_never_firing_rule_is_refused():
	with pytest.raises(CronError, match="day-of-month 30 never occurs in February"):
		next_fire_times("0 0 30 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), 1)


def test_naive_after_is_refused():
	with pytest.raises(ValueError, match="timezone-aware"):
		next_fire_times("* * * * *", "UTC", datetime(2026, 1, 1))


@pytest.mark.parametrize(
	"args,expected",
	[
		(("Hourly", 5), "5 * * * *"),
		(("Hourly", None), "0 * * * *"),
		(("Daily", 30, 2), "30 2 * * *"),
		(("Weekly", 0, 9, "Monday"), "0 9 * * 1"),
		(("Weekly", 0, 9, "Sunday"), "0 9 * * 0"),
		(("Weekly", 0, 9, "sat"), "0 9 * * 6"),
		(("Monthly", 15, 3, None, 31), "15 3 31 * *"),
		(("Yearly", 0, 0, None, 29, "February"), "0 0 29 2 *"),
		(("Yearly", 0, 12, None, 1, "12"), "0 12 1 12 *"),
	],
)
def test_frequency_to_cron(args, expected):
	assert frequency_to_cron(*args) == expected


def test_cron_style_frequency_validates_and_normalises():
	assert frequency_to_cron("Cron Style", cron_string="  */5   *  * * * ") == "*/5 * * * *"
	with pytest.raises(CronError):
		frequency_to_cron("Cron Style", cron_string="not cron")


@pytest.mark.parametrize(
	"args,fragment",
	[
		(("Daily", 60, 1), "Minute must be from 0 to 59"),
		(("Daily", 0, 24), "Hour must be from 0 to 23"),
		(("Daily", "x", 1), "Minute must be a whole number"),
		(("Weekly", 0, 1, None), "Day of week is required"),
		(("Weekly", 0, 1, "Funday"), "Day of week 'Funday' is not one of"),
		(("Monthly", 0, 1, None, None), "Day of month is required"),
		(("Monthly", 0, 1, None, 32), "Day of month must be from 1 to 31"),
		(("Yearly", 0, 1, None, 30, "February"), "February has no day 30"),
		(("Fortnightly",), "Run frequency 'Fortnightly' is unknown"),
	],
)
def test_frequency_errors(args, fragment):
	with pytest.raises(CronError) as info:
		frequency_to_cron(*args)
	assert fragment in str(info.value)


def test_describe_cron_in_plain_words():
	assert describe_cron("*/5 * * * *") == "Every 5 minutes"
	assert "02:30" in describe_cron("30 2 * * *")
