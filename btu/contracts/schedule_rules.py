"""Cron rules for BTU: one implementation shared by the daemon, the Desk and the CLI.

Frappe-free on purpose. A cron rule means what it means to ISC (Vixie) cron, whichever
croniter release is installed: ``parse_cron`` reads every field itself against ISC's grammar
and hands croniter only plain comma lists (and ``*``), which every croniter release since
2.0 reads the same way. The rule is read against the wall clock of an IANA time zone; fire
times are returned as aware UTC datetimes (README "Time").

* Fields: ``min hour dom month dow`` (5), seconds first (6), seconds first and year last (7),
  or an alias (``@hourly``, ``@daily``, ``@midnight``, ``@weekly``, ``@monthly``,
  ``@yearly``, ``@annually``). A field is a comma list of ``*``, ``n``, ``a-b``, ``*/s`` and
  ``a-b/s``; months and days of week also take ``jan``-``dec`` and ``sun``-``sat`` (any
  case); day of week 0 and 7 are both Sunday. ``a-a`` is the single value ``a``.
* One extension, with the meaning croniter always gave it: ``n/s`` is ``n-last/s`` (the
  field's last value; for the day of week 6, Saturday). ISC cron has no such form.
* Refused, each with a message naming the field: values out of range, a range whose ends are
  backwards (``5-1``: ISC sets nothing for it), step 0, and croniter-only syntax (``L``,
  ``W``, ``#``, ``?``, ``H``, ``R``), which ISC cron has not.
* Day of month and day of week: when either field starts with ``*`` a day must match both
  (AND); when both are restricted a day matching either one is enough (OR).
* A rule that can never fire is refused (``0 0 30 2 *``; a 7-field rule with no matching
  date in its years); so is a 7-field rule whose last fire time is past in every zone.
* Daylight saving follows ISC cron: a *fixed* rule (minute and hour fields do not start with
  ``*``) fires once at the first occurrence of a repeated wall time, and once at the first
  instant after a skipped wall time; a *wildcard* rule (minute or hour field starts with
  ``*``) fires whenever the wall clock matches, so it keeps its real-time rhythm.
"""

from __future__ import annotations

import bisect
import calendar
import heapq
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError

UTC = timezone.utc

ALIASES: dict[str, str] = {
	"@yearly": "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0",
	"@daily": "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly": "0 * * * *",
}

FREQUENCIES = ("Hourly", "Daily", "Weekly", "Monthly", "Yearly", "Cron Style")
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTHS = (
	"January",
	"February",
	"March",
	"April",
	"May",
	"June",
	"July",
	"August",
	"September",
	"October",
	"November",
	"December",
)
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# The largest daylight-saving shift of any IANA zone is 2 h; look a little further.
_DST_WINDOW = timedelta(hours=3)
# Every UTC offset in use lies within -12 h .. +14 h: a wall time W happens, in any zone, at
# an instant no later than W + 12 h. A rule whose last wall time is more than this before
# the UTC clock has fired for the last time everywhere.
_PAST_MARGIN = timedelta(hours=14)
MAX_CRON_LENGTH = 1000


class CronError(ValueError):
	"""A cron string or frequency setting that cannot be turned into fire times."""


class TimeZoneError(ValueError):
	"""A time zone name that is not a known IANA zone."""


@dataclass(frozen=True)
class CronRule:
	"""A parsed, validated cron string."""

	expression: str  # as written, whitespace collapsed, aliases expanded (stored and shown)
	seconds_first: bool  # 6- and 7-field forms
	wildcard: bool  # minute or hour field starts with "*": keeps real-time rhythm over DST
	croniter_expression: str  # plain lists in croniter's own field order (seconds last)
	day_or: bool  # ISC OR of day of month and day of week (both restricted); else AND
	years: tuple[int, ...] | None  # 7-field form: the years it may fire in (None = any)
	last_wall: datetime | None  # the last wall time it matches (only when years are bounded)


@dataclass(frozen=True)
class _Field:
	name: str
	low: int
	high: int
	names: tuple[str, ...] = ()  # names[i] stands for low + i


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, tuple(m[:3].lower() for m in MONTHS))
_DOW = _Field("day-of-week", 0, 7, tuple(d[:3].lower() for d in WEEKDAYS))  # 7 = Sunday, no name
_YEAR = _Field("year", 1970, 2099)
_LAYOUTS = {
	5: (_MINUTE, _HOUR, _DOM, _MONTH, _DOW),
	6: (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW),
	7: (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW, _YEAR),
}
_DIGITS = re.compile(r"[0-9]+")
_LETTERS = re.compile(r"[A-Za-z]+")
_CRONITER_LAST = re.compile(r"L|LW|[0-9]*L|L[0-9]+|L-[0-9]+", re.IGNORECASE)
_CRONITER_NEAREST = re.compile(r"[0-9]+W", re.IGNORECASE)
_CRONITER_HASHED = re.compile(r"[HR](\(|/|$)", re.IGNORECASE)  # H, H(0-29), H/5, R


def _invalid(text: str, reason: str) -> CronError:
	return CronError(f"Cron string {text!r} is invalid: {reason}.")


def _bounds(spec: _Field) -> str:
	names = f" or {spec.names[0]}-{spec.names[-1]}" if spec.names else ""
	return f"{spec.low}-{spec.high}{names}"


def _foreign_syntax(spec: _Field, token: str, part: str) -> str:
	"""Why ``token`` (a piece of ``part``) is not ISC syntax, naming croniter's extensions."""
	if "?" in part:
		return f"{spec.name} '?' is Quartz and croniter syntax that ISC cron does not have; write '*'"
	if "#" in part:
		return (
			f"{spec.name} {part!r}: '#' (the n-th weekday of a month) is croniter syntax "
			"that ISC cron does not have"
		)
	if _CRONITER_HASHED.match(part):
		return f"{spec.name} {part!r}: hashed and random values ('H', 'R') are croniter syntax that ISC cron does not have"
	if spec in (_DOM, _DOW) and _CRONITER_LAST.fullmatch(token):
		return f"{spec.name} {part!r}: 'L' (the last day) is croniter syntax that ISC cron does not have"
	if spec is _DOM and _CRONITER_NEAREST.fullmatch(token):
		return (
			f"{spec.name} {part!r}: 'W' (the nearest weekday) is croniter syntax that ISC cron does not have"
		)
	shown = token if len(token) <= 40 else token[:40] + "..."
	return (
		f"{spec.name} {shown!r} is not a value from {_bounds(spec)}; a field is a comma list "
		"of '*', n, a-b, */s or a-b/s"
	)


def _number(text: str, spec: _Field, token: str, part: str) -> int:
	"""One value of a field: digits, or (months, days of week) a three-letter name."""
	if _DIGITS.fullmatch(token):
		value = int(token) if len(token) <= 9 else spec.high + 1
		if not spec.low <= value <= spec.high:
			shown = token if len(token) <= 20 else token[:20] + "..."
			raise _invalid(text, f"{spec.name} {shown} is outside {_bounds(spec)}")
		return value
	if spec.names and _LETTERS.fullmatch(token):
		lowered = token.lower()
		if lowered in spec.names:
			return spec.low + spec.names.index(lowered)
		if len(token) > 3 and lowered[:3] in spec.names:
			raise _invalid(
				text, f"{spec.name} {token!r}: cron knows only three-letter names; write {lowered[:3]!r}"
			)
		raise _invalid(text, f"{spec.name} {token!r} is not one of {', '.join(spec.names)}")
	raise _invalid(text, _foreign_syntax(spec, token, part))


def _parse_field(text: str, spec: _Field, field: str) -> frozenset[int]:
	"""The set of values of one field, by ISC cron's grammar (``list = range {"," range}``)."""
	values: set[int] = set()
	for part in field.split(","):
		if not part:
			raise _invalid(text, f"{spec.name} field {field!r} has an empty list element")
		base, slash, step_text = part.partition("/")
		step = 1
		if slash:
			if not _DIGITS.fullmatch(step_text):
				raise _invalid(text, f"{spec.name} step {step_text!r} in {part!r} is not a whole number")
			step = int(step_text) if len(step_text) <= 9 else spec.high + 1
			if step == 0:
				raise _invalid(text, f"{spec.name} step 0 in {part!r} must be 1 or more")
		if base == "*":
			low, high = spec.low, spec.high
		elif "-" in base:
			first, _, last = base.partition("-")
			low, high = _number(text, spec, first, part), _number(text, spec, last, part)
			if low > high:
				hint = (
					f"write {first}-7, 7 is Sunday too"
					if spec is _DOW and high == 0
					else f"to wrap around, list both parts: {low}-{spec.high},{spec.low}-{high}"
				)
				raise _invalid(
					text, f"{spec.name} range {base} runs backwards; ISC cron sets nothing for it; {hint}"
				)
		elif slash:
			# 'n/s' is not ISC syntax; croniter reads it as n up to the field's last value (for the
			# day of week 6, Saturday) and BTU keeps that meaning, so that rules written before BTU
			# parsed cron itself still mean what they meant. '7/s' is Sunday (croniter 7 alone
			# reads it as 0/s).
			low = _number(text, spec, base, part)
			high = max(6, low) if spec is _DOW else spec.high
		else:
			low = high = _number(text, spec, base, part)
		values.update(range(low, high + 1, step))
	return frozenset(values)


def _compact(values: frozenset[int] | set[int]) -> str:
	"""1,2,3,5 -> '1-3,5' (runs of three or more as ranges)."""
	ordered = sorted(values)
	parts: list[str] = []
	i = 0
	while i < len(ordered):
		j = i
		while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
			j += 1
		if j - i >= 2:
			parts.append(f"{ordered[i]}-{ordered[j]}")
			i = j + 1
		else:
			parts.append(str(ordered[i]))
			i += 1
	return ",".join(parts)


def _words(items: list[str], last: str = "or") -> str:
	return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _croniter_field(values: frozenset[int], spec: _Field) -> str:
	full = spec.high - spec.low + 1 - (1 if spec is _DOW else 0)  # day of week: 0-6 after 7 -> 0
	return "*" if len(values) == full else ",".join(str(v) for v in sorted(values))


def _last_wall(
	text: str,
	years: tuple[int, ...],
	months: frozenset[int],
	doms: frozenset[int],
	dows: frozenset[int],
	day_or: bool,
	times: tuple[int, int, int],
) -> datetime:
	"""The last wall time a rule with bounded years matches; CronError when it matches none."""
	for year in reversed(years):
		for month in sorted(months, reverse=True):
			for day in range(calendar.monthrange(year, month)[1], 0, -1):
				weekday = (date(year, month, day).weekday() + 1) % 7
				in_dom, in_dow = day in doms, weekday in dows
				if (in_dom or in_dow) if day_or else (in_dom and in_dow):
					return datetime(year, month, day, *times)
	span = f"year {years[0]}" if len(years) == 1 else f"years {_compact(set(years))}"
	raise CronError(
		f"Cron string {text!r} never fires: no date in {span} matches its day-of-month, month "
		"and day-of-week fields."
	)


def _parse(cron: str) -> CronRule:
	if cron is None or not str(cron).strip():
		raise CronError("Cron string is empty; expected 5 fields like '*/15 * * * *'.")
	text = " ".join(str(cron).split())
	if len(text) > MAX_CRON_LENGTH:
		raise CronError(
			f"Cron string is {len(text)} characters long; at most {MAX_CRON_LENGTH} are accepted."
		)
	lowered = text.lower()
	if lowered.startswith("@"):
		if lowered not in ALIASES:
			raise CronError(f"Cron alias {text!r} is not supported; use one of {', '.join(sorted(ALIASES))}.")
		text = ALIASES[lowered]
	fields = text.split(" ")
	if len(fields) not in _LAYOUTS:
		raise CronError(
			f"Cron string {text!r} has {len(fields)} fields; expected 5 (min hour day month weekday), "
			"6 (seconds first) or 7 (seconds first, year last)."
		)
	layout = _LAYOUTS[len(fields)]
	parsed = {spec.name: _parse_field(text, spec, field) for spec, field in zip(layout, fields)}
	named = dict(zip((spec.name for spec in layout), fields))
	seconds = parsed.get("second", frozenset({0}))
	minutes, hours, doms, months = parsed["minute"], parsed["hour"], parsed["day-of-month"], parsed["month"]
	dows = frozenset(0 if d == 7 else d for d in parsed["day-of-week"])
	# ISC cron: AND when either day field starts with '*', OR when both are restricted. An OR
	# with a full field is every day, which croniter is given as '* *'.
	dom_field, dow_field = _croniter_field(doms, _DOM), _croniter_field(dows, _DOW)
	either_star = named["day-of-month"].startswith("*") or named["day-of-week"].startswith("*")
	if not either_star and "*" in (dom_field, dow_field):
		dom_field = dow_field = "*"
		doms, dows = frozenset(range(1, 32)), frozenset(range(7))
	day_or = dom_field != "*" and dow_field != "*" and not either_star
	if day_or:
		# Days of month that none of the rule's months has never match: drop them (croniter up to
		# 2.0.7 raises "failed to find next date" for '0 0 30 2 1' instead of taking the Mondays).
		longest = max(_DAYS_IN_MONTH[month - 1] for month in months)
		doms = frozenset(day for day in doms if day <= longest)
		if doms:
			dom_field = _croniter_field(doms, _DOM)
		else:  # OR with a day that never comes: the day of week alone
			dom_field, doms, day_or = "*", frozenset(range(1, 32)), False
	years = None
	last_wall = None
	if "year" in parsed and _croniter_field(parsed["year"], _YEAR) != "*":
		years = tuple(sorted(parsed["year"]))
		last_wall = _last_wall(
			text, years, months, doms, dows, day_or, (max(hours), max(minutes), max(seconds))
		)
	elif not day_or and not any(day <= _DAYS_IN_MONTH[month - 1] for month in months for day in doms):
		month_names = _words([MONTHS[m - 1] for m in sorted(months)])
		raise CronError(
			f"Cron string {text!r} never fires: day-of-month {_compact(doms)} never occurs in {month_names}."
		)
	croniter_fields = [
		_croniter_field(minutes, _MINUTE),
		_croniter_field(hours, _HOUR),
		dom_field,
		_croniter_field(months, _MONTH),
		dow_field,
	]
	seconds_first = len(fields) >= 6
	if seconds_first:
		croniter_fields.append(_croniter_field(seconds, _SECOND))
	return CronRule(
		expression=text,
		seconds_first=seconds_first,
		wildcard=named["minute"].startswith("*") or named["hour"].startswith("*"),
		croniter_expression=" ".join(croniter_fields),
		day_or=day_or,
		years=years,
		last_wall=last_wall,
	)


_parse_cached = lru_cache(maxsize=4096)(_parse)


def _past_reason(rule: CronRule, now: datetime) -> str | None:
	"""Why a rule with bounded years never fires again anywhere at ``now`` (naive UTC), or None."""
	if rule.last_wall is None or rule.last_wall + _PAST_MARGIN >= now:
		return None
	years = rule.years or ()
	if years and years[-1] < now.year:
		if len(years) == 1:
			return f"year {years[0]} is in the past"
		return f"years {_compact(set(years))} are all in the past"
	return f"its last fire time, {rule.last_wall:%Y-%m-%d %H:%M:%S} (wall clock), is in the past"


def parse_cron(cron: str) -> CronRule:
	"""Parse and validate a cron string; raise CronError saying what is wrong.

	The one place that decides whether a rule is acceptable: syntax, ranges, names, steps,
	and whether it can fire at all. The parse is cached; the one check that depends on the
	clock (a 7-field rule whose years are over) is made afresh at every call.
	"""
	rule = _parse_cached(cron)
	if rule.last_wall is not None:
		reason = _past_reason(rule, datetime.now(UTC).replace(tzinfo=None))
		if reason:
			raise CronError(f"Cron string {rule.expression!r} never fires again: {reason}.")
	return rule


def normalize_cron(cron: str) -> str:
	"""Return the canonical form of ``cron`` (aliases expanded, spaces collapsed) or raise CronError."""
	return parse_cron(cron).expression


@lru_cache(maxsize=1024)
def validate_timezone(name: str) -> ZoneInfo:
	"""Return the ZoneInfo for an IANA name or raise TimeZoneError."""
	if name is None or not str(name).strip():
		raise TimeZoneError("Time zone is empty; expected an IANA name such as 'Europe/Paris' or 'UTC'.")
	text = str(name).strip()
	try:
		return ZoneInfo(text)
	except (ZoneInfoNotFoundError, ValueError, OSError):
		raise TimeZoneError(
			f"Unknown time zone {text!r}; expected an IANA name such as 'America/New_York' or 'UTC'."
		) from None


_local = threading.local()


def _iterator(rule: CronRule, start: datetime) -> croniter:
	"""A croniter for ``rule`` positioned at naive wall time ``start`` (cached per thread)."""
	cache: dict[str, croniter] | None = getattr(_local, "iterators", None)
	if cache is None:
		cache = _local.iterators = {}
	key = (rule.croniter_expression, rule.day_or)
	it = cache.get(key)
	if it is None:
		if len(cache) > 4096:
			cache.clear()
		# With a '*' day field croniter's OR and AND give the same days; its AND path is slower.
		dom, _, dow = rule.croniter_expression.split(" ")[2:5]
		day_or = rule.day_or or "*" in (dom, dow)
		it = cache[key] = croniter(rule.croniter_expression, start, day_or=day_or)
	else:
		it.set_current(start, force=True)
	return it


def _to_utc(after: datetime | float | int | None) -> datetime:
	if after is None:
		return datetime.now(UTC)
	if isinstance(after, (int, float)):
		return datetime.fromtimestamp(after, UTC)
	if after.tzinfo is None:
		raise ValueError("'after' must be timezone-aware (or a Unix timestamp)")
	return after.astimezone(UTC)


def _transition_after(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
	"""First UTC instant in (low, high] whose offset differs from low's (a DST jump)."""
	base = low.astimezone(zone).utcoffset()
	lo, hi = low, high
	while hi - lo > timedelta(seconds=1):
		mid = lo + (hi - lo) / 2
		if mid.astimezone(zone).utcoffset() == base:
			lo = mid
		else:
			hi = mid
	return hi.replace(microsecond=0)


def _instants(rule: CronRule, zone: ZoneInfo, wall: datetime) -> tuple[datetime | None, datetime | None]:
	"""Map one matching wall time to (primary instant, extra instant of a repeated hour)."""
	first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
	second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
	if first == second:
		return first, None
	first_back = first.astimezone(zone).replace(tzinfo=None)
	if first_back == wall:  # repeated wall time (fall back): both instants exist
		return first, (second if rule.wildcard else None)
	# skipped wall time (spring forward)
	if rule.wildcard:
		return None, None
	low, high = min(first, second), max(first, second)
	return _transition_after(zone, low, high), None


def _compute_next(rule: CronRule, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
	offset_now = after.astimezone(zone).utcoffset()
	offset_soon = (after + _DST_WINDOW).astimezone(zone).utcoffset()
	lookback = max(timedelta(0), offset_now - offset_soon)
	start = after.astimezone(zone).replace(tzinfo=None) - lookback
	if lookback:
		start -= timedelta(seconds=1)
	it = _iterator(rule, start)
	results: list[datetime] = []
	extras: list[datetime] = []

	def emit(instant: datetime) -> None:
		if instant > after and (not results or instant > results[-1]):
			results.append(instant)

	while len(results) < count:
		try:
			wall = it.get_next(datetime)
		except CroniterBadDateError:
			break  # the rule never matches again
		if rule.years is not None and wall.year not in rule.years:
			later = bisect.bisect_right(rule.years, wall.year)
			if later == len(rule.years):
				break  # its last year is over
			it.set_current(datetime(rule.years[later], 1, 1) - timedelta(seconds=1), force=True)
			continue
		primary, extra = _instants(rule, zone, wall)
		if extra is not None:
			heapq.heappush(extras, extra)
		if primary is None:
			continue
		while extras and extras[0] < primary and len(results) < count:
			emit(heapq.heappop(extras))
		if len(results) < count:
			emit(primary)
	return results[:count]


@lru_cache(maxsize=8192)
def _next_one_cached(expression: str, tz: str, after_second: int) -> datetime | None:
	found = _compute_next(
		_parse_cached(expression), validate_timezone(tz), datetime.fromtimestamp(after_second, UTC), 1
	)
	return found[0] if found else None


def next_fire_times(
	cron: str, tz: str, after: datetime | float | int | None = None, count: int = 1
) -> list[datetime]:
	"""The next ``count`` fire times of ``cron`` in zone ``tz`` strictly after ``after`` (default now).

	Returns aware UTC datetimes, fewer than ``count`` only when the rule stops matching.
	Raises CronError or TimeZoneError on bad input. "From now" (``after`` None) is
	``parse_cron``'s whole check, so a rule whose years are over is refused with its reason;
	from an explicit instant (the daemon's own stepping) such a rule simply has no more fire
	times.
	"""
	rule = parse_cron(cron) if after is None else _parse_cached(cron)
	zone = validate_timezone(tz)
	after_utc = _to_utc(after)
	if count < 1:
		return []
	if count == 1:
		# Fire times fall on whole seconds, so "after t" equals "after floor(t)": cacheable.
		found = _next_one_cached(rule.expression, str(tz).strip(), int(after_utc.timestamp() // 1))
		return [found] if found is not None else []
	return _compute_next(rule, zone, after_utc, count)


def next_fire_time(cron: str, tz: str, after: datetime | float | int | None = None) -> datetime | None:
	"""The next fire time, or None when the rule never matches again."""
	found = next_fire_times(cron, tz, after, 1)
	return found[0] if found else None


def _int_field(label: str, value: object, low: int, high: int, default: int | None) -> int:
	if value is None or (isinstance(value, str) and not value.strip()):
		if default is None:
			raise CronError(f"{label} is required for this frequency.")
		return default
	try:
		number = int(str(value).strip())
	except ValueError:
		raise CronError(f"{label} must be a whole number from {low} to {high}, not {value!r}.") from None
	if not low <= number <= high:
		raise CronError(f"{label} must be from {low} to {high}, not {number}.")
	return number


def _named_field(label: str, value: object, names: tuple[str, ...], first_number: int) -> int:
	"""A weekday or month given by name ('Monday', 'Mon') or number."""
	if value is None or not str(value).strip():
		raise CronError(f"{label} is required for this frequency.")
	text = str(value).strip()
	for index, name in enumerate(names):
		if text.lower() in (name.lower(), name[:3].lower()):
			return index + first_number
	if text.isdigit():
		return _int_field(label, text, first_number, first_number + len(names) - 1, None)
	raise CronError(f"{label} {text!r} is not one of {', '.join(names)}.")


def frequency_to_cron(
	run_frequency: str,
	minute: object = None,
	hour: object = None,
	day_of_week: object = None,
	day_of_month: object = None,
	month: object = None,
	cron_string: str | None = None,
) -> str:
	"""Turn the Desk's frequency fields into a 5-field cron string (Cron Style: validate ``cron_string``)."""
	frequency = (run_frequency or "").strip()
	if frequency == "Cron Style":
		return normalize_cron(cron_string or "")
	if frequency not in FREQUENCIES:
		raise CronError(
			f"Run frequency {run_frequency!r} is unknown; expected one of {', '.join(FREQUENCIES)}."
		)
	m = _int_field("Minute", minute, 0, 59, 0)
	if frequency == "Hourly":
		return f"{m} * * * *"
	h = _int_field("Hour", hour, 0, 23, 0)
	if frequency == "Daily":
		return f"{m} {h} * * *"
	if frequency == "Weekly":
		return f"{m} {h} * * {_named_field('Day of week', day_of_week, WEEKDAYS, 0)}"
	dom = _int_field("Day of month", day_of_month, 1, 31, None)
	if frequency == "Monthly":
		return f"{m} {h} {dom} * *"
	mon = _named_field("Month", month, MONTHS, 1)
	if dom > _DAYS_IN_MONTH[mon - 1]:
		raise CronError(f"{MONTHS[mon - 1]} has no day {dom}.")
	return f"{m} {h} {dom} {mon} *"


_EQUAL_ENDS = re.compile(r"^([0-9A-Za-z]+)-\1(/[0-9]+)?$", re.IGNORECASE)


def _without_equal_ends(field: str) -> str:
	"""'1-1' -> '1', 'apr-apr/2' -> 'apr' (cron-descriptor would say "Monday through Monday")."""
	return ",".join(_EQUAL_ENDS.sub(r"\1", part) for part in field.split(","))


def describe_cron(cron: str) -> str:
	"""Plain-words description of a cron string (falls back to the string itself).

	cron-descriptor reads a rule with both day fields restricted as "... or on Monday"
	whatever the fields start with; under ISC cron that is right only when neither starts
	with '*'. Such rules are described without their day of week, followed by our own words
	for the AND or the OR.
	"""
	rule = _parse_cached(cron)
	fields = [_without_equal_ends(field) for field in rule.expression.split(" ")]
	dom, month, dow = rule.croniter_expression.split(" ")[2:5]
	try:
		from cron_descriptor import Options, get_description

		options = Options()
		options.use_24hour_time_format = True
		dow_index = 5 if rule.seconds_first else 4
		if not fields[dow_index].startswith("*"):  # as one set: 'sun,7' would read "Sunday and Sunday"
			fields[dow_index] = "*" if dow == "*" else _compact({int(d) for d in dow.split(",")})
		if dom == "*" or dow == "*":
			return get_description(" ".join(fields), options)
		fields[dow_index] = "*"
		base = get_description(" ".join(fields), options)
		days = [WEEKDAYS[int(d)] for d in dow.split(",")]
		if rule.day_or:
			where = " in those months" if month != "*" else ""
			return f"{base}, and also on every {_words(days, 'and')}{where}"
		return f"{base}, only when that day is a {_words(days)}"
	except Exception:  # noqa: BLE001 - a description is cosmetic; never block a save for it
		return rule.expression
