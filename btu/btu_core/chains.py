"""Chains: when a run of task A ends, run task B (BTU Task: *Then Run*, child table BTU Task Chain).

A row names the next task, when it runs (``run_on``: Success; Failure = Failed or Timeout; Always =
either; never after a Skipped run), optionally the keyword argument of B that receives A's result,
and a delay. When A's run ends, the runner (``task_runner._RunRecord.finish``) calls ``start_chained``
**after saving A's final Task Log and before committing it**: each matching row becomes a one-shot
of B (``btu.api.run_later``, passed in: this module is below the public API) with ``chained_from`` =
A's log, in the same transaction. A crash loses both or keeps both, so B runs exactly once per run
of A; the daemon hears of the one-shot after the commit (a lost notification is only a delay: its
refill finds the row). A second finish of the same log finds the one-shot (or B's log) made by the
first and makes none. A run of A that the task will retry automatically starts no Failure chain:
only its last attempt does.

While B runs, ``btu.api.chain_input()`` gives B the run that started it ({log, task, status,
result}); the runner sets it for the duration of the call (``running``).

Saving a task checks its rows: the next task exists and is submitted, the result argument is a
Python name B's function accepts, and no loop: a walk over every task's rows (this unsaved one's
included) from this task must not come back to it; the message names the loop.
"""

from __future__ import annotations

import json
import keyword
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import cint

from btu.btu_core import site_transfer
from btu.btu_core.callables import CallableError, check_arguments
from btu.btu_core.runnables import resolve_task_function
from btu.btu_core.system_user import as_administrator
from btu.btu_core.text import throw_text
from btu.contracts.arguments import ArgumentsError, merge_arguments, parse_arguments

TASK = "BTU Task"
CHAIN = "BTU Task Chain"
LOG = "BTU Task Log"
SCHEDULE = "BTU Task Schedule"
TABLE_FIELD = "then_run"

SUCCESS = "Success"
FAILED = "Failed"
TIMEOUT = "Timeout"
RUN_ON = {
	"Success": frozenset({SUCCESS}),
	"Failure": frozenset({FAILED, TIMEOUT}),
	"Always": frozenset({SUCCESS, FAILED, TIMEOUT}),
}
MAX_WALK = 5000  # tasks a loop check visits at most
MAX_DELAY_SECONDS = 30 * 24 * 3600
# A's result passed in B's argument at most (characters of A's Result Message): the one-shot's
# Argument Overrides travel to the daemon and into the RQ job. Longer: the argument gets the text cut
# here (a string, with a note); chain_input() reads the whole result from A's log.
MAX_ARGUMENT_CHARS = 64 * 1024
_FLAG = "btu_chained_from"


# --- saving a task ---------------------------------------------------------------------------------


def validate_task(task: Document) -> None:
	"""BTU Task validate / before_update_after_submit: every Then Run row, then no loop."""
	rows = task.get(TABLE_FIELD) or []
	for row in rows:
		_validate_row(task, row)
	_refuse_overlaps(rows)
	if rows:
		loop = find_loop(task.name, [row.next_task for row in rows])
		if loop:
			throw_text(
				_("Then Run would make a loop: {0}. A task must not run again after its own run.").format(
					" → ".join(loop)
				),
				title=_("Loop of Tasks"),
			)


def _validate_row(task: Document, row: Document) -> None:
	where = _("Then Run row {0}").format(row.idx)
	row.run_on = row.run_on or "Success"
	if row.run_on not in RUN_ON:
		throw_text(
			_("{0}: Run On must be Success, Failure or Always, got {1}.").format(where, row.run_on),
			title=_("Invalid Then Run"),
		)
	row.delay_seconds = cint(row.delay_seconds)
	if not 0 <= row.delay_seconds <= MAX_DELAY_SECONDS:
		throw_text(
			_("{0}: Delay must be from 0 to {1} seconds (30 days), got {2}.").format(
				where, MAX_DELAY_SECONDS, row.delay_seconds
			),
			title=_("Invalid Then Run"),
		)
	row.result_argument = (row.result_argument or "").strip() or None
	name = row.result_argument
	if name and (not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_")):
		throw_text(
			_(
				"{0}: Result Argument {1!r} is not a keyword argument name (letters, digits and _, not "
				"starting with a digit or _)."
			).format(where, name),
			title=_("Invalid Then Run"),
		)
	if not row.next_task:
		frappe.throw(_("{0}: Next Task is required.").format(where), frappe.MandatoryError)
	if row.next_task == task.name:
		throw_text(
			_("{0}: task {1} cannot run itself after its own run.").format(where, task.name),
			title=_("Loop of Tasks"),
		)
	if site_transfer.task_not_imported_yet(row.next_task):
		return  # an import of several tasks in any order: checked when that task is saved
	values = frappe.db.get_value(
		TASK, row.next_task, ["docstatus", "function_string", "arguments"], as_dict=True
	)
	if values is None:
		throw_text(
			_("{0}: task {1} does not exist.").format(where, row.next_task), title=_("Invalid Then Run")
		)
	if cint(values.docstatus) != 1:
		state = _("cancelled") if cint(values.docstatus) == 2 else _("a draft")
		throw_text(
			_("{0}: task {1} is {2}; only submitted tasks run.").format(where, row.next_task, state),
			title=_("Invalid Then Run"),
		)
	try:
		arguments = parse_arguments(values.arguments, _("Task {0} arguments").format(row.next_task))
		if name:
			arguments = merge_arguments(arguments, {name: None})
		check_arguments(resolve_task_function(values.function_string), arguments, complete=True)
	except (ArgumentsError, CallableError) as exc:
		if name:
			message = _("{0}: task {1} cannot take the result as {2}: {3}").format(
				where, row.next_task, name, exc
			)
		else:
			message = _("{0}: task {1} cannot run with its own arguments: {2}").format(
				where, row.next_task, exc
			)
		throw_text(message, title=_("Invalid Then Run"))


def _refuse_overlaps(rows: list[Document]) -> None:
	"""One run of the next task per run of this one: two rows for the same task must not both match
	the same outcome (Success and Failure may both name it; Always covers both)."""
	for i, row in enumerate(rows):
		for earlier in rows[:i]:
			if earlier.next_task == row.next_task and RUN_ON[earlier.run_on] & RUN_ON[row.run_on]:
				throw_text(
					_("Then Run rows {0} and {1} both run task {2} after the same outcome; keep one.").format(
						earlier.idx, row.idx, row.next_task
					),
					title=_("Invalid Then Run"),
				)


def find_loop(task: str, next_tasks: list[str]) -> list[str] | None:
	"""The shortest loop from ``task`` back to itself through Then Run rows (``next_tasks``: this task's
	own, maybe unsaved; the others' as saved, rows of cancelled tasks left out: they never run), as
	[task, ..., task]; None when there is none. Refused (as a loop could hide there) beyond MAX_WALK tasks."""
	parent: dict[str, str] = {}
	frontier = []
	for name in next_tasks:
		if name and name not in parent:
			parent[name] = task
			frontier.append(name)
	while frontier:
		if task in parent:
			break
		if len(parent) > MAX_WALK:
			throw_text(
				_(
					"More than {0} tasks follow task {1} through Then Run; BTU cannot check them for a loop."
				).format(MAX_WALK, task),
				title=_("Loop of Tasks"),
			)
		following = []
		for source, target in _edges([name for name in frontier if name != task]):
			if target and target not in parent:
				parent[target] = source
				following.append(target)
		frontier = following
	if task not in parent:
		return None
	path = [task]
	current = parent[task]
	while current != task:
		path.append(current)
		current = parent[current]
	path.append(task)
	return list(reversed(path))


def _edges(sources: list[str]) -> list[tuple[str, str]]:
	"""(task, next task) of the saved Then Run rows of these tasks (not cancelled), in row order."""
	if not sources:
		return []
	chain, task = frappe.qb.DocType(CHAIN), frappe.qb.DocType(TASK)
	rows = (
		frappe.qb.from_(chain)
		.join(task)
		.on(chain.parent == task.name)
		.select(chain.parent, chain.next_task)
		.where(chain.parenttype == TASK)
		.where(chain.parentfield == TABLE_FIELD)
		.where(chain.parent.isin(sources))
		.where(task.docstatus < 2)
		.orderby(chain.parent)
		.orderby(chain.idx)
		.run()
	)
	return [(row[0], row[1]) for row in rows]


# --- when a run ends ---------------------------------------------------------------------------------


def rows_for(task: Document, status: str) -> list[Document]:
	"""The Then Run rows of ``task`` that follow a run ending with ``status`` (no query: the rows come with
	the task's document)."""
	return [row for row in task.get(TABLE_FIELD) or [] if status in RUN_ON.get(row.run_on or "Success", ())]


def start_chained(
	task: Document,
	log: Document,
	status: str,
	*,
	retried: bool = False,
	run_later: Callable[..., str],
) -> tuple[list[str], list[str]]:
	"""Inside the transaction of A's final Task Log ``log`` (never commits): one one-shot of the next task
	per matching row, with ``chained_from`` = the log and, when the row says so, A's result in an argument.
	``retried``: A's failed run will be retried automatically, so it is not A's last word (no Failure
	row follows it; its last attempt's will). Chains follow runs of submitted tasks only (a draft's run
	is a try-out, as for retries).
	Returns (run ids, errors); an error (e.g. the next task cancelled since) is rolled back to a savepoint
	and returned for the Error Log, never raised: A's log must be committed whatever happens here."""
	started: list[str] = []
	errors: list[str] = []
	if retried and status in (FAILED, TIMEOUT):
		return started, errors
	rows = rows_for(task, status)
	if not rows or log is None or cint(task.docstatus) != 1:
		return started, errors
	for row in rows:
		if already_started(log.name, row.next_task):
			continue
		savepoint = f"btu_chain_{row.idx}"
		frappe.db.savepoint(savepoint)
		try:
			overrides = None
			if row.result_argument:
				overrides = {row.result_argument: argument_value(log.result_message)}
			with as_administrator():
				started.append(
					run_later(
						row.next_task,
						delay=cint(row.delay_seconds) or None,
						overrides=overrides,
						chained_from=log.name,
					)
				)
		except Exception as exc:  # noqa: BLE001 - reported after A's log is committed
			frappe.db.rollback(save_point=savepoint)
			frappe.clear_last_message()
			errors.append(
				_("Task Log {0}: could not start task {1} (Then Run row {2}): {3}").format(
					log.name, row.next_task, row.idx, _plain(exc)
				)
			)
	return started, errors


def already_started(log_name: str, next_task: str) -> bool:
	"""A run of ``next_task`` chained from this log exists (its one-shot or its Task Log): a locking read,
	so that a second finish of the same log in another transaction sees what the first committed."""
	for doctype in (SCHEDULE, LOG):
		if frappe.db.get_value(
			doctype, {"chained_from": log_name, "task": next_task}, "name", for_update=True
		):
			return True
	return False


def argument_value(result_message: str | None) -> Any:
	"""A's result for B's argument: the Result Message parsed as JSON when it is JSON, else the text
	(cut at MAX_ARGUMENT_CHARS)."""
	text = result_message or ""
	if len(text) > MAX_ARGUMENT_CHARS:
		return text[:MAX_ARGUMENT_CHARS] + f"\n[... {len(text) - MAX_ARGUMENT_CHARS} characters omitted ...]"
	return parse_result(text)


def parse_result(text: str | None) -> Any:
	if not text:
		return None
	try:
		return json.loads(text)
	except (ValueError, RecursionError):
		return text


# --- while the next task runs ---------------------------------------------------------------------


@contextmanager
def running(chained_from: str | None) -> Iterator[None]:
	"""The runner, around the call of a chained run's function: ``chain_input()`` answers for it."""
	previous = frappe.flags.get(_FLAG)
	frappe.flags[_FLAG] = chained_from or None
	try:
		yield
	finally:
		frappe.flags[_FLAG] = previous


def chain_input() -> dict[str, Any] | None:
	"""The run that started the running task through Then Run: {log, task, status, result} (result:
	its Result Message, parsed as JSON when it is JSON); None when this run was not chained."""
	log_name = frappe.flags.get(_FLAG)
	if not log_name:
		return None
	values = frappe.db.get_value(LOG, log_name, ["task", "success_fail", "result_message"], as_dict=True)
	if values is None:  # deleted since
		return {"log": log_name, "task": None, "status": None, "result": None}
	return {
		"log": log_name,
		"task": values.task,
		"status": values.success_fail,
		"result": parse_result(values.result_message),
	}


def chained_runs(log_name: str) -> list[dict[str, Any]]:
	"""The runs a log started: their Task Logs, and one-shots still pending (Desk's log form)."""
	logs = frappe.get_all(
		LOG,
		filters={"chained_from": log_name},
		fields=["name", "task", "success_fail", "schedule"],
		order_by="creation asc",
	)
	ran = {row.schedule for row in logs if row.schedule}
	pending = [
		{"run_id": row.name, "task": row.task, "when": row.schedule_description, "enabled": row.enabled}
		for row in frappe.get_all(
			SCHEDULE,
			filters={"chained_from": log_name},
			fields=["name", "task", "schedule_description", "enabled"],
			order_by="creation asc",
		)
		if row.name not in ran
	]
	return [{"log": row.name, "task": row.task, "status": row.success_fail} for row in logs] + pending


# --- helpers ---------------------------------------------------------------------------------------


def _plain(exc: Exception) -> str:
	"""An exception's message as plain text (frappe.throw messages may be escaped markup)."""
	from html import unescape

	return unescape(str(exc)).strip() or type(exc).__name__
