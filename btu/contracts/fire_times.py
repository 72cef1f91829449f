"""A recurring schedule's fire times: its cron rule in its zone, then its business calendar, then its
jitter (``calendars``, ``jitter``). The daemon plans and fires these; *Show next runs*, the list's
Next Run, the alerts and ``btu-scheduler next-runs --schedule`` show and judge the same ones.

Frappe-free: both sides import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import jitter as jitter_rule
from .calendars import NEXT_WORKING_DAY, BusinessCalendar
from .schedule_rules import next_fire_time


@dataclass(frozen=True)
class FireTimes:
	cron: str
	zone: str
	calendar: BusinessCalendar | None = None
	jitter: int = 0
	key: str = ""  # jitter.identity(site, schedule): what the delays are derived from

	def next_after(self, after: float) -> int | None:
		"""The first fire time strictly after ``after`` (Unix s), None when there is none."""
		after_second = math.floor(after)  # fire times are whole seconds
		if self.jitter > 0:
			return jitter_rule.next_after(self.key, self.jitter, self._calendar_next, after_second)
		return self._calendar_next(after_second)

	def next_times(self, after: float, count: int) -> list[int]:
		found: list[int] = []
		cursor: float = after
		while len(found) < count:
			following = self.next_after(cursor)
			if following is None:
				break
			found.append(following)
			cursor = following
		return found

	def rule_time(self, fire_ts: int) -> int:
		"""The time the rule (and calendar) gave before jitter: ``fire_ts`` itself without jitter."""
		if self.jitter <= 0:
			return fire_ts
		found = jitter_rule.rule_time(self.key, self.jitter, self._calendar_next, fire_ts)
		return fire_ts if found is None else found

	def _rule_next(self, after: int) -> int | None:
		found = next_fire_time(self.cron, self.zone, after)
		return int(found.timestamp()) if found is not None else None

	def _calendar_next(self, after: int) -> int | None:
		if self.calendar is None:
			return self._rule_next(after)
		return self.calendar.next_after(self._rule_next, self.zone, after)


def timing_suffix(holiday_doctype: str, holiday_list: str, policy: str, jitter: int) -> str:
	"""What a calendar and jitter add to a rule in its timing (``pending.timing_text``): a change of
	either replans the schedule, as a change of rule does. Empty without both (older timings hold)."""
	parts = []
	if holiday_list:
		what = "holidays to the next working day" if policy == NEXT_WORKING_DAY else "skip holidays"
		parts.append(f"{what} ({holiday_doctype} {holiday_list})")
	if jitter > 0:
		parts.append(f"jitter up to {jitter} s")
	return "".join(f", {part}" for part in parts)


__all__ = ["FireTimes", "timing_suffix"]
