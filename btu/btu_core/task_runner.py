"""Run BTU Tasks and record each run in a BTU Task Log.

Three ways in, one way through (``execute_task``):

* ``run_scheduled_task`` - RQ jobs the scheduler daemon enqueues, through Frappe's
  ``execute_job`` (site connected, user set, commit/rollback around the call);
* ``run_enqueued_task`` - "Run now in a worker" (``enqueue_task`` puts it in the queue);
* ``run_task_on_server`` - "Run now on this server", synchronous, inside the web request.

A run never raises to its caller: a failing task is recorded as Failed with its
traceback, an RQ job timeout as Timeout, and the worker lives on. Database writes of
a task that fails or times out are rolled back to a savepoint taken just before the
call (writes the task committed itself stay).
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint, get_datetime, get_system_timezone, now_datetime

from btu.btu_core import (
	alerts,
	business_calendar,
	chains,
	email_notify,
	failure_pause,
	late_runs,
	retries,
	run_summary,
	steps,
)
from btu.btu_core.callables import (
	CallableError,
	bind_task_class,
	check_arguments,
	is_task_class,
)
from btu.btu_core.output_capture import capture_output
from btu.btu_core.runnables import resolve_task_function
from btu.contracts.arguments import ArgumentsError, merge_arguments, parse_arguments
from btu.contracts.redis_keys import DEFAULT_PREFIX, RedisKeys
from btu.contracts.runs import ONCE

try:
	from rq.timeouts import JobTimeoutException
except ImportError:  # pragma: no cover - rq is a Frappe dependency

	class JobTimeoutException(Exception):  # type: ignore[no-redef]
		"""Stand-in when rq is missing."""


IN_PROGRESS = "In-Progress"
SUCCESS = "Success"
FAILED = "Failed"
TIMEOUT = "Timeout"
# The run did not happen. A Task Log status only for a run a worker refused because it came too late
# (btu.btu_core.late_runs); a run of a deleted or disabled schedule leaves no log.
SKIPPED = "Skipped"

COMPONENT_SCHEDULER = "Scheduler"
COMPONENT_WORKER = "Worker"
COMPONENT_WEB = "Web Server"

MAX_RESULT_CHARS = 200_000
SAVEPOINT = "btu_task_run"
STALE_GRACE = timedelta(minutes=15)


@dataclass
class RunOutcome:
	"""What happened in one run (returned to callers, the RQ job result and the Desk)."""

	task: str
	status: str
	log: str | None = None
	schedule: str | None = None
	component: str = ""
	execution_time: float = 0.0
	date_time_started: str | None = None
	stdout: str = ""
	result_message: str = ""
	job_id: str | None = None
	extra: dict[str, Any] = field(default_factory=dict)

	def as_dict(self) -> dict[str, Any]:
		return asdict(self)

	def summary(self) -> dict[str, Any]:
		"""Small form for RQ job results (kept in Redis): the full output is in the Task Log."""
		data = self.as_dict()
		data.pop("stdout")
		data["result_message"] = self.result_message[:1000]
		return data


# --- entry points ---------------------------------------------------------------------------


def run_scheduled_task(
	task_name: str, schedule_name: str | None = None, fire_time: float | str | None = None, **kwargs: Any
) -> dict[str, Any]:
	"""Run the task of a schedule: the method the daemon's RQ jobs call.

	``fire_time`` is the Unix time the run was planned for. Extra keyword arguments
	from newer daemons are ignored. When the schedule was deleted or disabled after
	the daemon enqueued the run, the run is skipped. A one-shot (Run Frequency Once) is
	claimed first: disabled under a row lock and committed, so that it runs at most once
	whatever happens to Redis; a cancelled one (disabled) is skipped.
	"""
	if kwargs:
		frappe.logger("btu").info(f"run_scheduled_task ignores unknown arguments {sorted(kwargs)}")
	schedule = None
	if schedule_name:
		schedule = _get_or_none("BTU Task Schedule", schedule_name)
		enabled = schedule is not None and cint(schedule.enabled)
		if enabled and schedule.run_frequency == ONCE:
			enabled = _claim_one_shot(schedule_name)
		if schedule is None or not enabled:
			why = "deleted" if schedule is None else "disabled"
			frappe.logger("btu").info(f"BTU run of {task_name} skipped: schedule {schedule_name} is {why}")
			return RunOutcome(
				task=task_name,
				status=SKIPPED,
				schedule=schedule_name,
				result_message=f"Schedule {schedule_name} is {why}.",
			).summary()
	outcome = execute_task(
		task_name,
		schedule=schedule,
		fire_time=fire_time,
		component=COMPONENT_SCHEDULER,
		job_id=current_job_id(),
		judge_start=schedule is not None,
	)
	if schedule is not None and schedule.run_frequency == ONCE:
		_after_one_shot(schedule, outcome)
	return outcome.summary()


def _claim_one_shot(schedule_name: str) -> bool:
	"""Disable a one-shot before its run, under a row lock, and commit: True when this run may go
	on, False when it was already disabled (cancelled, or claimed by another run of it)."""
	row = frappe.db.sql(
		"SELECT enabled FROM `tabBTU Task Schedule` WHERE name = %s FOR UPDATE", (schedule_name,)
	)
	if not row or not cint(row[0][0]):
		frappe.db.rollback()
		return False
	frappe.db.set_value("BTU Task Schedule", schedule_name, {"enabled": 0, "last_status": IN_PROGRESS})
	frappe.db.commit()
	return True


def _after_one_shot(schedule: Document, outcome: "RunOutcome") -> None:
	"""A one-shot made by ``btu.api.run_function`` (Delete After Run) goes, with its task, once it
	succeeded; its Task Log stays and keeps both names. A failed one stays (disabled) for a retry."""
	if outcome.status != SUCCESS or not cint(schedule.get("delete_after_run")):
		return
	try:
		frappe.db.rollback()
		task = frappe.db.get_value("BTU Task", schedule.task, ["name", "docstatus"], as_dict=True)
		frappe.delete_doc("BTU Task Schedule", schedule.name, force=True, ignore_permissions=True)
		if task is not None and not frappe.db.exists("BTU Task Schedule", {"task": task.name}):
			if task.docstatus == 1:
				frappe.db.set_value("BTU Task", task.name, "docstatus", 2, update_modified=False)
			frappe.delete_doc("BTU Task", task.name, force=True, ignore_permissions=True)
		frappe.db.commit()
	except Exception:  # noqa: BLE001 - bookkeeping must not fail the run
		_report(f"BTU: could not delete the transient task of {schedule.name}")


def run_enqueued_task(task_name: str) -> dict[str, Any]:
	"""Worker side of "Run now in a worker"."""
	return execute_task(task_name, component=COMPONENT_WORKER, job_id=current_job_id()).summary()


def run_task_on_server(task_name: str) -> dict[str, Any]:
	""" "Run now on this server": synchronous, in the calling process (e.g. a web worker).

	Not time-limited by BTU (the web server's own request timeout applies); refused for
	tasks marked Run Only As Worker.
	"""
	task = frappe.get_doc("BTU Task", task_name)
	if cint(task.run_only_as_worker):
		frappe.throw(
			_("Task {0} is marked Run Only As Worker; use Run now in a worker.").format(task.name),
			title=_("Not Allowed"),
		)
	_refuse_cancelled(task)
	return execute_task(task.name, component=COMPONENT_WEB).as_dict()


def enqueue_task(task_name: str) -> dict[str, Any]:
	"""Put a task in its BTU Queue for an RQ worker now; returns the job id."""
	task = frappe.get_doc("BTU Task", task_name)
	_refuse_cancelled(task)
	queue = task.queue_name or "default"
	job = frappe.enqueue(
		"btu.btu_core.task_runner.run_enqueued_task",
		queue=queue,
		timeout=cint(task.max_task_duration) or None,
		job_name=f"BTU {task.name}",
		task_name=task.name,
	)
	return {"task": task.name, "queue": queue, "job_id": getattr(job, "id", None)}


def current_job_id() -> str | None:
	"""The RQ job id when running inside a work horse."""
	job = _current_job()
	return job.id if job else None


# --- the run ----------------------------------------------------------------------------------


def execute_task(
	task_name: str,
	schedule: Document | None = None,
	fire_time: float | str | None = None,
	component: str = "",
	job_id: str | None = None,
	judge_start: bool = False,
) -> RunOutcome:
	"""Run one task now, capture its output and record the outcome. Never raises (except KeyboardInterrupt).

	``judge_start``: a scheduled run, refused when it reaches the worker too late (``late_runs``)."""
	task = _get_or_none("BTU Task", task_name)
	if task is None:
		frappe.log_error(
			title=f"BTU: task {task_name} not found", message=f"Schedule: {getattr(schedule, 'name', None)}"
		)
		return RunOutcome(
			task=task_name, status=FAILED, result_message=f"BTU Task {task_name} does not exist."
		)

	record = _RunRecord(task, schedule, component, job_id, _fire_time_to_system(fire_time))
	if judge_start and schedule is not None and _is_number(str(fire_time)):
		decision = _judge_start(schedule, float(fire_time))
		record.start_delay = round(decision.delay, 3)
		if decision.skip_reason:
			return record.skipped(decision.skip_reason)
	if task.docstatus == 2:
		return record.finish(
			FAILED, 0.0, "", _("Task {0} is cancelled; the run did not happen.").format(task.name)
		)
	try:
		func, kwargs = prepare_call(task, schedule)
	except (ArgumentsError, CallableError) as exc:
		return record.finish(FAILED, 0.0, "", str(exc))

	record.arguments = kwargs
	record.begin()
	frappe.db.savepoint(SAVEPOINT)
	status, result_message = SUCCESS, ""
	started = time.perf_counter()
	chained_from = schedule.get("chained_from") if schedule is not None else None
	with (
		capture_output(echo=bool(cint(task.repeat_log_in_stdout))) as output,
		steps.recording() as recorder,
		chains.running(chained_from),  # btu.api.chain_input()
	):
		try:
			result_message = format_result(func(**kwargs))
		except JobTimeoutException:
			status = TIMEOUT
			limit = cint(task.max_task_duration)
			result_message = _(
				"The task ran longer than its maximum duration ({0} s) and was stopped."
			).format(limit)
			result_message += "\n\n" + traceback.format_exc()
		except (Exception, SystemExit):
			status = FAILED
			result_message = traceback.format_exc()
	elapsed = time.perf_counter() - started
	record.steps = recorder.rows()
	if status != SUCCESS:
		_roll_back_task_writes()
	return record.finish(status, elapsed, output.text, result_message)


def prepare_call(
	task: Document, schedule: Document | None = None
) -> tuple[Callable[..., Any], dict[str, Any]]:
	"""Resolve the task's function and its merged keyword arguments (raises ArgumentsError / CallableError)."""
	arguments = parse_arguments(task.arguments, f"BTU Task {task.name} arguments")
	if schedule is not None:
		overrides = parse_arguments(
			schedule.argument_overrides, f"BTU Task Schedule {schedule.name} argument overrides"
		)
		arguments = merge_arguments(arguments, overrides)
	func = resolve_task_function(task.function_string)
	check_arguments(func, arguments, complete=True)
	if is_task_class(func):  # a BTU-aware class: Class(btu_task_id=...).run(**arguments)
		func = bind_task_class(func, task.name, schedule.name if schedule is not None else None)
	return func, arguments


def format_result(value: Any) -> str:
	"""The task's return value as text for the log."""
	if value is None:
		return ""
	if isinstance(value, str):
		text = value
	else:
		try:
			text = json.dumps(value, indent=1, default=str, ensure_ascii=False)
		except (TypeError, ValueError):
			text = repr(value)
	if len(text) > MAX_RESULT_CHARS:
		text = text[:MAX_RESULT_CHARS] + f"\n[... {len(text) - MAX_RESULT_CHARS} characters omitted ...]"
	return text


def _judge_start(schedule: Document, fire_ts: float) -> late_runs.StartDecision:
	"""The start deadline and the one-late-run rule for a scheduled run starting now."""
	default = frappe.db.get_single_value("BTU Configuration", "default_start_deadline")
	deadline = late_runs.effective_deadline(schedule.get("start_deadline"), default)
	try:
		times = business_calendar.fire_times_of(schedule, schedule.time_zone())
	except Exception:  # noqa: BLE001 - e.g. its holiday list is gone: judge by the deadline alone
		times = None
	job = _current_job()
	claim = None
	if job is not None and times is not None:
		keys = RedisKeys(job.meta.get("btu_key_prefix") or DEFAULT_PREFIX)  # the daemon's keys
		claim = late_runs.LateRunClaim(job.connection, keys, frappe.local.site, schedule.name)
	enqueued = getattr(job, "enqueued_at", None) if job is not None else None
	if enqueued is not None and enqueued.tzinfo is None:
		enqueued = enqueued.replace(tzinfo=timezone.utc)  # rq keeps UTC without a zone
	try:
		return late_runs.decide_start(
			fire_ts=fire_ts,
			now=time.time(),
			deadline=deadline,
			next_after=times.next_after if times is not None else None,
			enqueued_ts=enqueued.timestamp() if enqueued is not None else None,
			claim=claim,
		)
	except Exception:  # noqa: BLE001 - Redis unreachable: judge by the deadline alone, never lose the run
		_report(f"BTU: could not read the late runs of {schedule.name}; the run goes on")
		return late_runs.decide_start(
			fire_ts=fire_ts,
			now=time.time(),
			deadline=deadline,
			next_after=None,
			enqueued_ts=None,
			claim=None,
		)


def _current_job():
	try:
		from rq import get_current_job

		return get_current_job()
	except Exception:  # noqa: BLE001 - outside a worker there is no job
		return None


class _RunRecord:
	"""The bookkeeping of one run: In-Progress log, final log, last_runtime, emails."""

	def __init__(
		self,
		task: Document,
		schedule: Document | None,
		component: str,
		job_id: str | None,
		fire_time: datetime | None,
	) -> None:
		self.task = task
		self.schedule = schedule
		self.component = component
		self.job_id = job_id
		self.fire_time = fire_time
		self.started_at = now_datetime()
		self.log: Document | None = None
		self.arguments: dict[str, Any] | None = None  # what the function is called with (Retry reuses it)
		self.steps: list[dict[str, Any]] = []  # btu.btu_core.steps rows
		self.called = False  # the function was called (a failure before that is not retried)
		self.retry: dict[str, Any] | None = None  # the automatic retry planned after a failure
		self.start_delay: float | None = None  # seconds from the fire time to the worker's start

	def begin(self) -> None:
		"""Before the task runs: optional In-Progress log and "start" emails, committed."""
		self.started_at = now_datetime()
		self.called = True
		try:
			if cint(frappe.db.get_single_value("BTU Configuration", "create_in_progress_logs")):
				self.log = self._save_log(IN_PROGRESS, 0.0, "", "")
			self._email("start", IN_PROGRESS, 0.0, "", "")
			frappe.db.commit()
		except Exception:  # noqa: BLE001 - bookkeeping must not stop the task
			self.log = None
			_report(f"BTU: could not record the start of {self.task.name}")

	def finish(self, status: str, elapsed: float, stdout: str, result_message: str) -> RunOutcome:
		"""After the task: commit its work, write the log, commit, send emails."""
		elapsed = round(elapsed, 3)
		try:
			frappe.db.commit()  # the task's own writes first: a bookkeeping failure must not undo them
		except Exception:  # noqa: BLE001 - e.g. a deadlock at commit: the task's work is lost
			status = FAILED
			result_message = (
				f"{result_message}\n\nCommitting the task's work failed:\n{traceback.format_exc()}".strip()
			)
			_report(f"BTU: could not commit the work of {self.task.name}")
		chained: tuple[list[str], list[str]] = ([], [])
		try:
			keep = cint(self.task.docstatus) == 1 and bool(chains.rows_for(self.task, status))
			if status == SUCCESS and cint(self.task.is_transient) and not keep:
				if self.log is not None:
					frappe.delete_doc("BTU Task Log", self.log.name, ignore_permissions=True, force=True)
					self.log = None
			else:
				self.log = self._save_log(status, elapsed, stdout, result_message)
			frappe.db.set_value(
				"BTU Task", self.task.name, "last_runtime", self.started_at, update_modified=False
			)
			self._record_on_schedule(status)
			if keep and self.log is not None:  # Then Run: in this log's transaction (exactly once per run)
				chained = chains.start_chained(
					self.task, self.log, status, retried=self._will_retry(status), run_later=_run_later()
				)
			frappe.db.commit()
		except Exception:  # noqa: BLE001 - a bookkeeping failure is reported, never raised
			_report(f"BTU: could not record the run of {self.task.name}")
		for error in chained[1]:
			_report(f"BTU: Then Run of {self.task.name}: {error}")
		if self.schedule is not None:
			log_name = self.log.name if self.log is not None else None
			try:
				alerts.after_run(self.schedule, status, log_name)
				if status in (FAILED, TIMEOUT):
					failure_pause.after_failed_run(self.schedule, log_name)
				frappe.db.commit()
			except Exception:  # noqa: BLE001
				_report(f"BTU: could not check the alerts and Pause After Failures of {self.schedule.name}")
		if (
			status in (FAILED, TIMEOUT)
			and self.called
			and self.log is not None
			and self.component != COMPONENT_WEB
		):
			self.retry = self._plan_retry()
		event = email_notify.STATUS_EVENTS.get(status)
		if event and (self.retry is None or cint(self.task.get("email_each_failure"))):
			try:
				self._email(event, status, elapsed, stdout, result_message)
				frappe.db.commit()
			except Exception:  # noqa: BLE001
				_report(f"BTU: could not queue emails for {self.task.name}")
		return RunOutcome(
			task=self.task.name,
			status=status,
			log=self.log.name if self.log is not None else None,
			schedule=self.schedule.name if self.schedule is not None else None,
			component=self.component,
			execution_time=elapsed,
			date_time_started=str(self.started_at),
			stdout=stdout,
			result_message=result_message,
			job_id=self.job_id,
			extra={"retry": self.retry} if self.retry else {},
		)

	def skipped(self, reason: str) -> RunOutcome:
		"""A run refused for coming too late: a Skipped Task Log saying why; no emails, no retry."""
		try:
			self.log = self._save_log(SKIPPED, 0.0, "", reason)
			self._record_on_schedule(SKIPPED)
			frappe.db.commit()
		except Exception:  # noqa: BLE001 - bookkeeping failure is reported, never raised
			_report(f"BTU: could not record the skipped run of {self.task.name}")
		frappe.logger("btu").info(f"BTU run of {self.task.name} skipped: {reason}")
		return RunOutcome(
			task=self.task.name,
			status=SKIPPED,
			log=self.log.name if self.log is not None else None,
			schedule=self.schedule.name if self.schedule is not None else None,
			component=self.component,
			result_message=reason,
			job_id=self.job_id,
		)

	def _record_on_schedule(self, status: str) -> None:
		"""The schedule's list columns: this run as its last, and its next run by its rule."""
		if self.schedule is None or not frappe.db.exists("BTU Task Schedule", self.schedule.name):
			return
		run_summary.record_run(
			self.schedule,
			self.schedule.time_zone(),
			self.log.name if self.log is not None else None,
			status,
			self.started_at,
		)

	def attempt(self) -> int:
		return (cint(self.schedule.get("attempt")) or 1) if self.schedule is not None else 1

	def _will_retry(self, status: str) -> bool:
		"""This failed run will be retried automatically (``_plan_retry``'s rule, decided before the commit)."""
		if status not in (FAILED, TIMEOUT) or not self.called or self.component == COMPONENT_WEB:
			return False
		attempt = (cint(self.log.get("attempt")) if self.log is not None else 0) or self.attempt()
		return attempt <= retries.retry_settings(self.task)["max_retries"] and cint(self.task.docstatus) == 1

	def _plan_retry(self) -> dict[str, Any] | None:
		"""The task's automatic retries (btu.btu_core.retries); a failure to plan one is reported."""
		try:
			return retries.plan_automatic_retry(
				self.task,
				self.log.name,
				cint(self.log.get("attempt")) or self.attempt(),
				run_later=_run_later(),
			)
		except Exception:  # noqa: BLE001 - e.g. the task was cancelled meanwhile: this failure is the last
			_report(f"BTU: could not plan a retry of {self.task.name} after {self.log.name}")
			return None

	def _save_log(self, status: str, elapsed: float, stdout: str, result_message: str) -> Document:
		log = self.log or frappe.new_doc("BTU Task Log")
		log.update(
			{
				"task": self.task.name,
				"task_desc_short": self.task.desc_short,
				"schedule": self.schedule.name if self.schedule is not None else None,
				"success_fail": status,
				"date_time_started": self.started_at,
				"execution_time": elapsed,
				"stdout": stdout,
				"result_message": result_message,
				"task_component": self.component,
				"job_id": self.job_id,
				"fire_time": self.fire_time,
				"start_delay": self.start_delay,
				"attempt": (cint(self.schedule.get("attempt")) or 1) if self.schedule is not None else 1,
				"retry_of": self.schedule.get("retry_of") if self.schedule is not None else None,
				"chained_from": self.schedule.get("chained_from") if self.schedule is not None else None,
				"arguments": _arguments_json(self.arguments),
			}
		)
		log.set("steps", [_step_row(row) for row in self.steps])
		log.flags.ignore_permissions = True
		log.flags.ignore_links = True  # the task may have been cancelled meanwhile
		if log.is_new():
			log.insert()
		else:
			log.save()
		return log

	def _email(self, event: str, status: str, elapsed: float, stdout: str, result_message: str) -> None:
		schedule = retries.email_schedule(self.schedule)  # a retry tells its first attempt's recipients
		if schedule is None:
			return
		try:
			self._send(event, schedule, status, elapsed, stdout, result_message)
		except email_notify.EmailNotQueued as exc:
			frappe.logger("btu").warning(f"{self.task.name}: {exc}")
			if self.log is not None:
				note = "\n".join(filter(None, [self.log.get("email_note"), str(exc)]))
				self.log.db_set("email_note", note, update_modified=False)

	def _send(
		self, event: str, schedule: Document, status: str, elapsed: float, stdout: str, result_message: str
	) -> None:
		email_notify.send_run_email(
			event,
			task=self.task,
			schedule=schedule,
			attempt=self.attempt(),
			max_attempts=retries.retry_settings(self.task)["max_retries"] + 1,
			retry=self.retry,
			log_name=self.log.name if self.log is not None else None,
			status=status,
			started=self.started_at,
			execution_time=elapsed,
			stdout=stdout,
			result_message=result_message,
		)


# --- housekeeping ---------------------------------------------------------------------------------


def expire_stale_in_progress_logs() -> int:
	"""Hourly: In-Progress logs older than their task's maximum duration (plus grace) become Timeout.

	That happens when a work horse is killed outright (out of memory, SIGKILL after an
	ignored timeout) and never gets to write its log.
	"""
	now = now_datetime()
	expired = []
	for row in frappe.get_all(
		"BTU Task Log",
		filters={"success_fail": IN_PROGRESS},
		fields=["name", "task", "date_time_started", "attempt", "task_component"],
	):
		limit = cint(frappe.db.get_value("BTU Task", row.task, "max_task_duration")) or 600
		started = get_datetime(row.date_time_started) if row.date_time_started else None
		if started and started + timedelta(seconds=limit) + STALE_GRACE < now:
			frappe.db.set_value(
				"BTU Task Log",
				row.name,
				{
					"success_fail": TIMEOUT,
					"result_message": _(
						"No result was recorded within the task's maximum duration ({0} s); "
						"the worker running it was probably stopped."
					).format(limit),
				},
			)
			expired.append(row)
			_start_chained_after(row, TIMEOUT)
	if expired:
		frappe.db.commit()
	for row in expired:  # a killed run is a failure too: the task's automatic retries follow it
		if row.task_component == COMPONENT_WEB or not frappe.db.exists("BTU Task", row.task):
			continue
		try:
			retries.plan_automatic_retry(
				frappe.get_doc("BTU Task", row.task), row.name, cint(row.attempt) or 1, run_later=_run_later()
			)
		except Exception:  # noqa: BLE001
			_report(f"BTU: could not plan a retry of {row.task} after {row.name}")
	return len(expired)


# --- helpers ----------------------------------------------------------------------------------------


def _roll_back_task_writes() -> None:
	"""Undo what a failed task wrote since it started (a commit by the task itself ends the savepoint).

	A job timeout can interrupt a query half-way and leave the connection unusable:
	then reconnect, so that the log can still be written.
	"""
	try:
		frappe.db.rollback(save_point=SAVEPOINT)
		return
	except Exception:  # noqa: BLE001 - savepoint gone: the task committed; drop what came after
		pass
	try:
		frappe.db.rollback()
	except Exception:  # noqa: BLE001
		try:
			frappe.db.close()
		finally:
			frappe.db.connect()


def _start_chained_after(row: Any, status: str) -> None:
	"""Then Run after a run found killed (``expire_stale_in_progress_logs``), in the transaction that
	finishes its log; its last attempt only, as in ``_RunRecord.finish``."""
	task = _get_or_none("BTU Task", row.task)
	if task is None or not chains.rows_for(task, status):
		return
	settings = retries.retry_settings(task)
	retried = row.task_component != COMPONENT_WEB and (cint(row.attempt) or 1) <= settings["max_retries"]
	log = frappe.get_doc("BTU Task Log", row.name)
	for error in chains.start_chained(task, log, status, retried=retried, run_later=_run_later())[1]:
		frappe.logger("btu").warning(f"BTU: Then Run of {task.name}: {error}")


def _run_later():
	"""``btu.api.run_later``: retries are one-shot runs like any other."""
	import btu.api

	return btu.api.run_later


def _report(title: str) -> None:
	"""Record a bookkeeping failure in the Error Log, or the btu log file when even that fails."""
	try:
		frappe.db.rollback()
		frappe.log_error(title=title)
		frappe.db.commit()
	except Exception:  # noqa: BLE001
		frappe.logger("btu").exception(title)


def _get_or_none(doctype: str, name: str) -> Document | None:
	try:
		return frappe.get_doc(doctype, name)
	except frappe.DoesNotExistError:
		frappe.clear_last_message()
		return None


def _refuse_cancelled(task: Document) -> None:
	if task.docstatus == 2:
		frappe.throw(_("Task {0} is cancelled and cannot run.").format(task.name), title=_("Not Allowed"))


def _fire_time_to_system(fire_time: float | int | str | None) -> datetime | None:
	"""Unix time (from the daemon) as a naive datetime in the system time zone, like every Datetime field."""
	if fire_time in (None, ""):
		return None
	if isinstance(fire_time, (int, float)) or (isinstance(fire_time, str) and _is_number(fire_time)):
		zone = ZoneInfo(get_system_timezone())
		return datetime.fromtimestamp(float(fire_time), zone).replace(tzinfo=None)
	return get_datetime(fire_time)


def _arguments_json(arguments: dict[str, Any] | None) -> str | None:
	if arguments is None:
		return None
	try:
		return json.dumps(arguments, indent=1, sort_keys=True, default=str, ensure_ascii=False)
	except (TypeError, ValueError):
		return repr(arguments)


def _step_row(row: dict[str, Any]) -> dict[str, Any]:
	"""A steps.StepRecorder row as a BTU Task Log Step (its start in the system time zone)."""
	return {**row, "started_at": _fire_time_to_system(row["started_at"])}


def _is_number(text: str) -> bool:
	try:
		float(text)
	except ValueError:
		return False
	return True
