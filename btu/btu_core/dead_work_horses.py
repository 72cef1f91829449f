"""Runs whose work horse died: a Failed Task Log, their emails and their retries, within a minute.

A work horse killed outright (out of memory, SIGKILL, ``os._exit``) never reaches the runner's
bookkeeping: RQ moves its job to the failed registry and nothing else happens. Every minute (a
Frappe scheduler event, run by the site's own workers, independent of the run that died) this
sweep finds this site's failed BTU runner jobs that left no finished Task Log and finishes them
as the runner would have: a Failed log (the In-Progress one, if it wrote one) saying the work
horse died and how, the task's emails and its automatic retries. Each job is recorded once: a
mark in its RQ meta, and a Redis lock so that two sweeps of a site never overlap.
"""

from __future__ import annotations

from datetime import timezone
from typing import Any

import frappe
from frappe import _
from frappe.utils import convert_utc_to_system_timezone, now_datetime

from btu.btu_api import failed_jobs
from btu.btu_core import task_runner

RECORDED = "btu_death_recorded"  # job meta: this death has its Task Log
RUNNER_METHODS = {
	"btu.btu_core.task_runner.run_scheduled_task": task_runner.COMPONENT_SCHEDULER,
	"btu.btu_core.task_runner.run_enqueued_task": task_runner.COMPONENT_WORKER,
}
LOCK_SECONDS = 55
SCAN_NEWEST = 200  # newest failures read per queue each minute (a failure is seen within a minute)


def record_dead_work_horses() -> int:
	"""Finish every run of this site whose work horse died; returns how many it recorded."""
	conn = failed_jobs._conn()
	lock = f"btu:{frappe.local.site}:dead_work_horse_sweep"
	if not conn.set(lock, "1", nx=True, ex=LOCK_SECONDS):
		return 0  # another sweep of this site is at it
	recorded = 0
	try:
		for job, _btu_queue, _rq_name, _registry in failed_jobs._failed_jobs(
			frappe.local.site, failed_jobs.btu_queues()
		):
			if (job.meta or {}).get(RECORDED):
				continue
			if record_one(job):
				recorded += 1
			job.meta[RECORDED] = 1
			job.save_meta()
	finally:
		conn.delete(lock)
	return recorded


def record_one(job: Any) -> bool:
	"""The Failed log of one dead run (False: not a runner job, or its log is already final)."""
	method, kwargs = failed_jobs._job_call(job)
	component = RUNNER_METHODS.get(method or "")
	if component is None:
		return False
	existing = frappe.db.get_value(
		"BTU Task Log", {"job_id": job.id}, ["name", "success_fail"], as_dict=True, order_by="creation desc"
	)
	if existing and existing.success_fail != task_runner.IN_PROGRESS:
		return False  # the runner finished its log: the job failed after it (nothing to add)
	task = task_runner._get_or_none("BTU Task", kwargs.get("task_name") or "")
	if task is None:
		return False
	schedule_name = kwargs.get("schedule_name")
	schedule = task_runner._get_or_none("BTU Task Schedule", schedule_name) if schedule_name else None
	record = task_runner._RunRecord(
		task, schedule, component, job.id, task_runner._fire_time_to_system(kwargs.get("fire_time"))
	)
	record.started_at = _system_time(job.started_at) or now_datetime()
	record.called = True  # it ran: a failure that counts for the automatic retries
	if existing:
		record.log = frappe.get_doc("BTU Task Log", existing.name)
	elapsed = (job.ended_at - job.started_at).total_seconds() if job.ended_at and job.started_at else 0.0
	record.finish(task_runner.FAILED, max(elapsed, 0.0), "", death_message(job))
	return True


def death_message(job: Any) -> str:
	how = failed_jobs._last_line(failed_jobs.exc_string(job)) or _("no exit status was kept")
	return _(
		"The work horse running this task died before the run could finish (killed, out of memory, or "
		"os._exit): {0}. Its output was lost with it. Job {1}."
	).format(how, job.id)


def _system_time(value: Any) -> Any:
	"""An RQ time (naive UTC) as a naive datetime in the system zone, like every Datetime field."""
	if value is None:
		return None
	if value.tzinfo is None:
		value = value.replace(tzinfo=timezone.utc)
	return convert_utc_to_system_timezone(value).replace(tzinfo=None)
