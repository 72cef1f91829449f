"""BTU's Python API: run a task now or later, cancel a pending run, run a function without a Desk task.

Every run goes through the scheduler daemon's exactly-once path: it is a *one-shot*, a BTU Task
Schedule with Run Frequency "Once" and a Run At time, which the daemon enqueues once at its
moment and a worker runs, leaving a BTU Task Log (``schedule`` = the run id). Each call returns
the **run id** (the one-shot's name); ``run_status(run_id)`` follows it to its Task Log.

From Python (inside a site: a request, a job, ``bench console``)::

    from datetime import datetime
    from zoneinfo import ZoneInfo
    import btu.api

    run = btu.api.run_later("BTU-00001", at=datetime(2026, 12, 24, 14, 0, tzinfo=ZoneInfo("Europe/Paris")))
    btu.api.run_later("BTU-00001", delay=600, overrides={"name": "later"}, queue="long")
    btu.api.run_now("BTU-00001")
    btu.api.cancel(run)                      # True while it has not started
    btu.api.run_status(run)                  # {"state": "pending", "fire_time_utc": ..., "log": None, ...}
    btu.api.run_function("my_app.tasks.rebuild", {"full": True}, delay=60)

From a shell: ``bench --site site1.local execute btu.api.run_now --kwargs '{"task": "BTU-00001"}'``
(``at`` then is a string: ISO-8601 with an offset, ``2026-12-24T14:00:00+01:00``, or a wall time
and an IANA zone, ``2026-12-24 14:00:00 Europe/Paris``). Over REST: ``POST
/api/method/btu.api.run_later`` with the same arguments.

Permissions are the whitelisted endpoints': running a task executes server code, so only a
System Manager may (``frappe.PermissionError`` otherwise), and the task must be readable. Bad
input raises ``frappe.ValidationError`` naming the argument and what was wrong.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import frappe
from frappe import _
from frappe.utils import cint, get_datetime

from btu.btu_api.permissions import require_doc_permission, require_manager
from btu.btu_core import audit
from btu.contracts.arguments import ArgumentsError, parse_arguments
from btu.contracts.redis_keys import KEYS, RedisKeys
from btu.contracts.runs import ONCE, RunAtError, aware_to_wall_time, describe_once, instant_to_wall_time
from btu.contracts.schedule_rules import TimeZoneError, validate_timezone

SCHEDULE = "BTU Task Schedule"
MAX_DELAY_SECONDS = 10 * 366 * 24 * 3600


@frappe.whitelist(methods=["POST"])
def run_later(
	task: str,
	at: datetime | str | None = None,
	delay: float | None = None,
	overrides: dict | str | None = None,
	queue: str | None = None,
	*,
	attempt: int = 1,
	retry_of: str | None = None,
	chained_from: str | None = None,
) -> str:
	"""Run the submitted BTU Task ``task`` once, at ``at`` (an aware datetime) or after ``delay``
	seconds (neither: now), with ``overrides`` merged over its arguments, in ``queue`` (a BTU Queue;
	default: the task's). ``attempt``/``retry_of`` (a BTU Task Log) are copied into the run's Task
	Log: retries of a failed run pass ``attempt=n + 1, retry_of=<its log>``; so is ``chained_from``
	(a BTU Task Log: the run whose end started this one, see ``chain_input``).
	Never commits: the caller's transaction holds the one-shot, and the daemon hears of it after the
	commit. Returns the run id (the name of the one-shot BTU Task Schedule)."""
	require_manager()
	task = _existing_task(task)
	wall, zone = _when(at, delay)
	doc = frappe.get_doc(
		{
			"doctype": SCHEDULE,
			"task": task,
			"enabled": 1,
			"run_frequency": ONCE,
			"run_at": wall,
			"cron_timezone": zone,
			"argument_overrides": _overrides_json(overrides),
			"queue_name": _queue(queue),
			"attempt": _attempt(attempt),
			"retry_of": _retry_of(retry_of),
			"chained_from": _log_or_none(chained_from, "chained_from"),
		}
	)
	doc.insert()
	return doc.name


@frappe.whitelist(methods=["POST"])
def run_now(task: str, overrides: dict | str | None = None, queue: str | None = None) -> str:
	"""``run_later`` due now: the daemon enqueues it as soon as the transaction commits. Returns the run id."""
	return run_later(task, overrides=overrides, queue=queue)


@frappe.whitelist(methods=["POST"])
def cancel(run_id: str) -> bool:
	"""Cancel a pending one-shot: True when it was pending and will not run; False when it had
	already started (or ran, or was cancelled before). Its record stays, disabled."""
	require_manager()
	name = _one_shot(run_id)
	row = frappe.db.sql(f"SELECT enabled FROM `tab{SCHEDULE}` WHERE name = %s FOR UPDATE", (name,))
	if not row or not cint(row[0][0]):
		return False
	doc = frappe.get_doc(SCHEDULE, name)
	doc.enabled = 0
	doc.save()  # tells the daemon after commit; a run it already enqueued is skipped by the worker
	message = _("cancelled run {0} ({1}).").format(audit.text(name), audit.text(doc.schedule_description))
	audit.note_action(SCHEDULE, name, message)
	audit.note_action("BTU Task", doc.task, message)
	return True


@frappe.whitelist(methods=["POST"])
def run_function(
	function_path: str,
	arguments: dict | str | None = None,
	at: datetime | str | None = None,
	delay: float | None = None,
	queue: str | None = None,
	max_task_duration: int | None = None,
) -> str:
	"""Run any function of an installed app once, without keeping a Desk task (the original BTU's
	TransientTask): a BTU Task is made and submitted for it, with a one-shot flagged Delete After
	Run; after a successful run both are deleted and only the Task Log stays (it keeps their
	names). A failed run keeps them (the one-shot disabled) for a look and a retry. Returns the
	run id."""
	require_manager()
	function_path = (function_path or "").strip()
	if not function_path:
		frappe.throw(_("function_path is required: a dotted path such as my_app.tasks.rebuild."))
	task = frappe.get_doc(
		{
			"doctype": "BTU Task",
			"desc_short": f"Transient: {function_path}"[:140],
			"function_string": function_path,
			"arguments": _overrides_json(arguments, "arguments"),
			"queue_name": _queue(queue) or "default",
			"max_task_duration": cint(max_task_duration) or 600,
		}
	)
	task.insert()
	task.submit()
	wall, zone = _when(at, delay)
	doc = frappe.get_doc(
		{
			"doctype": SCHEDULE,
			"task": task.name,
			"enabled": 1,
			"run_frequency": ONCE,
			"run_at": wall,
			"cron_timezone": zone,
			"queue_name": task.queue_name,
			"delete_after_run": 1,
		}
	)
	doc.insert()
	return doc.name


@frappe.whitelist()
def run_status(run_id: str) -> dict[str, Any]:
	"""Where a run is: ``state`` is waiting (saved, not planned by the daemon yet), pending (planned:
	the daemon holds its fire time), enqueued (in RQ), running, Success / Failed / Timeout / Skipped
	(its Task Log; Skipped: it reached a worker after its start deadline), cancelled, missed (its time passed more than misfire_grace before it could be
	enqueued) or unknown; ``log`` is its Task Log once there is one, ``fire_time`` when it runs."""
	logs = frappe.get_all(
		"BTU Task Log",
		filters={"schedule": run_id},
		fields=["name", "success_fail", "date_time_started", "execution_time"],
		order_by="creation desc",
		limit_page_length=1,
	)
	exists = frappe.db.exists(SCHEDULE, run_id)
	if exists:
		require_doc_permission(SCHEDULE, run_id, "read")
	elif not logs:
		throw_text(_("Run {0} does not exist.").format(run_id), frappe.DoesNotExistError)
	else:
		require_doc_permission("BTU Task Log", logs[0].name, "read")
	out: dict[str, Any] = {"run_id": run_id, "log": logs[0].name if logs else None}
	if logs:
		out.update(state=logs[0].success_fail, execution_time=logs[0].execution_time)
		if logs[0].success_fail != "In-Progress":
			return out
	if not exists:
		out.setdefault("state", "unknown")
		return out
	doc = frappe.get_doc(SCHEDULE, run_id)
	if doc.run_frequency != ONCE:
		throw_text(_("{0} is a repeating schedule, not a one-shot run.").format(run_id))
	fire_ts = doc.run_at_timestamp()
	out.update(
		task=doc.task,
		time_zone=doc.time_zone(),
		fire_ts=fire_ts,
		fire_time=describe_once(fire_ts, doc.time_zone()),
		attempt=cint(doc.attempt) or 1,
		retry_of=doc.retry_of,
	)
	if logs:
		out["state"] = "running"
		return out
	site, keys = frappe.local.site, _keys()
	try:
		conn = _redis()
		planned = conn.zscore(keys.next_runs(site), run_id)
		job_id = conn.hget(keys.fired(site, fire_ts), run_id)  # its exactly-once marker
		job_status = conn.hget(f"rq:job:{job_id.decode()}", "status") if job_id else None
		skips = conn.hget(keys.skipped(site), run_id)
	except Exception as exc:  # noqa: BLE001 - Redis down: say what is known
		out.update(state="pending" if cint(doc.enabled) else "cancelled", redis_error=str(exc))
		return out
	job_status = job_status.decode() if isinstance(job_status, bytes) else job_status
	missed = [s for s in _json_list(skips) if s.get("fire_time") == fire_ts and s.get("reason") == "misfire"]
	if job_id:
		out.update(job_id=job_id.decode(), job_status=job_status)
	if missed:
		out.update(state="missed", skipped=missed[0])
	elif not cint(doc.enabled):
		# The worker disables a one-shot as it starts it: disabled and not started means cancelled
		# (a run already in the queue is skipped by the worker).
		out["state"] = "running" if job_status == "started" else "cancelled"
	elif job_id:
		out["state"] = "enqueued"
	else:
		out["state"] = "pending" if planned is not None else "waiting"
	return out


# --- Desk ---------------------------------------------------------------------------------------


@frappe.whitelist(methods=["POST"])
def run_once_from_desk(
	task: str,
	run_at: str,
	time_zone: str | None = None,
	overrides: str | None = None,
	queue: str | None = None,
) -> dict[str, Any]:
	"""The task form's "Run once" dialog: ``run_at`` is a wall-clock time in ``time_zone``."""
	require_manager()
	zone = _zone(time_zone)
	try:
		wall = get_datetime(run_at)
	except Exception:  # noqa: BLE001 - frappe raises several kinds for bad text
		throw_text(_("Run At {0!r} is not a date and time.").format(run_at))
	if wall is None:
		frappe.throw(_("Run At is required."), frappe.MandatoryError)
	run_id = run_later(task, at=_aware(wall, zone), overrides=overrides or None, queue=queue or None)
	doc = frappe.get_doc(SCHEDULE, run_id)
	audit.note_action(
		"BTU Task",
		task,
		_("planned a run once: {0} ({1}).").format(audit.text(run_id), audit.text(doc.schedule_description)),
	)
	return {"run_id": run_id, "description": doc.schedule_description, "time_zone": doc.time_zone()}


# --- helpers ------------------------------------------------------------------------------------


def _existing_task(task: str) -> str:
	if not task or not isinstance(task, str):
		frappe.throw(_("task is required: the name of a submitted BTU Task, e.g. BTU-00001."))
	require_doc_permission("BTU Task", task, "read")
	docstatus = frappe.db.get_value("BTU Task", task, "docstatus")
	if cint(docstatus) != 1:
		state = _("cancelled") if cint(docstatus) == 2 else _("a draft")
		throw_text(_("Task {0} is {1}; only submitted tasks run.").format(task, state))
	return task


def _default_zone() -> str:
	from btu.btu_api.status import configuration_time_zone

	return configuration_time_zone()


def _zone(name: str | None) -> str:
	zone = (name or "").strip() or _default_zone()
	try:
		validate_timezone(zone)
	except TimeZoneError as exc:
		throw_text(str(exc), title=_("Invalid Time Zone"))
	return zone


def _aware(wall: datetime, zone: str) -> datetime:
	from zoneinfo import ZoneInfo

	return wall.replace(tzinfo=ZoneInfo(zone))


def _when(at: datetime | str | None, delay: float | str | None) -> tuple[datetime, str]:
	"""(wall time, zone) of the run: ``at`` in its own zone, ``delay`` / now in BTU Configuration's."""
	if at not in (None, "") and delay not in (None, ""):
		frappe.throw(_("Pass either at= or delay=, not both."))
	if at not in (None, ""):
		if isinstance(at, str):
			at = _parse_at(at)
		if not isinstance(at, datetime):
			throw_text(_("at= must be a datetime with a time zone, got {0}.").format(type(at).__name__))
		try:
			return aware_to_wall_time(at, _default_zone())
		except (RunAtError, TimeZoneError) as exc:
			throw_text(str(exc))
	seconds = 0.0
	if delay not in (None, ""):
		try:
			seconds = float(delay)
		except (TypeError, ValueError):
			throw_text(_("delay= must be a number of seconds, got {0!r}.").format(delay))
		if not 0 <= seconds <= MAX_DELAY_SECONDS:
			frappe.throw(
				_("delay= must be from 0 to {0} seconds, got {1:g}.").format(MAX_DELAY_SECONDS, seconds)
			)
	zone = _default_zone()
	# Rounded up to the second: a run is never planned before the moment asked for (an instant in
	# the second pass of a repeated hour is written in UTC: the zone's wall time means the first).
	return instant_to_wall_time(-(-(time.time() + seconds) // 1), zone)


def _parse_at(text: str) -> datetime:
	"""'2026-12-24T14:00:00+01:00' (an offset) or '2026-12-24 14:00:00 Europe/Paris' (a zone)."""
	from zoneinfo import ZoneInfo

	text = text.strip()
	head, _sep, tail = text.rpartition(" ")
	if head and ("/" in tail or tail == "UTC"):
		zone = _zone(tail)
		try:
			return datetime.fromisoformat(head.strip()).replace(tzinfo=ZoneInfo(zone))
		except ValueError:
			throw_text(_("at={0!r}: {1!r} is not an ISO-8601 date and time.").format(text, head))
	try:
		parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
	except ValueError:
		frappe.throw(
			_(
				"at={0!r} is not a date and time; expected ISO-8601 with an offset "
				"(2026-12-24T14:00:00+01:00) or a wall time and a zone (2026-12-24 14:00:00 Europe/Paris)."
			).format(text)
		)
	if parsed.tzinfo is None:
		frappe.throw(
			_("at={0!r} has no time zone; add an offset (+01:00) or an IANA zone (Europe/Paris).").format(
				text
			)
		)
	return parsed


def _overrides_json(value: dict | str | None, what: str = "overrides") -> str | None:
	if value in (None, "", {}):
		return None
	try:
		parsed = parse_arguments(value if isinstance(value, str) else json.dumps(value), what)
	except (ArgumentsError, TypeError, ValueError) as exc:
		throw_text(str(exc), title=_("Invalid Arguments"))
	return json.dumps(parsed, indent=1, sort_keys=True)


def _queue(queue: str | None) -> str | None:
	queue = (queue or "").strip() or None
	if queue and not frappe.db.exists("BTU Queue", queue):
		throw_text(_("queue={0!r} is not a BTU Queue.").format(queue))
	return queue


def _attempt(attempt: Any) -> int:
	try:
		value = int(attempt)
	except (TypeError, ValueError):
		value = 0
	if value < 1:
		throw_text(_("attempt= must be a whole number from 1, got {0!r}.").format(attempt))
	return value


def _retry_of(log: str | None) -> str | None:
	return _log_or_none(log, "retry_of")


def _log_or_none(log: str | None, what: str) -> str | None:
	if not log:
		return None
	if not frappe.db.exists("BTU Task Log", log):
		throw_text(_("{0}={1!r} is not a BTU Task Log.").format(what, log))
	return log


def _one_shot(run_id: str) -> str:
	if not run_id or not frappe.db.exists(SCHEDULE, run_id):
		throw_text(_("Run {0} does not exist.").format(run_id), frappe.DoesNotExistError)
	require_doc_permission(SCHEDULE, run_id, "write")
	if frappe.db.get_value(SCHEDULE, run_id, "run_frequency") != ONCE:
		throw_text(_("{0} is a repeating schedule, not a one-shot run: disable it instead.").format(run_id))
	return run_id


def _keys() -> RedisKeys:
	"""BTU's key names (a test daemon of btu.btu_core.testing sets its own prefix in the flags)."""
	prefix = frappe.flags.get("btu_key_prefix")
	return RedisKeys(prefix) if prefix else KEYS


def _redis():
	from frappe.utils.background_jobs import get_redis_conn

	return get_redis_conn()


def _json_list(raw: Any) -> list[dict]:
	if not raw:
		return []
	try:
		value = json.loads(raw)
	except ValueError:
		return []
	return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


__all__ = ["cancel", "run_function", "run_later", "run_now", "run_status"]


# --- Steps and retries (issue 9 items 4 and 7; maintained with btu.btu_core.steps / retries) -------

from btu.btu_core.steps import step  # noqa: E402 - with step("name"): ... / @step("name"), inside a task
from btu.btu_core.text import throw_text


@frappe.whitelist(methods=["POST"])
def retry(log: str) -> str:
	"""Run a Failed or Timeout run again now, with the arguments it was called with, as a one-shot
	(``run_later``): its Task Log gets ``attempt`` + 1 and ``retry_of`` = ``log``. A log is retried
	once (a second call names the first retry). Returns the run id."""
	require_manager()
	require_doc_permission("BTU Task Log", log, "read")
	from btu.btu_core.retries import retry_log

	run_id = retry_log(log, run_later=run_later)
	audit.note_action(
		"BTU Task",
		frappe.db.get_value("BTU Task Log", log, "task"),
		_("retried log {0}: run {1}.").format(audit.text(log), audit.text(run_id)),
	)
	return run_id


__all__ += ["retry", "step"]  # noqa: PLE0605


# --- Chains (issue 24 item 3; maintained with btu.btu_core.chains) ----------------------------------


def chain_input() -> dict[str, Any] | None:
	"""Inside a task's run: the run whose end started this one through its task's *Then Run* table, as
	``{"log": <its Task Log>, "task": <its task>, "status": "Success" | "Failed" | "Timeout", "result":
	<its Result Message, parsed as JSON when it is JSON>}``; None when this run was not chained."""
	from btu.btu_core.chains import chain_input as current

	return current()


__all__ += ["chain_input"]  # noqa: PLE0605
