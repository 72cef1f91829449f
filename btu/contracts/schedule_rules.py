"""Cron rules for BTU: one implementation shared by the daemon, the Desk and the CLI.

Frappe-free on purpose. A cron rule is read against the wall clock of an IANA time
zone; fire times are returned as aware UTC datetimes. Daylight saving follows ISC
cron (see DESIGN.md "Time"):

* a *fixed* rule (minute and hour fields do not start with ``*``) fires once at the
  first occurrence of a repeated wall time, and once at the first instant after a
  skipped wall time;
* a *wildcard* rule (minute or hour field starts with ``*``) fires whenever the wall
  clock matches, so it keeps its real-time rhythm through both changes.

Accepted forms: 5 fields (``min hour dom month dow``), 6 fields (seconds first),
7 fields (seconds first, year last), and the aliases ``@hourly``, ``@daily``,
``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``, ``@annually``.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

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


class CronError(ValueError):
	"""A cron string or frequency setting that cannot be turned into fire times."""


class TimeZoneError(ValueError):
	"""A time zone name that is not a known IANA zone."""


@dataclass(frozen=True)
class CronRule:
	"""A parsed, validated cron string."""

	expression: str  # normalised, aliases expanded
	seconds_first: bool  # 6- and 7-field forms
	wildcard: bool  # minute or hour field starts with "*": keeps real-time rhythm over DST


def normalize_cron(cron: str) -> str:
	"""Return the canonical form of ``cron`` (aliases expanded, spaces collapsed) or raise CronError."""
	return parse_cron(cron).expression


@lru_cache(maxsize=4096)
def parse_cron(cron: str) -> CronRule:
	"""Parse and validate a cron string; raise CronError saying what is wrong."""
	if cron is None or not str(cron).strip():
		raise CronError("Cron string is empty; expected 5 fields like '*/15 * * * *'.")
	text = " ".join(str(cron).split())
	lowered = text.lower()
	if lowered.startswith("@"):
		if lowered not in ALIASES:
			raise CronError(f"Cron alias {text!r} is not supported; use one of {', '.join(sorted(ALIASES))}.")
		text = ALIASES[lowered]
	fields = text.split(" ")
	if len(fields) not in (5, 6, 7):
		raise CronError(
			f"Cron string {text!r} has {len(fields)} fields; expected 5 (min hour day month weekday), "
			"6 (seconds first) or 7 (seconds first, year last)."
		)
	seconds_first = len(fields) >= 6
	try:
		croniter(text, datetime(2000, 1, 1), second_at_beginning=seconds_first)
	except (CroniterError, ValueError, KeyError, TypeError) as exc:
		raise CronError(f"Cron string {text!r} is invalid: {exc}") from None
	minute, hour = (fields[1], fields[2]) if seconds_first else (fields[0], fields[1])
	return CronRule(text, seconds_first, minute.startswith("*") or hour.startswith("*"))


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
	it = cache.get(rule.expression)
	if it is None:
		if len(cache) > 4096:
			cache.clear()
		it = cache[rule.expression] = croniter(rule.expression, start, second_at_beginning=rule.seconds_first)
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
		parse_cron(expression), validate_timezone(tz), datetime.fromtimestamp(after_second, UTC), 1
	)
	return found[0] if found else None


def next_fire_times(
	cron: str, tz: str, after: datetime | float | int | None = None, count: int = 1
) -> list[datetime]:
	"""The next ``count`` fire times of ``cron`` in zone ``tz`` strictly after ``after`` (default now).

	Returns aware UTC datetimes, fewer than ``count`` only when the rule stops matching.
	Raises CronError or TimeZoneError on bad input.
	"""
	rule = parse_cron(cron)
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


def describe_cron(cron: str) -> str:
	"""Plain-words description of a cron string (falls back to the string itself)."""
	rule = parse_cron(cron)
	try:
		from cron_descriptor import Options, get_description

		options = Options()
		options.use_24hour_time_format = True
		return get_description(rule.expression, options)
	except Exception:  # noqa: BLE001 - a description is cosmetic; never block a save for it
		return rule.expression
