"""Failed RQ jobs of BTU on this site (the BTU Failed Jobs page, and Python).

BTU's task runner never raises, so a failed RQ job of BTU is a run whose work horse died (out of
memory, SIGKILL, ``os._exit``) or a job that failed before or outside the runner. This module
lists the failed jobs of every BTU Queue's RQ queue (Frappe v15: ``<bench_id>:<queue>``) that are
BTU's (job id ``btu-...`` as the daemon makes them, or a method of ``btu.btu_core.task_runner``,
as "Run now in a worker" enqueues it) and belong to this site, shows one (traceback, arguments,
task, schedule), requeues one (a new run of the same task with the same arguments, through the
daemon: ``btu.api.run_later``; the failed job leaves the registry) or deletes one.

Only this site's BTU jobs can be opened, requeued or deleted; every function needs a System
Manager.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import frappe
from frappe import _

from btu.btu_api.permissions import require_manager
from btu.btu_core import audit
from btu.btu_core.text import throw_text

TASK_RUNNER_PREFIX = "btu.btu_core.task_runner."
FRAPPE_EXECUTE_JOB = "frappe.utils.background_jobs.execute_job"
SCAN_LIMIT = 5000  # newest failed jobs read per queue (RQ keeps failed jobs 7 days by default)
FETCH_BATCH = 200
MAX_LIST = 500


# --- the queues ---------------------------------------------------------------------------------


def rq_queue_name(btu_queue: str) -> str:
	"""The RQ queue a BTU Queue's runs go to. ``frappe.flags.btu_rq_queue_prefix`` replaces Frappe's
	``<bench_id>:`` for this process only (BTU's tests point it at their own daemon's queues)."""
	prefix = frappe.flags.get("btu_rq_queue_prefix")
	if prefix:
		return f"{prefix}{btu_queue}"
	from frappe.utils.background_jobs import generate_qname

	return generate_qname(btu_queue)


def btu_queues() -> dict[str, str]:
	"""RQ queue name -> BTU Queue name, for every BTU Queue."""
	return {rq_queue_name(name): name for name in frappe.get_all("BTU Queue", pluck="name", order_by="name")}


def _conn():
	from frappe.utils.background_jobs import get_redis_conn

	return get_redis_conn()


# --- reading jobs ---------------------------------------------------------------------------------


def _job_call(job) -> tuple[str | None, dict[str, Any]]:
	"""(method, keyword arguments of the method) of a job: Frappe's execute_job unwrapped."""
	func = job.func_name
	kwargs = job.kwargs or {}
	if func == FRAPPE_EXECUTE_JOB:
		method = kwargs.get("method")
		if callable(method):
			method = f"{method.__module__}.{method.__qualname__}"
		return method, dict(kwargs.get("kwargs") or {})
	return func, dict(kwargs)


def _job_site(job) -> str | None:
	meta_site = (job.meta or {}).get("btu_site")
	if meta_site:
		return meta_site
	if job.func_name == FRAPPE_EXECUTE_JOB:
		return (job.kwargs or {}).get("site")
	return None


def is_btu_job(job, site: str) -> bool:
	"""A job of BTU (the daemon's id, or a method of BTU's task runner) that belongs to ``site``."""
	try:
		method, _kwargs = _job_call(job)
		job_site = _job_site(job)
	except Exception:  # noqa: BLE001 - a job whose data cannot be read is nobody's we can tell
		return job.id.startswith("btu-") and (job.meta or {}).get("btu_site") == site
	ours = job.id.startswith("btu-") or (isinstance(method, str) and method.startswith(TASK_RUNNER_PREFIX))
	return ours and job_site == site


def _iso(value: datetime | None) -> str | None:
	if value is None:
		return None
	if value.tzinfo is None:
		value = value.replace(tzinfo=timezone.utc)  # RQ keeps UTC
	return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _wall(value: datetime | None, zone: str) -> str | None:
	from btu.btu_api.status import wall_time

	if value is None:
		return None
	if value.tzinfo is None:
		value = value.replace(tzinfo=timezone.utc)
	return wall_time(value.timestamp(), zone)


def exc_string(job) -> str:
	"""The job's traceback (rq >= 1.12 keeps it in the job's results, older rq on the job)."""
	try:
		result = job.latest_result()
		if result is not None and result.type == result.Type.FAILED:
			return result.exc_string or ""
	except Exception:  # noqa: BLE001 - rq without results, or none kept
		pass
	return getattr(job, "_exc_info", None) or ""


def _last_line(text: str) -> str:
	lines = [line for line in (text or "").strip().splitlines() if line.strip()]
	return lines[-1].strip()[:300] if lines else ""


def _summary(job, btu_queue: str, rq_name: str, user_zone: str) -> dict[str, Any]:
	try:
		method, kwargs = _job_call(job)
		unreadable = None
	except Exception as exc:  # noqa: BLE001
		method, kwargs, unreadable = None, {}, f"{type(exc).__name__}: {exc}"
	meta = job.meta or {}
	fire_ts = meta.get("btu_fire_time") or kwargs.get("fire_time")
	error = exc_string(job)
	return {
		"job_id": job.id,
		"queue": btu_queue,
		"rq_queue": rq_name,
		"method": method,
		"task": meta.get("btu_task") or kwargs.get("task_name"),
		"schedule": meta.get("btu_schedule") or kwargs.get("schedule_name"),
		"fire_time": _wall(datetime.fromtimestamp(float(fire_ts), timezone.utc), user_zone)
		if fire_ts
		else None,
		"enqueued_at": _wall(job.enqueued_at, user_zone),
		"started_at": _wall(job.started_at, user_zone),
		"ended_at": _wall(job.ended_at, user_zone),
		"ended_at_utc": _iso(job.ended_at),
		"error": _last_line(error) or unreadable or "",
		"description": job.description,
	}


def _failed_jobs(site: str, queues: dict[str, str], scan_limit: int = SCAN_LIMIT):
	"""Yield (job, BTU queue, RQ queue, registry) for this site's failed BTU jobs, among the newest
	``scan_limit`` failures of each queue."""
	from rq import Queue
	from rq.job import Job

	conn = _conn()
	for rq_name, btu_queue in queues.items():
		registry = Queue(rq_name, connection=conn).failed_job_registry
		ids = [
			i.decode() if isinstance(i, bytes) else i for i in conn.zrevrange(registry.key, 0, scan_limit - 1)
		]
		for start in range(0, len(ids), FETCH_BATCH):
			for job in Job.fetch_many(ids[start : start + FETCH_BATCH], connection=conn):
				if job is not None and is_btu_job(job, site):
					yield job, btu_queue, rq_name, registry


def failed_jobs(limit: int = MAX_LIST) -> list[dict[str, Any]]:
	"""This site's failed BTU jobs in every BTU Queue, newest failure first."""
	from btu.btu_api.status import user_time_zone

	zone = user_time_zone()
	rows = [
		_summary(job, btu_queue, rq_name, zone)
		for job, btu_queue, rq_name, _registry in _failed_jobs(frappe.local.site, btu_queues())
	]
	rows.sort(key=lambda row: row["ended_at_utc"] or "", reverse=True)
	return rows[: max(1, int(limit))]


def _find(job_id: str):
	"""The failed BTU job of this site with this id: (job, BTU queue, RQ queue, registry)."""
	from rq.exceptions import NoSuchJobError
	from rq.job import Job

	job_id = (job_id or "").strip()
	if not job_id:
		frappe.throw(_("Name the failed job: its job id is empty."), title=_("No Job"))
	conn = _conn()
	try:
		job = Job.fetch(job_id, connection=conn)
	except NoSuchJobError:
		job = None
	if job is not None and is_btu_job(job, frappe.local.site):
		for rq_name, btu_queue in btu_queues().items():
			from rq import Queue

			registry = Queue(rq_name, connection=conn).failed_job_registry
			if conn.zscore(registry.key, job.id) is not None:
				return job, btu_queue, rq_name, registry
	frappe.throw(
		_(
			"{0} is not a failed BTU job of site {1} (it was requeued, deleted or expired, or it is not BTU's)."
		).format(job_id, frappe.local.site),
		frappe.DoesNotExistError,
		title=_("No Such Failed Job"),
	)


def failed_job(job_id: str) -> dict[str, Any]:
	"""One failed job: the summary, its traceback, its arguments and the Task Log it left (if any)."""
	from btu.btu_api.status import user_time_zone

	job, btu_queue, rq_name, _registry = _find(job_id)
	out = _summary(job, btu_queue, rq_name, user_time_zone())
	out["traceback"] = exc_string(job)
	try:
		method, kwargs = _job_call(job)
		out["arguments"] = json.dumps(kwargs, indent=1, sort_keys=True, default=str)
		out["job_arguments"] = json.dumps(job.kwargs or {}, indent=1, sort_keys=True, default=str)
	except Exception as exc:  # noqa: BLE001
		out["arguments"] = out["job_arguments"] = _("(cannot be read: {0}: {1})").format(
			type(exc).__name__, exc
		)
	out["timeout"] = job.timeout
	out["task_exists"] = bool(out["task"] and frappe.db.exists("BTU Task", out["task"]))
	out["schedule_exists"] = bool(out["schedule"] and frappe.db.exists("BTU Task Schedule", out["schedule"]))
	out["log"] = frappe.db.get_value("BTU Task Log", {"job_id": job.id}, "name", order_by="creation desc")
	return out


# --- acting on a job ----------------------------------------------------------------------------------


def requeue(job_id: str) -> dict[str, Any]:
	"""Run the failed job's task again with the same arguments, as a one-shot through the daemon
	(``btu.api.run_later``, due now), and take the job out of the failed registry. Two people
	requeueing the same job at once make one run: the registry entry is claimed atomically first."""
	import btu.api
	from btu.btu_core import retries

	job, btu_queue, _rq_name, registry = _find(job_id)
	method, kwargs = _job_call(job)
	task = (job.meta or {}).get("btu_task") or kwargs.get("task_name")
	if not task:
		throw_text(_("Failed job {0} names no BTU Task, so it cannot be run again.").format(job.id))
	conn = _conn()
	score = conn.zscore(registry.key, job.id)
	if not conn.zrem(registry.key, job.id):
		frappe.throw(
			_("Failed job {0} was just requeued or deleted by someone else.").format(job.id),
			title=_("Already Requeued"),
		)
	frappe.db.after_rollback.add(lambda: conn.zadd(registry.key, {job.id: score}))  # the run was not made
	previous_log = frappe.db.get_value("BTU Task Log", {"job_id": job.id}, "name", order_by="creation desc")
	schedule = (job.meta or {}).get("btu_schedule") or kwargs.get("schedule_name")
	plain = job.func_name != FRAPPE_EXECUTE_JOB and not (method or "").startswith(TASK_RUNNER_PREFIX)
	overrides = kwargs if plain else None  # plain job mode (outside a bench): the function's own arguments
	if previous_log:
		retries.refuse_if_retried(previous_log)
	run_id = retries.run_again(
		task,
		previous_log=previous_log,
		schedule=schedule,
		overrides=overrides,
		queue=btu_queue,
		run_later=btu.api.run_later,
	)
	frappe.db.after_commit.add(job.delete)
	return {"job_id": job.id, "run_id": run_id, "task": task, "retry_of": previous_log}


def delete(job_id: str) -> dict[str, Any]:
	"""Delete the failed job from RQ (its Task Log, if any, stays)."""
	job, _btu_queue, _rq_name, registry = _find(job_id)
	registry.remove(job, delete_job=True)
	return {"job_id": job.id, "deleted": True}


# --- Desk ---------------------------------------------------------------------------------------------


@frappe.whitelist()
def list_failed_jobs(limit: int = MAX_LIST) -> dict[str, Any]:
	"""The BTU Failed Jobs page: this site's failed BTU jobs and the queues looked at."""
	require_manager()
	queues = btu_queues()
	try:
		jobs = failed_jobs(min(max(int(limit or MAX_LIST), 1), MAX_LIST))
	except Exception as exc:  # noqa: BLE001 - Redis down: say so on the page
		return {"queues": sorted(queues.values()), "jobs": [], "error": f"{type(exc).__name__}: {exc}"}
	return {"queues": sorted(queues.values()), "jobs": jobs, "site": frappe.local.site}


@frappe.whitelist()
def get_failed_job(job_id: str) -> dict[str, Any]:
	require_manager()
	return failed_job(job_id)


@frappe.whitelist(methods=["POST"])
def requeue_failed_job(job_id: str) -> dict[str, Any]:
	require_manager()
	outcome = requeue(job_id)
	audit.note_action(
		"BTU Task",
		outcome.get("task"),
		_("requeued failed job {0}: run {1}.").format(audit.text(job_id), audit.text(outcome.get("run_id"))),
	)
	return outcome


@frappe.whitelist(methods=["POST"])
def delete_failed_job(job_id: str) -> dict[str, Any]:
	require_manager()
	task = failed_job(job_id).get("task")
	outcome = delete(job_id)
	audit.note_action("BTU Task", task, _("deleted failed job {0}.").format(audit.text(job_id)))
	return outcome
