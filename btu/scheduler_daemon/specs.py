"""Turn a schedule's SQL row into what the scheduler needs to enqueue its runs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

from btu.contracts import jitter as jitter_rule
from btu.contracts.arguments import ArgumentsError, merge_arguments, parse_arguments
from btu.contracts.calendars import (
	BusinessCalendar,
	CalendarError,
	normalize_list_doctype,
	normalize_policy,
	parse_dates,
)
from btu.contracts.fire_times import FireTimes, timing_suffix
from btu.contracts.jitter import JitterError, normalize_jitter
from btu.contracts.pending import timing_text
from btu.contracts.runs import ONCE, OVERLAP_ALLOW, RunAtError, normalize_overlap, wall_time_to_timestamp
from btu.contracts.schedule_rules import (
	CronError,
	TimeZoneError,
	frequency_to_cron,
	validate_timezone,
)


class ScheduleInvalid(ValueError):
	"""The schedule cannot run; the message says why (logged with the schedule's name)."""


@dataclass(frozen=True)
class ScheduleSpec:
	site: str
	name: str
	task: str
	cron: str
	timezone: str
	queue: str
	function_string: str
	kwargs: dict[str, Any]
	timeout: int
	description: str = ""
	run_at: int | None = None  # a one-shot's only fire time (Unix s); None: the cron rule decides
	overlap: str = OVERLAP_ALLOW  # "Skip": no run while the previous one is queued or running
	holiday_doctype: str = ""  # a business calendar: "BTU Holiday List" or "Holiday List" (calendars.py)
	holiday_list: str = ""  # its name; "" = none
	on_holiday: str = ""  # "Skip" or "Next Working Day"
	holidays: tuple[str, ...] = ()  # its dates (ISO, in the schedule's zone) within calendars.date_window
	jitter: int = 0  # seconds; each fire time is delayed by up to this (jitter.py)

	@property
	def once(self) -> bool:
		return self.run_at is not None

	@property
	def timing(self) -> str:
		"""What decides fire times (``btu:<site>:timings``): a change here resets the next fire time."""
		suffix = timing_suffix(self.holiday_doctype, self.holiday_list, self.on_holiday, self.jitter)
		return timing_text(self.cron, self.timezone, self.run_at, suffix)

	@cached_property
	def fire_times(self) -> FireTimes:
		"""The recurring rule's fire times: cron rule, then business calendar, then jitter."""
		calendar = BusinessCalendar(tuple(self.holidays), self.on_holiday) if self.holiday_list else None
		return FireTimes(
			self.cron, self.timezone, calendar, self.jitter, jitter_rule.identity(self.site, self.name)
		)

	@property
	def rule(self) -> str:
		"""The rule for people: the cron string, or '@once <ts>'."""
		return self.cron if self.run_at is None else f"@once {self.run_at}"

	def next_fire_after(self, after: float) -> int | None:
		"""The first fire time strictly after ``after`` (Unix s), None when there is none: a one-shot's
		``run_at`` if it is later, else the cron rule's next fire time in the schedule's zone."""
		if self.run_at is not None:
			return self.run_at if self.run_at > after else None
		return self.fire_times.next_after(after)

	def fires_at(self, ts: int) -> bool:
		"""Whether ``ts`` is one of this spec's fire times (a remembered or pending time is checked
		against the current rule before it runs)."""
		return self.next_fire_after(ts - 1) == ts

	def latest_fire_between(self, low: float, high: float) -> int | None:
		"""The latest fire time t with low <= t <= high (None: none): the current rule's latest missed
		time within the grace. A binary search on "the next fire time after x is at most high"
		(true below the answer, false from it on): about log2(high - low) look-ups."""
		top = math.floor(high)
		lo, hi = math.ceil(low) - 1, top

		def found_after(x: int) -> bool:
			found = self.next_fire_after(x)
			return found is not None and found <= top

		if not found_after(lo):
			return None
		while hi - lo > 1:
			mid = (lo + hi) // 2
			if found_after(mid):
				lo = mid
			else:
				hi = mid
		return self.next_fire_after(lo)

	def first_fire(self, now: float, grace: int) -> int | None:
		"""The fire time to plan when Redis holds none: a cron rule's next one after now (a new or
		changed rule never runs for a past time), a one-shot's ``run_at`` unless it is more than
		``grace`` seconds old (a one-shot whose time passed while the daemon was away still runs
		once within the grace; older, it is over)."""
		if self.run_at is not None:
			return self.run_at if self.run_at >= now - grace else None
		return self.next_fire_after(now)

	def to_json(self) -> str:
		# A shallow dict (dataclasses.asdict deep-copies every value: 40 % of a refresh's CPU); the
		# text is the same, and it must stay so (Redis compares it to tell a changed spec).
		return json.dumps(
			{name: getattr(self, name) for name in _FIELD_NAMES}, sort_keys=True, separators=(",", ":")
		)

	@classmethod
	def from_json(cls, text: str | bytes) -> "ScheduleSpec":
		data = json.loads(text)
		if "holidays" in data:
			data["holidays"] = tuple(data["holidays"])
		try:
			return cls(**data)
		except TypeError:  # a key of a newer daemon's spec: keep the ones this one knows
			known = {f.name for f in fields(cls)}
			return cls(**{k: v for k, v in data.items() if k in known})


_FIELD_NAMES = tuple(f.name for f in fields(ScheduleSpec))


def spec_from_row(site: str, row: dict[str, Any], default_timezone: str) -> ScheduleSpec | None:
	"""The spec of an enabled, valid schedule; None when disabled; ScheduleInvalid when broken."""
	name = row["name"]
	if not row.get("enabled"):
		return None
	if not row.get("task"):
		raise ScheduleInvalid("it names no task")
	if not row.get("task_found"):
		raise ScheduleInvalid(f"its task {row['task']!r} does not exist")
	if row.get("task_docstatus") != 1:
		state = {0: "a draft", 2: "cancelled"}.get(row.get("task_docstatus"), "not submitted")
		raise ScheduleInvalid(f"its task {row['task']!r} is {state}; only submitted tasks run")
	function_string = (row.get("function_string") or "").strip()
	if not function_string or "." not in function_string:
		raise ScheduleInvalid(f"task {row['task']!r} has no dotted function_string (got {function_string!r})")
	zone = (row.get("cron_timezone") or "").strip() or default_timezone
	try:
		validate_timezone(zone)
	except TimeZoneError as exc:
		raise ScheduleInvalid(str(exc)) from None
	run_at = None
	if (row.get("run_frequency") or "").strip() == ONCE:
		cron = ""
		if not row.get("run_at"):
			raise ScheduleInvalid("it is a one-shot (Run Frequency Once) without a Run At time")
		try:
			run_at = wall_time_to_timestamp(row["run_at"], zone)
		except RunAtError as exc:
			raise ScheduleInvalid(str(exc)) from None
	else:
		try:
			cron = frequency_to_cron(
				row.get("run_frequency") or "Cron Style",
				row.get("minute"),
				row.get("hour"),
				row.get("day_of_week"),
				row.get("day_of_month"),
				row.get("month"),
				row.get("cron_string"),
			)
		except CronError as exc:
			raise ScheduleInvalid(str(exc)) from None
	try:
		overlap = normalize_overlap(row.get("overlap_policy"))
	except ValueError as exc:
		raise ScheduleInvalid(str(exc)) from None
	calendar = _calendar_of_row(row) if run_at is None else {}
	try:
		kwargs = merge_arguments(
			parse_arguments(row.get("arguments"), f"task {row['task']} arguments"),
			parse_arguments(row.get("argument_overrides"), f"schedule {name} argument_overrides"),
		)
	except ArgumentsError as exc:
		raise ScheduleInvalid(str(exc)) from None
	queue = (row.get("queue_name") or row.get("task_queue_name") or "default").strip()
	timeout = row.get("max_task_duration")
	try:
		timeout = int(timeout) if timeout not in (None, "") and int(timeout) > 0 else 600
	except (TypeError, ValueError):
		raise ScheduleInvalid(f"max_task_duration {timeout!r} is not a number of seconds") from None
	return ScheduleSpec(
		site=site,
		name=name,
		task=row["task"],
		cron=cron,
		timezone=zone,
		queue=queue,
		function_string=function_string,
		kwargs=kwargs,
		timeout=timeout,
		description=(row.get("desc_short") or "")[:140],
		run_at=run_at,
		overlap=overlap,
		**calendar,
	)


def _calendar_of_row(row: dict[str, Any]) -> dict[str, Any]:
	"""A recurring schedule's business calendar and jitter fields for its spec. The row carries its
	list's dates as ``holidays`` (``sql.SiteDatabase`` reads them), or ``holidays_error`` when the
	list cannot be read (its DocType is not on the site, or the list is gone)."""
	try:
		jitter = normalize_jitter(row.get("jitter_seconds"))
		holiday_list = (row.get("holiday_list") or "").strip()
		if not holiday_list:
			return {"jitter": jitter}
		doctype = normalize_list_doctype(row.get("holiday_list_doctype"))
		policy = normalize_policy(row.get("on_holiday"))
		if row.get("holidays_error"):
			raise CalendarError(row["holidays_error"])
		holidays = parse_dates(row.get("holidays") or ())
	except (CalendarError, JitterError) as exc:
		raise ScheduleInvalid(str(exc)) from None
	return {
		"holiday_doctype": doctype,
		"holiday_list": holiday_list,
		"on_holiday": policy,
		"holidays": holidays,
		"jitter": jitter,
	}
