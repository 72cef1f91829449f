"""Turn a schedule's SQL row into what the scheduler needs to enqueue its runs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from btu.contracts.arguments import ArgumentsError, merge_arguments, parse_arguments
from btu.contracts.schedule_rules import CronError, TimeZoneError, frequency_to_cron, validate_timezone


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

	@property
	def timing(self) -> str:
		"""What decides fire times: a change here resets the next fire time."""
		return f"{self.cron}|{self.timezone}"

	def to_json(self) -> str:
		return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

	@classmethod
	def from_json(cls, text: str | bytes) -> "ScheduleSpec":
		return cls(**json.loads(text))


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
	zone = (row.get("cron_timezone") or "").strip() or default_timezone
	try:
		validate_timezone(zone)
	except TimeZoneError as exc:
		raise ScheduleInvalid(str(exc)) from None
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
	)
