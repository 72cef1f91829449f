"""A schedule's next run as the daemon confirmed it: its pending fire time with the rule that produced it.

The daemon writes, in one atomic script, a schedule's pending fire time (``btu:<site>:next_runs``)
and its timing (``btu:<site>:timings``: ``"<cron>|<zone>"``, a one-shot's ``"@once <ts>|<zone>"``);
a change of rule or zone replaces both together. A next run is *confirmed for the current rule*
when the timing stored beside it equals the timing of the schedule's row as it is now; otherwise
the daemon has not applied the edit yet (it is down, or the edit's socket message was lost), and
the time shown would be the old rule's. A confirmed time well in the past means the daemon is not
firing (down, paused, no leader). The Desk and ``btu-scheduler list`` show that, read with
``read_pending`` / ``read_upcoming`` and judged by ``confirmation``.

Frappe-free: both sides import it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .calendars import normalize_list_doctype, normalize_policy
from .fire_times import timing_suffix
from .jitter import normalize_jitter
from .redis_keys import RedisKeys
from .runs import ONCE, wall_time_to_timestamp
from .schedule_rules import frequency_to_cron

# A confirmed fire time older than this is reported overdue: the daemon enqueues within
# milliseconds, so a pending time this far past means nothing is firing it.
OVERDUE_AFTER_SECONDS = 30.0

CONFIRMED = "confirmed"  # the daemon plans it by the schedule's current rule
OVERDUE = "overdue"  # confirmed, but its time is past: the daemon is not firing (down, paused, no leader)
UNCONFIRMED = "unconfirmed"  # planned by another rule or zone: the daemon has not applied the edit yet
NOT_PLANNED = "not planned"  # the daemon holds no fire time for it


def timing_text(cron: str, zone: str, run_at: int | None = None, suffix: str = "") -> str:
	"""The value of ``btu:<site>:timings`` for a rule (or a one-shot's ``run_at``) in a zone; ``suffix``
	is what a business calendar and jitter add to a rule (``fire_times.timing_suffix``)."""
	if run_at is not None:
		return f"@once {int(run_at)}|{zone}"
	return f"{cron}{suffix}|{zone}"


def calendar_suffix_of_row(row: Mapping[str, Any]) -> str:
	"""The timing suffix of a schedule row's Holiday List, On Holiday and Jitter fields. Raises
	CalendarError or JitterError for values the daemon would refuse too."""
	holiday_list = (row.get("holiday_list") or "").strip()
	return timing_suffix(
		normalize_list_doctype(row.get("holiday_list_doctype")) if holiday_list else "",
		holiday_list,
		normalize_policy(row.get("on_holiday")),
		normalize_jitter(row.get("jitter_seconds")),
	)


def timing_of_row(row: Mapping[str, Any], default_zone: str) -> str:
	"""The timing of a BTU Task Schedule row as it is now (its fields as in SQL or a Frappe doc):
	its own ``cron_timezone``, else ``default_zone`` (BTU Configuration's). Raises CronError,
	TimeZoneError, RunAtError, CalendarError or JitterError for a row the daemon would refuse too."""
	zone = (row.get("cron_timezone") or "").strip() or default_zone
	if (row.get("run_frequency") or "").strip() == ONCE:
		return timing_text("", zone, wall_time_to_timestamp(row.get("run_at"), zone))
	cron = frequency_to_cron(
		row.get("run_frequency") or "Cron Style",
		row.get("minute"),
		row.get("hour"),
		row.get("day_of_week"),
		row.get("day_of_month"),
		row.get("month"),
		row.get("cron_string"),
	)
	return timing_text(cron, zone, suffix=calendar_suffix_of_row(row))


@dataclass(frozen=True)
class Pending:
	"""What the daemon holds for one schedule: its next fire time and the timing it was planned by."""

	schedule: str
	fire_time: int | None  # Unix s; None: no fire time (not planned, or its rule never fires again)
	timing: str | None  # "<cron>|<zone>" or "@once <ts>|<zone>"; None: unknown to the daemon

	@property
	def rule(self) -> str:
		"""The rule part for people: the cron string, or "once"."""
		text = (self.timing or "").rpartition("|")[0]
		return "once" if text.startswith("@once ") else text

	@property
	def zone(self) -> str:
		return (self.timing or "").rpartition("|")[2]


# KEYS: next_runs, timings. ARGV: how many. The first ARGV[1] members with their scores, and the
# timing of each, in one atomic read (an edit between two reads would pair a new rule with an old time).
UPCOMING_LUA = """
local rows = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], rows[i]) or ''
end
return out
"""


def _text(value: Any) -> str:
	return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_upcoming(client: Any, keys: RedisKeys, site: str, count: int) -> list[Pending]:
	"""The site's next ``count`` fire times, earliest first, each with its timing (one atomic read)."""
	if count < 1:
		return []
	flat = client.eval(UPCOMING_LUA, 2, keys.next_runs(site), keys.timings(site), count)
	return [
		Pending(_text(flat[i]), int(float(_text(flat[i + 1]))), _text(flat[i + 2]) or None)
		for i in range(0, len(flat), 3)
	]


def read_pending(client: Any, keys: RedisKeys, site: str, names: list[str]) -> dict[str, Pending]:
	"""The fire time and timing of each named schedule, read in one MULTI (an atomic snapshot)."""
	if not names:
		return {}
	pipe = client.pipeline(transaction=True)
	for name in names:
		pipe.zscore(keys.next_runs(site), name)
	pipe.hmget(keys.timings(site), names)
	*scores, timings = pipe.execute()
	return {
		name: Pending(name, None if score is None else int(score), _text(timing) if timing else None)
		for name, score, timing in zip(names, scores, timings)
	}


def confirmation(pending: Pending | None, current_timing: str | None, now: float | None = None) -> str:
	"""CONFIRMED, OVERDUE, UNCONFIRMED or NOT_PLANNED for a schedule whose row has ``current_timing``
	(None: not checked, e.g. the database is away: only the time is judged)."""
	if pending is None or pending.fire_time is None:
		return NOT_PLANNED
	if current_timing is not None and pending.timing != current_timing:
		return UNCONFIRMED
	now = time.time() if now is None else now
	return OVERDUE if pending.fire_time < now - OVERDUE_AFTER_SECONDS else CONFIRMED


__all__ = [
	"CONFIRMED",
	"NOT_PLANNED",
	"OVERDUE",
	"OVERDUE_AFTER_SECONDS",
	"UNCONFIRMED",
	"Pending",
	"calendar_suffix_of_row",
	"confirmation",
	"read_pending",
	"read_upcoming",
	"timing_of_row",
	"timing_text",
]
