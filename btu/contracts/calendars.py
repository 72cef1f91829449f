"""Business calendars: a schedule's fire times on holidays are skipped, or moved to the next working day.

A schedule may follow a holiday list (ERPNext's and HRMS's *Holiday List*, or BTU's own *BTU
Holiday List*): a set of dates, read in the schedule's own zone. Its rule's fire times are then
changed by one of two policies:

* ``Skip`` - a fire time whose date (in the schedule's zone) is a holiday does not happen.
* ``Next Working Day`` - it happens instead at the same wall time on the first later date that is
  not a holiday. Moved times that meet a fire time of that day (a daily rule after a long weekend)
  are one run: a schedule runs at most once per instant, as always.

The result is again a plain sequence of fire times (strictly increasing, whole seconds), so
everything the daemon does with a rule's fire times (exactly once per fire time, misfire grace,
catch-up, ``fires_at``) holds unchanged. One-shots are not affected: their time is explicit.

Frappe-free: the daemon, the Desk and the CLI share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

SKIP = "Skip"
NEXT_WORKING_DAY = "Next Working Day"
POLICIES = (SKIP, NEXT_WORKING_DAY)
DEFAULT_POLICY = SKIP
# The holiday list doctypes a schedule may follow: ERPNext/HRMS's, and BTU's own for plain Frappe sites.
FRAPPE_HOLIDAY_LIST = "Holiday List"
BTU_HOLIDAY_LIST = "BTU Holiday List"
HOLIDAY_LIST_DOCTYPES = (BTU_HOLIDAY_LIST, FRAPPE_HOLIDAY_LIST)
# Their child tables (the dates): ``holiday_date`` rows whose ``parent`` is the list.
HOLIDAY_TABLES = {BTU_HOLIDAY_LIST: "BTU Holiday", FRAPPE_HOLIDAY_LIST: "Holiday"}
# The dates a schedule carries: from this many days ago (moves out of a recent run of holidays) to
# this many days ahead (a list for years beyond is read again by a later refresh).
DAYS_BEHIND = 40
DAYS_AHEAD = 3 * 366
UTC = timezone.utc

NextAfter = Callable[[int], "int | None"]  # a rule's first fire time strictly after t (Unix s)


class CalendarError(ValueError):
	"""A holiday policy or list that cannot be used; the message says what was wrong."""


def normalize_policy(value: object) -> str:
	"""The policy named by ``value`` (blank: Skip); CalendarError for anything else."""
	text = str(value or "").strip()
	if not text:
		return DEFAULT_POLICY
	for policy in POLICIES:
		if text.lower() == policy.lower():
			return policy
	raise CalendarError(f"On Holiday {text[:60]!r} is not one of {', '.join(POLICIES)}")


def normalize_list_doctype(value: object) -> str:
	"""The holiday list doctype named by ``value`` (blank: BTU's own); CalendarError otherwise."""
	text = str(value or "").strip()
	if not text:
		return BTU_HOLIDAY_LIST
	if text not in HOLIDAY_LIST_DOCTYPES:
		raise CalendarError(
			f"Holiday List Type {text[:60]!r} is not one of {', '.join(HOLIDAY_LIST_DOCTYPES)}"
		)
	return text


def date_window(today: date) -> tuple[date, date]:
	"""The dates a schedule carries: [today - DAYS_BEHIND, today + DAYS_AHEAD)."""
	return today - timedelta(days=DAYS_BEHIND), today + timedelta(days=DAYS_AHEAD)


def parse_dates(values: Iterable[object]) -> tuple[str, ...]:
	"""Holiday dates as sorted, unique ISO strings (``date``, ``datetime`` or ``YYYY-MM-DD`` text)."""
	found: set[str] = set()
	for value in values:
		if isinstance(value, datetime):
			value = value.date()
		if isinstance(value, date):
			found.add(value.isoformat())
		elif value:
			try:
				found.add(date.fromisoformat(str(value).strip()[:10]).isoformat())
			except ValueError:
				raise CalendarError(f"holiday date {str(value)[:40]!r} is not a date (YYYY-MM-DD)") from None
	return tuple(sorted(found))


@dataclass(frozen=True)
class BusinessCalendar:
	"""Holidays (ISO dates, in the schedule's zone) and what happens to a fire time on one."""

	holidays: tuple[str, ...]
	policy: str = DEFAULT_POLICY

	def next_after(self, rule_next: NextAfter, zone: str, after: int) -> int | None:
		"""The first fire time strictly after ``after`` of the rule ``rule_next`` under this calendar."""
		days = _holiday_set(self.holidays)
		if not days:
			return rule_next(after)
		tz = ZoneInfo(zone)
		if self.policy == NEXT_WORKING_DAY:
			return _next_moved(rule_next, tz, days, after)
		return _next_skipping(rule_next, tz, days, after)


@lru_cache(maxsize=256)
def _holiday_set(holidays: tuple[str, ...]) -> frozenset[date]:
	return frozenset(date.fromisoformat(day) for day in holidays)


def _local_date(ts: int, tz: ZoneInfo) -> date:
	return datetime.fromtimestamp(ts, tz).date()


def _day_start(day: date, tz: ZoneInfo) -> int:
	"""The first second of ``day`` in the zone (midnight; where midnight is skipped, just after)."""
	return int(datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).timestamp())


def _at_wall_time(day: date, ts: int, tz: ZoneInfo) -> int:
	"""The instant of ``ts``'s wall time on ``day`` in the zone (the first of a repeated hour)."""
	wall = datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
	return int(datetime.combine(day, wall.time(), tzinfo=tz).astimezone(UTC).timestamp())


def _next_working_day(day: date, days: frozenset[date]) -> date:
	following = day + timedelta(days=1)
	while following in days:
		following += timedelta(days=1)
	return following


def _next_skipping(rule_next: NextAfter, tz: ZoneInfo, days: frozenset[date], after: int) -> int | None:
	found = rule_next(after)
	for _ in range(len(days) + 1):  # each step leaves one holiday behind
		if found is None or _local_date(found, tz) not in days:
			return found
		day_end = _day_start(_local_date(found, tz) + timedelta(days=1), tz) - 1
		found = rule_next(max(found, day_end))
	return found


def _next_moved(rule_next: NextAfter, tz: ZoneInfo, days: frozenset[date], after: int) -> int | None:
	"""The earliest of: the rule's next fire time on a working day, and the moved times of fire
	times on holidays. A holiday's fire times land on the working day after its run of holidays,
	so the search starts at the first day of the run of holidays just before ``after``'s date."""
	today = _local_date(after, tz)
	first = today
	while first - timedelta(days=1) in days:
		first -= timedelta(days=1)
	cursor = min(after, _day_start(first, tz) - 1)
	best: int | None = None
	for _ in range(4 * len(days) + 8):
		found = rule_next(cursor)
		if found is None or (best is not None and found >= best):
			break
		day = _local_date(found, tz)
		if day not in days:
			if found > after:
				return found if best is None else min(best, found)
			cursor = after  # a working day's fire times up to ``after`` are over
			continue
		target = _next_working_day(day, days)
		moved = _at_wall_time(target, found, tz)
		if moved > after:
			best = moved if best is None else min(best, moved)
			cursor = max(found, _day_start(day + timedelta(days=1), tz) - 1)  # later ones move later
		else:
			# Moved onto ``after``'s own day before it: go on from this holiday's same wall time.
			cursor = max(found, _at_wall_time(day, after, tz))
	return best
