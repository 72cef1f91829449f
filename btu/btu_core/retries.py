"""Retries of failed runs: a Task Log's *Retry*, the Failed Jobs page's *Requeue*, and a task's
automatic retries.

Every retry is a one-shot run (``btu.api.run_later``): it goes through the daemon's exactly-once
path like any other run, and its Task Log carries ``attempt`` = the retried run's + 1 and
``retry_of`` = the retried run's log. A run is retried with the arguments it was called with
(the Task Log keeps them), in the queue of its schedule.

Automatic retries (BTU Task: *Max Retries*, *Retry Delay*, *Retry Delay Cap*): after attempt n
failed or timed out, attempt n + 1 is planned after ``delay * 2**(n - 1)`` seconds, at most the
cap, as long as n <= Max Retries. They follow runs in workers (scheduled, one-shot, "Run now in a
worker"); a "Run now on this server" shows its failure at once and is not retried; a run that
failed before its function was called (bad arguments, a cancelled task) is not retried either.
A log is retried at most once: a second Retry of the same log is refused and names the first.

The one-shot is made by ``btu.api.run_later``, which callers pass in (``run_later=``): this module
is below the public API and does not import it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint

from btu.btu_core.system_user import as_administrator
from btu.btu_core.text import throw_text
from btu.contracts.arguments import ArgumentsError, parse_arguments

FAILED = "Failed"
TIMEOUT = "Timeout"
RETRYABLE = (FAILED, TIMEOUT)
SCHEDULE = "BTU Task Schedule"
LOG = "BTU Task Log"

DEFAULT_DELAY = 30
DEFAULT_CAP = 3600
MAX_RETRIES = 100
MAX_CAP_SECONDS = 30 * 24 * 3600
MAX_CHAIN = 1000  # retry_of links followed at most (a chain is as long as its attempts)


def delay_for(failed_attempt: int, base: int, cap: int) -> int:
	"""Seconds between the failure of attempt ``failed_attempt`` and the next: base, 2 x base, 4 x
	base, ... at most ``cap``."""
	base = max(1, cint(base) or DEFAULT_DELAY)
	cap = max(base, cint(cap) or DEFAULT_CAP)
	exponent = min(max(failed_attempt, 1) - 1, 40)
	return min(cap, base * 2**exponent)


def retry_settings(task: Document) -> dict[str, int]:
	return {
		"max_retries": cint(task.get("max_retries")),
		"delay": cint(task.get("retry_delay_seconds")) or DEFAULT_DELAY,
		"cap": cint(task.get("retry_delay_cap_seconds")) or DEFAULT_CAP,
		"email_each_failure": cint(task.get("email_each_failure")),
	}


def existing_retry(log_name: str) -> dict[str, Any] | None:
	"""The retry already made of this log: its Task Log, or a one-shot still pending; None when none."""
	retried = frappe.get_all(
		LOG,
		filters={"retry_of": log_name},
		fields=["name", "success_fail", "schedule"],
		order_by="creation asc",
		limit_page_length=1,
	)
	if retried:
		return {"log": retried[0].name, "status": retried[0].success_fail, "run_id": retried[0].schedule}
	pending = frappe.get_all(
		SCHEDULE,
		filters={"retry_of": log_name, "enabled": 1},
		fields=["name", "schedule_description"],
		order_by="creation asc",
		limit_page_length=1,
	)
	if pending:
		return {
			"log": None,
			"status": "pending",
			"run_id": pending[0].name,
			"when": pending[0].schedule_description,
		}
	return None


def first_log(log_name: str) -> str:
	"""The first attempt of the chain a log belongs to (following retry_of)."""
	seen = {log_name}
	current = log_name
	for _step in range(MAX_CHAIN):
		previous = frappe.db.get_value(LOG, current, "retry_of")
		if not previous or previous in seen:
			break
		seen.add(previous)
		current = previous
	return current


def attempts(log_name: str) -> list[dict[str, Any]]:
	"""Every attempt of the chain a log belongs to, first to last (Desk's "Attempts")."""
	chain = [first_log(log_name)]
	seen = set(chain)
	for _step in range(MAX_CHAIN):
		following = frappe.get_all(
			LOG, filters={"retry_of": chain[-1]}, pluck="name", order_by="creation asc"
		)
		following = [name for name in following if name not in seen]
		if not following:
			break
		chain.append(following[0])
		seen.add(following[0])
	rows = {
		row.name: row
		for row in frappe.get_all(
			LOG,
			filters={"name": ("in", chain)},
			fields=["name", "attempt", "success_fail", "date_time_started", "execution_time", "schedule"],
		)
	}
	return [rows[name] for name in chain if name in rows]


def email_schedule(schedule: Document | None) -> Document | None:
	"""The schedule whose recipients hear about a run: its own, or, for a retry (a one-shot with
	``retry_of`` and no recipients of its own), the schedule of the chain's first attempt."""
	if schedule is None or not schedule.get("retry_of") or schedule.get("email_recipients"):
		return schedule
	root = frappe.db.get_value(LOG, first_log(schedule.retry_of), "schedule")
	if root and root != schedule.name and frappe.db.exists(SCHEDULE, root):
		return frappe.get_doc(SCHEDULE, root)
	return schedule


def run_again(
	task: str,
	previous_log: str | None = None,
	schedule: str | None = None,
	overrides: dict[str, Any] | None = None,
	queue: str | None = None,
	delay: float | None = None,
	*,
	run_later: Callable[..., str],
) -> str:
	"""Plan a new run of ``task`` as a one-shot (``run_later``: ``btu.api.run_later``) and return its run id.

	Its arguments: those ``previous_log`` recorded, else ``overrides``, else ``schedule``'s argument
	overrides; its queue: ``queue``, else the schedule's; attempt and retry_of follow ``previous_log``."""
	attempt, arguments = 1, overrides
	if previous_log:
		values = frappe.db.get_value(LOG, previous_log, ["attempt", "arguments", "schedule"], as_dict=True)
		if values is None:
			throw_text(_("Task Log {0} does not exist.").format(previous_log), frappe.DoesNotExistError)
		attempt = (cint(values.attempt) or 1) + 1
		if values.arguments:
			try:
				arguments = json.loads(values.arguments)
			except ValueError:
				frappe.throw(
					_(
						"Task Log {0} holds arguments that are not JSON; the run cannot be repeated as it was."
					).format(previous_log)
				)
		schedule = schedule or values.schedule
	if schedule and frappe.db.exists(SCHEDULE, schedule):
		values = frappe.db.get_value(SCHEDULE, schedule, ["argument_overrides", "queue_name"], as_dict=True)
		if arguments is None and values.argument_overrides:
			try:
				arguments = parse_arguments(
					values.argument_overrides, f"BTU Task Schedule {schedule} argument overrides"
				)
			except ArgumentsError as exc:
				throw_text(str(exc))
		queue = queue or values.queue_name
	if queue and not frappe.db.exists("BTU Queue", queue):
		queue = None  # deleted since: the task's own queue
	return run_later(
		task,
		delay=delay,
		overrides=arguments or None,
		queue=queue,
		attempt=attempt,
		retry_of=previous_log,
	)


def retry_log(log_name: str, *, run_later: Callable[..., str]) -> str:
	"""Desk's *Retry* and ``btu.api.retry``: run a Failed or Timeout run again now, with the same
	arguments, its log linked to this one; returns the run id."""
	log = frappe.get_doc(LOG, log_name)
	if log.success_fail not in RETRYABLE:
		frappe.throw(
			_("Task Log {0} is {1}: only a Failed or Timeout run can be retried.").format(
				log.name, log.success_fail or _("without status")
			),
			title=_("Cannot Retry"),
		)
	refuse_if_retried(log.name)
	if not log.task or not frappe.db.exists("BTU Task", log.task):
		throw_text(_("The task of Task Log {0} ({1}) no longer exists.").format(log.name, log.task))
	return run_again(log.task, previous_log=log.name, run_later=run_later)


def refuse_if_retried(log_name: str) -> None:
	found = existing_retry(log_name)
	if not found:
		return
	if found["log"]:
		message = _("Task Log {0} was already retried: {1} ({2}). Retry that one instead.").format(
			log_name, found["log"], found["status"]
		)
	else:
		message = _(
			"Task Log {0} already has a retry planned: run {1} ({2}). Cancel it first to retry now."
		).format(log_name, found["run_id"], found.get("when") or "")
	throw_text(message, title=_("Already Retried"))


def plan_automatic_retry(
	task: Document, log_name: str, failed_attempt: int, *, run_later: Callable[..., str]
) -> dict[str, Any] | None:
	"""After attempt ``failed_attempt`` of ``task`` failed (log ``log_name``): plan the next attempt
	when the task allows it, and commit; returns {run_id, attempt, delay} or None (last failure)."""
	settings = retry_settings(task)
	if failed_attempt > settings["max_retries"] or existing_retry(log_name):
		return None
	if frappe.db.get_value("BTU Task", task.name, "docstatus") != 1:
		return None  # a draft tried out with Run now, or cancelled since: only submitted tasks run
	delay = delay_for(failed_attempt, settings["delay"], settings["cap"])
	with as_administrator():
		run_id = run_again(task.name, previous_log=log_name, delay=delay, run_later=run_later)
	frappe.db.commit()
	return {
		"run_id": run_id,
		"attempt": failed_attempt + 1,
		"delay": delay,
		"max_attempts": settings["max_retries"] + 1,
	}
