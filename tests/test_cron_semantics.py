"""Cron rules mean what they mean to ISC (Vixie) cron, on whichever croniter is installed.

CI runs this file and tests/test_schedule_rules.py again on the lowest and the newest croniter
that pyproject.toml admits (.ci/run). Issue 14 items 1-5: equal-end ranges, day of month with
day of week (AND when either field starts with '*', OR when both are restricted), rules that
never fire refused at every entry point, messages naming the field, backwards ranges refused.
Then a seeded comparison of next_fire_times with the independent ISC reference of
tests/test_schedule_rules.py over random rules in several zones, and each entry point's
refusal: the Desk's frequency_to_cron, the CLI and the daemon.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib.metadata import version
from zoneinfo import ZoneInfo

import pytest

from btu.contracts import schedule_rules
from btu.contracts.redis_keys import KEYS
from btu.contracts.schedule_rules import (
	CronError,
	describe_cron,
	frequency_to_cron,
	next_fire_times,
	parse_cron,
)

from .conftest import SITE
from .services import REPO, wait_for
from .test_schedule_rules import DOW_NAMES, MONTH_NAMES, _dow_values, _field_values, transitions

UTC = timezone.utc
AFTER = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
RECORD = "btu.scheduler_daemon.demo_tasks.record_run"


def fires(cron: str, count: int = 3, zone: str = "UTC", after: datetime = AFTER) -> list[str]:
	return [t.strftime("%Y-%m-%d %H:%M:%S") for t in next_fire_times(cron, zone, after, count)]


def refusal(cron: str) -> str:
	with pytest.raises(CronError) as info:
		parse_cron(cron)
	return str(info.value)


def test_installed_croniter_is_one_the_requirements_admit():
	"""So that the CI runs on 'the lowest' and 'the newest' croniter really test admitted ones."""
	(spec,) = re.findall(r'^\s*"(croniter[<>=][^"]*)"', (REPO / "pyproject.toml").read_text(), re.MULTILINE)
	low = re.search(r">=\s*([0-9.]+)", spec).group(1)
	high = re.search(r"<\s*([0-9.]+)", spec).group(1)

	def key(text: str) -> tuple[int, ...]:
		return tuple(int(p) for p in re.match(r"[0-9.]+", text).group(0).strip(".").split("."))

	installed = version("croniter")
	assert key(low) <= key(installed) < key(high), (spec, installed)


# --- item 1: a range with equal ends is that one value ----------------------------------------


@pytest.mark.parametrize(
	"cron,expected",
	[
		("30 2 * * 1-1", ["2026-01-05 02:30:00", "2026-01-12 02:30:00", "2026-01-19 02:30:00"]),
		("5-5 * * * *", ["2026-01-01 00:05:00", "2026-01-01 01:05:00", "2026-01-01 02:05:00"]),
		("0 9 * apr-apr *", ["2026-04-01 09:00:00", "2026-04-02 09:00:00", "2026-04-03 09:00:00"]),
		("0 9 * APR-Apr/3 *", ["2026-04-01 09:00:00", "2026-04-02 09:00:00", "2026-04-03 09:00:00"]),
		("0 0 1-1 1-1 *", ["2027-01-01 00:00:00", "2028-01-01 00:00:00", "2029-01-01 00:00:00"]),
		("0 0 * * 7-7", ["2026-01-04 00:00:00", "2026-01-11 00:00:00", "2026-01-18 00:00:00"]),
		("0 0 * * sun-sun", ["2026-01-04 00:00:00", "2026-01-11 00:00:00", "2026-01-18 00:00:00"]),
		("0 30 2 * * 1-1", ["2026-01-05 02:30:00", "2026-01-12 02:30:00", "2026-01-19 02:30:00"]),
		("15-15 0 0 * * *", ["2026-01-01 00:00:15", "2026-01-02 00:00:15", "2026-01-03 00:00:15"]),
	],
)
def test_equal_end_range_is_the_single_value(cron, expected):
	assert fires(cron) == expected


def test_n_step_extension_means_what_croniter_read_it_as():
	"""'n/s' (not ISC) keeps croniter's meaning: no Sunday from a day-of-week '1/2'."""
	assert parse_cron("0 0 * * 1/2").croniter_expression == "0 0 * * 1,3,5"
	assert parse_cron("0 0 3/10 * *").croniter_expression == "0 0 3,13,23 * *"
	assert parse_cron("0/1 * * * * *").croniter_expression == parse_cron("* * * * * *").croniter_expression
	assert parse_cron("0 0 * * 7/2").croniter_expression == "0 0 * * 0"  # Sunday, as croniter 2.0 reads it
	assert "minute 60 is outside 0-59" in refusal("60/5 * * * *")
	assert "minute step 0 in '5/0' must be 1 or more" in refusal("5/0 * * * *")


@pytest.mark.parametrize(
	"cron",
	[
		"30 2 * * 1-1",
		"5-5 * * * *",
		"0 9 * apr-apr *",
		"*/7 1-3 */10 jan-mar/2 MON-fri/2",
		"0 30 2 * * 1-1 *",
	],
)
def test_croniter_is_handed_only_plain_lists(cron):
	"""Digits, commas and '*' only: no range, step or name for a croniter release to read its way."""
	handed = parse_cron(cron).croniter_expression
	assert re.fullmatch(r"[0-9,* ]+", handed), handed
	assert not re.search(r"\b(\d+),\1\b", handed)  # no value twice


# --- item 2: day of month with day of week -----------------------------------------------------


@pytest.mark.parametrize(
	"cron,expected",
	[
		# day of month starts with '*': AND (the 1st, 11th, 21st or 31st when it is a Monday)
		("0 12 */10 * 1", ["2026-05-11 12:00:00", "2026-06-01 12:00:00", "2026-08-31 12:00:00"]),
		("0 12 */1 * mon", ["2026-01-05 12:00:00", "2026-01-12 12:00:00", "2026-01-19 12:00:00"]),
		# day of week starts with '*' (*/7 = 0,7 = Sunday): AND
		("0 12 13 * */7", ["2026-09-13 12:00:00", "2026-12-13 12:00:00", "2027-06-13 12:00:00"]),
		("0 0 1 * */2", ["2026-02-01 00:00:00", "2026-03-01 00:00:00", "2026-08-01 00:00:00"]),
		# both restricted: OR
		("0 12 1,11,21,31 * 1", ["2026-01-01 12:00:00", "2026-01-05 12:00:00", "2026-01-11 12:00:00"]),
		("0 12 13 * fri", ["2026-01-02 12:00:00", "2026-01-09 12:00:00", "2026-01-13 12:00:00"]),
		# OR with a whole field written out is every day ('1-31' does not start with '*')
		("0 12 1-31 * mon", ["2026-01-01 12:00:00", "2026-01-02 12:00:00", "2026-01-03 12:00:00"]),
		("0 12 13 * 0-6", ["2026-01-01 12:00:00", "2026-01-02 12:00:00", "2026-01-03 12:00:00"]),
		# only one restricted
		("0 12 13 * *", ["2026-01-13 12:00:00", "2026-02-13 12:00:00", "2026-03-13 12:00:00"]),
		("@weekly", ["2026-01-04 00:00:00", "2026-01-11 00:00:00", "2026-01-18 00:00:00"]),
	],
)
def test_day_of_month_and_day_of_week_follow_isc(cron, expected):
	assert fires(cron) == expected


def test_day_fields_and_or_flag():
	assert not parse_cron("0 12 */10 * 1").day_or
	assert parse_cron("0 12 1,15 * 1").day_or
	assert not parse_cron("0 12 1-31 * 1").day_or  # every day either way
	assert not parse_cron("0 12 * * 1").day_or


def test_describe_says_and_or_as_isc_does():
	anded = describe_cron("0 12 */10 * 1")
	assert "only when that day is a Monday" in anded and "or on" not in anded
	ored = describe_cron("0 12 1,15 * 1")
	assert "and also on every Monday" in ored
	assert "in those months" in describe_cron("0 12 1,15 apr mon")
	assert "through" not in describe_cron("30 2 * * 1-1")
	assert "through" not in describe_cron("0 9 * apr-apr *")
	assert "Sunday and Sunday" not in describe_cron("0 0 * * sun,7")
	assert describe_cron("*/5 * * * *") == "Every 5 minutes"


# --- item 3: rules that can never fire are refused --------------------------------------------


@pytest.mark.parametrize(
	"cron,reason",
	[
		("0 0 31 2 *", "never fires: day-of-month 31 never occurs in February."),
		("* * 30 2 *", "never fires: day-of-month 30 never occurs in February."),
		("0 0 30,31 feb *", "never fires: day-of-month 30,31 never occurs in February."),
		("0 0 31 apr,jun,sep,nov *", "day-of-month 31 never occurs in April, June, September or November."),
		("0 0 30 2 */1", "day-of-month 30 never occurs in February."),  # AND: '*/1' starts with '*'
		("0 0 0 30 2 * *", "day-of-month 30 never occurs in February."),
		("0 0 0 1 1 * 2001-2003", "never fires again: years 2001-2003 are all in the past."),
		("0 0 0 1 1 * 1999", "never fires again: year 1999 is in the past."),
		("0 0 0 29 2 * 2027", "never fires: no date in year 2027 matches"),
		# AND ('*/31' is the 1st): 1 February 2026 is a Sunday, not a Monday
		("0 0 0 */31 feb 1 2026", "never fires: no date in year 2026 matches"),
	],
)
def test_rules_that_never_fire_are_refused_with_the_reason(cron, reason):
	message = refusal(cron)
	assert message.startswith(f"Cron string {cron!r} ") and reason in message, message
	with pytest.raises(CronError, match=re.escape(reason)):
		frequency_to_cron("Cron Style", cron_string=cron)  # what Desk's save and preview call
	with pytest.raises(CronError, match=re.escape(reason)):
		next_fire_times(cron, "UTC")  # from now, as the CLI without --after


def test_february_29_fires_in_leap_years_only():
	assert fires("0 0 29 2 *", 3) == ["2028-02-29 00:00:00", "2032-02-29 00:00:00", "2036-02-29 00:00:00"]
	# OR: the 30th never comes, the Mondays of February do
	assert fires("0 0 30 2 1", 2) == ["2026-02-02 00:00:00", "2026-02-09 00:00:00"]


def test_seven_field_rule_fires_in_its_years_only():
	year = datetime.now(UTC).year + 2
	cron = f"0 0 12 1 1 * {year},{year + 2}"
	assert fires(cron, 5) == [f"{year}-01-01 12:00:00", f"{year + 2}-01-01 12:00:00"]
	assert fires("0 0 0 1 1 * 2001-2003", 5, after=datetime(2000, 6, 1, tzinfo=UTC)) == [
		"2001-01-01 00:00:00",
		"2002-01-01 00:00:00",
		"2003-01-01 00:00:00",
	]  # from an explicit instant (the daemon's own stepping) a rule that is over has no more times


def test_years_over_is_decided_at_each_call_not_cached():
	year = datetime.now(UTC).year + 2
	cron = f"0 0 12 1 1 * {year}"
	rule = parse_cron(cron)  # cached now
	assert rule.last_wall == datetime(year, 1, 1, 12, 0)
	past = schedule_rules._past_reason
	assert past(rule, datetime(year, 1, 2, 1, 59)) is None  # still ahead somewhere on Earth
	assert past(rule, datetime(year, 1, 2, 2, 1)) == (
		f"its last fire time, {year}-01-01 12:00:00 (wall clock), is in the past"
	)
	assert past(rule, datetime(year + 1, 1, 1)) == f"year {year} is in the past"
	schedule_rules._parse_cached("0 0 0 1 1 * 2001")  # in the cache, accepted by the parse alone
	with pytest.raises(CronError, match="year 2001 is in the past"):
		parse_cron("0 0 0 1 1 * 2001")


@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Pacific/Pago_Pago", "UTC", "Pacific/Kiritimati"])
def test_years_over_only_once_the_last_fire_time_is_past_in_every_zone(zone):
	year = datetime.now(UTC).year + 2
	rule = parse_cron(f"0 59 23 31 12 * {year}")
	(last,) = next_fire_times(rule.expression, zone, datetime(year, 12, 1, tzinfo=UTC), 3)
	refused_from = rule.last_wall.replace(tzinfo=UTC) + schedule_rules._PAST_MARGIN
	assert last < refused_from
	assert schedule_rules._past_reason(rule, last.replace(tzinfo=None)) is None


# --- item 4: messages name the field and the value ------------------------------------------


@pytest.mark.parametrize(
	"cron,reason",
	[
		("61 * * * *", "minute 61 is outside 0-59"),
		("0 24 * * *", "hour 24 is outside 0-23"),
		("0 0 0 * *", "day-of-month 0 is outside 1-31"),
		("0 0 32 * *", "day-of-month 32 is outside 1-31"),
		("0 0 * 13 *", "month 13 is outside 1-12 or jan-dec"),
		("0 0 * 0 *", "month 0 is outside 1-12 or jan-dec"),
		("0 0 * * 8", "day-of-week 8 is outside 0-7 or sun-sat"),
		("60 * * * * *", "second 60 is outside 0-59"),
		("0 0 0 1 1 * 1969", "year 1969 is outside 1970-2099"),
		("0 0 0 1 1 * 2100", "year 2100 is outside 1970-2099"),
		("0-61/30 * * * *", "minute 61 is outside 0-59"),
		("9" * 40 + " * * * *", "minute 99999999999999999999... is outside 0-59"),
		("0 0 * * monday", "day-of-week 'monday': cron knows only three-letter names; write 'mon'"),
		("0 0 * foo *", "month 'foo' is not one of jan, feb, mar"),
		("0 0 * * jan", "day-of-week 'jan' is not one of sun, mon"),
		("0 0 jan * *", "day-of-month 'jan' is not a value from 1-31"),
		("1,,2 * * * *", "minute field '1,,2' has an empty list element"),
		("*/0 * * * *", "minute step 0 in '*/0' must be 1 or more"),
		("*/x * * * *", "minute step 'x' in '*/x' is not a whole number"),
		("0 1-2-3 * * *", "hour '2-3' is not a value from 0-23"),
		("-5 * * * *", "minute '' is not a value from 0-59"),
		("\uff0a * * * *", "minute '\uff0a' is not a value from 0-59"),
	],
)
def test_messages_name_the_field_and_value(cron, reason):
	message = refusal(cron)
	assert message.startswith(f"Cron string {cron!r} is invalid: {reason}"), message


def test_field_count_alias_empty_and_length_messages():
	assert "has 3 fields; expected 5" in refusal("* * *")
	assert "Cron alias '@reboot' is not supported" in refusal("@reboot")
	assert "Cron string is empty" in refusal("   ")
	assert "characters long; at most 1000" in refusal("1," * 600 + "2 * * * *")


# --- item 5: a range whose ends are backwards sets nothing in ISC cron: refused -------------


@pytest.mark.parametrize(
	"cron,reason",
	[
		(
			"5-1 * * * *",
			"minute range 5-1 runs backwards; ISC cron sets nothing for it; "
			"to wrap around, list both parts: 5-59,0-1",
		),
		("0 22-2 * * *", "hour range 22-2 runs backwards"),
		("0 0 * dec-jan *", "month range dec-jan runs backwards"),
		("0 0 * * 5-1", "day-of-week range 5-1 runs backwards; ISC cron sets nothing for it"),
		(
			"0 0 * * sat-sun",
			"day-of-week range sat-sun runs backwards; ISC cron sets nothing for it; write sat-7",
		),
		("0 0 0 1 1 * 2031-2030", "year range 2031-2030 runs backwards"),
	],
)
def test_backwards_range_is_refused(cron, reason):
	assert reason in refusal(cron)


# --- croniter's own syntax, which ISC cron has not ----------------------------------------------


@pytest.mark.parametrize(
	"cron,reason",
	[
		("0 0 L * *", "day-of-month 'L': 'L' (the last day) is croniter syntax that ISC cron does not have"),
		("0 0 * * 5L", "day-of-week '5L': 'L' (the last day) is croniter syntax"),
		("0 0 15W * *", "day-of-month '15W': 'W' (the nearest weekday) is croniter syntax"),
		("0 0 * * 1#2", "'#' (the n-th weekday of a month) is croniter syntax"),
		(
			"0 0 ? * *",
			"day-of-month '?' is Quartz and croniter syntax that ISC cron does not have; write '*'",
		),
		("H * * * *", "hashed and random values ('H', 'R') are croniter syntax"),
		("H(0-29)/5 * * * *", "hashed and random values"),
		("R 0 * * *", "hashed and random values"),
	],
)
def test_croniter_only_syntax_is_refused(cron, reason):
	assert reason in refusal(cron)


# --- the rest of ISC's grammar ------------------------------------------------------------------


@pytest.mark.parametrize(
	"cron,expected",
	[
		("*/90 * * * *", ["2026-01-01 01:00:00", "2026-01-01 02:00:00"]),  # a step past the end
		("00 05 * * *", ["2026-01-01 05:00:00", "2026-01-02 05:00:00"]),
		("0 0 * JAN,mar *", ["2026-01-02 00:00:00", "2026-01-03 00:00:00"]),
		("0 0 * * Mon-Fri/2", ["2026-01-02 00:00:00", "2026-01-05 00:00:00", "2026-01-07 00:00:00"]),
		("0 0 * * */2", ["2026-01-03 00:00:00", "2026-01-04 00:00:00", "2026-01-06 00:00:00"]),
		("0 0 * * */4", ["2026-01-04 00:00:00", "2026-01-08 00:00:00", "2026-01-11 00:00:00"]),
		("0 0 * * 1-7/3", ["2026-01-04 00:00:00", "2026-01-05 00:00:00", "2026-01-08 00:00:00"]),
		("0 0 * * 0-7", ["2026-01-02 00:00:00", "2026-01-03 00:00:00"]),
		("0 0 * * 7", ["2026-01-04 00:00:00", "2026-01-11 00:00:00"]),
		# the one extension: n/s is n up to the field's last value, as every croniter reads it
		("5/20 * * * *", ["2026-01-01 00:05:00", "2026-01-01 00:25:00", "2026-01-01 00:45:00"]),
		("1/3 * * * * *", ["2026-01-01 00:00:01", "2026-01-01 00:00:04", "2026-01-01 00:00:07"]),
		("0 0 * * 1/2", ["2026-01-02 00:00:00", "2026-01-05 00:00:00", "2026-01-07 00:00:00"]),
		("0 0 * 11/5 *", ["2026-11-01 00:00:00", "2026-11-02 00:00:00", "2026-11-03 00:00:00"]),
	],
)
def test_isc_grammar(cron, expected):
	assert fires(cron, len(expected)) == expected


# --- next_fire_times against the independent reference, over random rules -------------------

ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago"]


def _name(value: int, names: list[str], first: int, rng: random.Random) -> str:
	if rng.random() < 0.3 and 0 <= value - first < len(names):
		name = names[value - first]
		return rng.choice([name, name.upper(), name.capitalize()])
	return str(value)


def _random_field(rng: random.Random, low: int, high: int, names: list[str] | None = None) -> str:
	def value(v: int) -> str:
		return _name(v, names, 1 if low == 1 else 0, rng) if names else str(v)

	roll = rng.random()
	if roll < 0.3:
		return "*"
	if roll < 0.4:
		return f"*/{rng.randint(1, high - low + 1)}"
	parts = []
	for _ in range(rng.choice([1, 1, 1, 2, 3])):
		first = rng.randint(low, high)
		if rng.random() < 0.4:
			parts.append(value(first))
			continue
		if rng.random() < 0.15:  # 'n/s', the one extension
			parts.append(f"{value(first)}/{rng.randint(1, high - low + 1)}")
			continue
		last = first if rng.random() < 0.25 else rng.randint(first, high)
		part = f"{value(first)}-{value(last)}"
		if rng.random() < 0.3:
			part += f"/{rng.randint(1, last - first + 1)}"
		parts.append(part)
	return ",".join(parts)


def random_rule(rng: random.Random, year: int) -> str:
	fields = [
		_random_field(rng, 0, 59),
		_random_field(rng, 0, 23),
		_random_field(rng, 1, 31),
		_random_field(rng, 1, 12, MONTH_NAMES),
		_random_field(rng, 0, 7, DOW_NAMES),
	]
	roll = rng.random()
	if roll < 0.04:  # days that never come, ANDed with a day of week starting with '*'
		fields[2] = rng.choice(["30", "31", "30-31", "31-31"])
		fields[3] = rng.choice(["feb", "2", "Feb-feb", "apr,jun", "sep,11"]) if fields[2] == "31" else "feb"
		fields[4] = rng.choice(["*", "*/1", "*/2"])
		return " ".join(fields)
	if roll < 0.1:
		return " ".join([rng.choice(["0", "*/20", "5,35", "10-12", "7-7"]), *fields])
	if roll < 0.2:
		first = year + rng.randint(0, 2)
		years = rng.choice([f"{first}", f"{first}-{first + 2}", f"{first},{first + 3}", "*"])
		return " ".join([rng.choice(["0", "30", "0-1"]), *fields, years])
	return " ".join(fields)


def _reference_instants(wall: datetime, tz: ZoneInfo, wildcard: bool) -> list[datetime]:
	"""ISC cron's instants for one matching wall time (both, first only, the jump, or none)."""
	candidates = sorted({wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)})
	real = [u for u in candidates if u.astimezone(tz).replace(tzinfo=None) == wall]
	if real:
		return real if wildcard else real[:1]
	if wildcard:
		return []
	# A skipped wall time: a fixed rule runs at the first instant after the jump (the jump itself;
	# zones change offset on whole minutes).
	instant = candidates[0].replace(second=0)
	offset = instant.astimezone(tz).utcoffset()
	while instant.astimezone(tz).utcoffset() == offset:
		instant += timedelta(minutes=1)
	return [instant]


def reference(cron: str, zone: str, after: datetime, count: int, horizon_years: int = 30) -> list[datetime]:
	"""The first ``count`` ISC fire times after ``after``, day by day (written without croniter)."""
	fields = cron.split()
	seconds_text, years = "0", None
	if len(fields) >= 6:
		seconds_text, fields = fields[0], fields[1:]
	if len(fields) == 6:
		years, fields = _field_values(fields[5], 1970, 2099), fields[:5]
	minute, hour, dom, month, dow = fields
	wildcard = minute.startswith("*") or hour.startswith("*")
	times = [
		(h, m, s)
		for h in sorted(_field_values(hour, 0, 23))
		for m in sorted(_field_values(minute, 0, 59))
		for s in sorted(_field_values(seconds_text, 0, 59))
	]
	months, doms, dows = _field_values(month, 1, 12, MONTH_NAMES), _field_values(dom, 1, 31), _dow_values(dow)
	anded = dom.startswith("*") or dow.startswith("*")
	tz = ZoneInfo(zone)
	day = after.astimezone(tz).date() - timedelta(days=1)
	end = day + timedelta(days=366 * horizon_years)
	found: set[datetime] = set()
	while day <= end:
		if years is not None and day.year > max(years):
			break
		in_dom, in_dow = day.day in doms, (day.weekday() + 1) % 7 in dows
		if (
			day.month in months
			and (years is None or day.year in years)
			and ((in_dom and in_dow) if anded else (in_dom or in_dow))
		):
			midnight = datetime(day.year, day.month, day.day)
			offset = midnight.replace(tzinfo=tz).utcoffset()
			steady = offset == (midnight + timedelta(days=1)).replace(tzinfo=tz).utcoffset()
			for h, m, s in times:
				wall = midnight.replace(hour=h, minute=m, second=s)
				if steady:  # no change of offset that day: the wall time is one instant
					instants = [(wall - offset).replace(tzinfo=UTC)]
				else:
					instants = _reference_instants(wall, tz, wildcard)
				found.update(t for t in instants if t > after)
			if len(found) >= count and end > day + timedelta(days=2):
				end = day + timedelta(days=2)  # a repeated hour can put a day's times after the next's
		day += timedelta(days=1)
	return sorted(found)[:count]


@lru_cache(maxsize=None)
def _changes(zone: str) -> tuple[datetime, ...]:
	return tuple(transitions(zone, 2026) + transitions(zone, 2027))


def _random_after(rng: random.Random, zone: str) -> datetime:
	if rng.random() < 0.5 and _changes(zone):  # close to a daylight-saving change of 2026 or 2027
		change = rng.choice(_changes(zone))
		return change + timedelta(minutes=rng.randint(-300, 300), seconds=rng.randint(0, 59))
	return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 3 * 365 * 86400))


def test_next_fire_times_match_the_reference_on_random_rules():
	rng = random.Random(20260514)
	checked = never = 0
	for index in range(1000):
		zone = ZONES[index % len(ZONES)]
		after = _random_after(rng, zone)
		cron = random_rule(rng, after.year)
		expected = reference(cron, zone, after, 6)
		try:
			got = next_fire_times(cron, zone, after, 6)
		except CronError as exc:
			assert "never fires" in str(exc), (cron, str(exc))
			assert not reference(cron, zone, datetime(1999, 12, 31, tzinfo=UTC), 1, horizon_years=29), cron
			never += 1
			continue
		limit = after + timedelta(days=365 * 29)  # the reference looks 30 years ahead
		assert [t for t in got if t < limit] == [t for t in expected if t < limit], (cron, zone, after)
		checked += 1
	print(f"random rules: {checked} compared, {never} refused as never firing")
	assert checked > 800 and never > 10, (checked, never)


@pytest.mark.parametrize(
	"cron",
	[
		"30 2 * * 1-1",
		"*/20 1-3 */1 * 0",
		"15 2 1,15 * sun",
		"0,30 * * * sat-7",
		"45 1 * * *",
		"*/7 2 * mar,oct *",
	],
)
@pytest.mark.parametrize("zone", ZONES[1:])
def test_isc_rules_across_every_dst_change_of_2026(cron, zone):
	tz = ZoneInfo(zone)
	instant = datetime(2026, 1, 1, tzinfo=UTC)
	offset = instant.astimezone(tz).utcoffset()
	while instant.year == 2026:
		instant += timedelta(hours=1)
		if instant.astimezone(tz).utcoffset() != offset:
			offset = instant.astimezone(tz).utcoffset()
			start = instant - timedelta(days=1, minutes=7)
			assert next_fire_times(cron, zone, start, 12) == reference(cron, zone, start, 12), (cron, start)


# --- entry points: the Desk's frequency_to_cron, the CLI, the daemon ------------------------


def test_desk_cron_style_refuses_with_the_same_reason():
	for cron in ("0 0 31 2 *", "61 * * * *", "5-1 * * * *", "0 0 L * *", "0 0 0 1 1 * 2001-2003"):
		with pytest.raises(CronError) as info:
			frequency_to_cron("Cron Style", cron_string=cron)
		assert str(info.value) == refusal(cron)
	assert frequency_to_cron("Cron Style", cron_string=" 30  2 * * 1-1 ") == "30 2 * * 1-1"


def run_cli(*args: str) -> subprocess.CompletedProcess:
	return subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", *args],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=60,
	)


@pytest.mark.parametrize(
	"cron,reason",
	[
		("0 0 31 2 *", "never fires: day-of-month 31 never occurs in February."),
		("* * 30 2 *", "never fires: day-of-month 30 never occurs in February."),
		("0 0 0 1 1 * 2001-2003", "never fires again: years 2001-2003 are all in the past."),
		("61 * * * *", "is invalid: minute 61 is outside 0-59."),
		("5-1 * * * *", "is invalid: minute range 5-1 runs backwards; ISC cron sets nothing for it"),
	],
)
def test_cli_next_runs_refuses_with_exit_2_and_the_reason(cron, reason):
	result = run_cli("next-runs", "--cron", cron)
	assert result.returncode == 2 and result.stdout == "", result
	assert result.stderr.startswith(f"btu-scheduler: Cron string {cron!r} ") and reason in result.stderr


def test_cli_next_runs_reads_isc_rules():
	result = run_cli("next-runs", "--cron", "30 2 * * 1-1", "--after", "2026-01-01T00:00:00Z", "--count", "2")
	assert result.returncode == 0 and result.stdout.split() == [
		"2026-01-05T02:30:00Z",
		"2026-01-12T02:30:00Z",
	]
	result = run_cli(
		"next-runs", "--cron", "0 12 */10 * 1", "--after", "2026-01-01T00:00:00Z", "--count", "2"
	)
	assert result.stdout.split() == ["2026-05-11T12:00:00Z", "2026-06-01T12:00:00Z"]


def _next_runs(client) -> dict[str, float]:
	return {k.decode(): v for k, v in client.zrange(KEYS.next_runs(SITE), 0, -1, withscores=True)}


def _errors(client) -> dict[str, str]:
	return {k.decode(): v.decode() for k, v in client.hgetall(KEYS.errors(SITE)).items()}


def test_daemon_plans_isc_rules_and_reports_the_refused_ones(site_db, start_daemon, redis_client):
	site_db.add_task("BTU-00001", RECORD)
	good = {"TS-MONDAYS": "30 2 * * 1-1", "TS-AND": "0 12 */10 * 1", "TS-FIVE": "5-5 * * * *"}
	bad = {
		"TS-FEB31": ("0 0 31 2 *", "never fires: day-of-month 31 never occurs in February"),
		"TS-FEB30": ("* * 30 2 *", "never fires: day-of-month 30 never occurs in February"),
		"TS-PAST": ("0 0 0 1 1 * 2001-2003", "never fires again: years 2001-2003 are all in the past"),
		"TS-MIN61": ("61 * * * *", "minute 61 is outside 0-59"),
		"TS-WRAP": ("5-1 * * * *", "minute range 5-1 runs backwards"),
		"TS-LAST": ("0 0 L * *", "'L' (the last day) is croniter syntax"),
	}
	for name, cron in good.items():
		site_db.add_schedule(name, "BTU-00001", cron)
	for name, (cron, _reason) in bad.items():
		site_db.add_schedule(name, "BTU-00001", cron)
	started = datetime.now(UTC)
	daemon = start_daemon()
	wait_for(lambda: set(_next_runs(redis_client)) == set(good), 20, what="the valid schedules in Redis")
	wait_for(lambda: set(_errors(redis_client)) == set(bad), 20, what="a reason for each refused one")
	runs, errors = _next_runs(redis_client), _errors(redis_client)
	for name, (cron, reason) in bad.items():
		assert errors[name].startswith(f"Cron string {cron!r} ") and reason in errors[name], errors[name]
		# The consumer logs a refused schedule just after writing its reason to Redis: wait for the line.
		line = rf"event=schedule_invalid site={re.escape(SITE)} schedule={name} "
		wait_for(lambda: re.search(line, daemon.output()), 10, what=f"the log line of {name}")
	# planned as ISC cron reads them (the schedules' zone is UTC)
	monday = datetime.fromtimestamp(runs["TS-MONDAYS"], UTC)
	assert (monday.weekday(), monday.hour, monday.minute) == (0, 2, 30)
	assert monday - started <= timedelta(days=7)
	anded = datetime.fromtimestamp(runs["TS-AND"], UTC)
	assert anded.weekday() == 0 and anded.day in (1, 11, 21, 31) and anded.hour == 12
	five = datetime.fromtimestamp(runs["TS-FIVE"], UTC)
	assert five.minute == 5 and five - started <= timedelta(hours=1)
