"""Whitelisted methods behind the BTU Desk buttons and the status page.

Running tasks and talking to the daemon are reserved to System Managers; read-only
previews need read permission on the doctype concerned.
"""

from __future__ import annotations

import time
from typing import Any
from zoneinfo import available_timezones

import frappe
from frappe import _
from frappe.utils import cint

from btu.btu_api import daemon_link, status
from btu.btu_api.permissions import require_doc_permission, require_manager
from btu.btu_core import audit, business_calendar
from btu.btu_core.text import throw_text
from btu.contracts import pending, protocol
from btu.contracts.calendars import CalendarError
from btu.contracts.jitter import JitterError
from btu.contracts.runs import ONCE
from btu.contracts.schedule_rules import (
	CronError,
	TimeZoneError,
	describe_cron,
	frequency_to_cron,
	next_fire_times,
	validate_timezone,
)

MAX_PREVIEW = 100


@frappe.whitelist(methods=["POST"])
def run_task_now(task: str) -> dict[str, Any]:
	"""Run a task synchronously in this web worker and return its log (or its output for transient tasks)."""
	require_manager()
	require_doc_permission("BTU Task", task, "read")
	from btu.btu_core.task_runner import run_task_on_server

	outcome = run_task_on_server(task)
	audit.note_action(
		"BTU Task",
		task,
		_("pressed Run now on this server: {0}, log {1}.").format(
			audit.text(outcome.get("status")), audit.text(outcome.get("log") or _("none (transient task)"))
		),
	)
	return outcome


@frappe.whitelist(methods=["POST"])
def run_task_in_worker(task: str) -> dict[str, Any]:
	"""Enqueue a task for an RQ worker (its BTU Queue); returns the RQ job id."""
	require_manager()
	require_doc_permission("BTU Task", task, "read")
	from btu.btu_core.task_runner import enqueue_task

	queued = enqueue_task(task)
	audit.note_action(
		"BTU Task",
		task,
		_("pressed Run now in a worker: job {0} in queue {1}.").format(
			audit.text(queued.get("job_id")), audit.text(queued.get("queue"))
		),
	)
	return queued


@frappe.whitelist()
def ping_daemon() -> dict[str, Any]:
	"""Round trip to the daemon: reachable?, milliseconds, version, uptime."""
	require_manager()
	path = daemon_link.socket_path()
	return daemon_link.reply_as_dict(protocol.ping(path), path)


@frappe.whitelist(methods=["POST"])
def resync_all_schedules() -> dict[str, Any]:
	"""Ask the daemon for a full refresh of this site's schedules."""
	require_manager()
	path = daemon_link.socket_path()
	return daemon_link.reply_as_dict(protocol.refresh(path, frappe.local.site), path)


@frappe.whitelist(methods=["POST"])
def resync_schedule(schedule: str) -> dict[str, Any]:
	"""Send one schedule to the daemon again (cancel when it is disabled)."""
	require_manager()
	require_doc_permission("BTU Task Schedule", schedule, "read")
	path = daemon_link.socket_path()
	enabled = cint(frappe.db.get_value("BTU Task Schedule", schedule, "enabled"))
	send = protocol.create_task_schedule if enabled else protocol.cancel_task_schedule
	return daemon_link.reply_as_dict(send(path, schedule, frappe.local.site), path)


@frappe.whitelist()
def preview_schedule(
	run_frequency: str,
	minute: Any = None,
	hour: Any = None,
	day_of_week: str | None = None,
	day_of_month: Any = None,
	month: str | None = None,
	cron_string: str | None = None,
	cron_timezone: str | None = None,
	count: int = 10,
	holiday_list_doctype: str | None = None,
	holiday_list: str | None = None,
	on_holiday: str | None = None,
	jitter_seconds: Any = None,
	schedule: str | None = None,
) -> dict[str, Any]:
	"""Next fire times of (possibly unsaved) schedule settings, in the schedule's zone and the user's,
	as the daemon will run them: after its business calendar and its jitter (derived from the saved
	schedule's name: an unsaved one shows its times without jitter, and says so)."""
	require_doc_permission("BTU Task Schedule", None, "read")
	count = min(max(cint(count) or 10, 1), MAX_PREVIEW)
	zone = (cron_timezone or "").strip() or status.configuration_time_zone()
	settings = frappe._dict(
		holiday_list_doctype=holiday_list_doctype,
		holiday_list=holiday_list,
		on_holiday=on_holiday,
		jitter_seconds=jitter_seconds,
	)
	saved = bool(schedule) and bool(frappe.db.exists("BTU Task Schedule", schedule))
	try:
		cron = frequency_to_cron(
			run_frequency,
			minute=_blank_to_none(minute),
			hour=_blank_to_none(hour),
			day_of_week=day_of_week or None,
			day_of_month=_blank_to_none(day_of_month),
			month=month or None,
			cron_string=cron_string,
		)
		validate_timezone(zone)
		next_fire_times(cron, zone, count=1)  # the rule's whole check, from now
		if not saved:
			settings.jitter_seconds = 0
		if settings.holiday_list:
			business_calendar.validate_schedule(settings)
		times = business_calendar.fire_times_of(
			frappe._dict(cron_string=cron, **settings), zone, name=schedule if saved else ""
		)
		runs = times.next_times(time.time(), count)
	except (CronError, TimeZoneError, CalendarError, JitterError) as exc:
		throw_text(str(exc), title=_("Invalid Schedule"))
	user_zone = status.user_time_zone()
	return {
		"cron_string": cron,
		"description": describe_cron(cron),
		"time_zone": zone,
		"user_time_zone": user_zone,
		"holiday_list": settings.holiday_list or None,
		"on_holiday": settings.on_holiday if settings.holiday_list else None,
		"jitter_seconds": cint(jitter_seconds),
		"jitter_shown": saved or not cint(jitter_seconds),
		"runs": [
			{
				"fire_time_utc": status.wall_time(run, "UTC"),
				"fire_time_schedule_zone": status.wall_time(run, zone),
				"fire_time_user_zone": status.wall_time(run, user_zone),
				"delay_seconds": run - times.rule_time(run),
			}
			for run in runs
		],
	}


@frappe.whitelist()
def weekly_off_dates(from_date: str, to_date: str, weekly_off: str) -> list[str]:
	"""Every Weekly Off day from From Date to To Date (a BTU Holiday List's *Add Weekly Offs*)."""
	require_doc_permission("BTU Holiday List", None, "read")
	from btu.btu_core.holiday_lists import weekly_off_dates as dates

	return [str(day) for day in dates(from_date, to_date, weekly_off)]


@frappe.whitelist()
def schedule_daemon_state(schedule: str) -> dict[str, Any]:
	"""What the daemon holds for one schedule: next fire time in Redis, or why it cannot plan it."""
	require_doc_permission("BTU Task Schedule", schedule, "read")
	zone = (
		frappe.db.get_value("BTU Task Schedule", schedule, "cron_timezone")
		or status.configuration_time_zone()
	)
	try:
		held = pending.read_pending(status.redis_conn(), status.keys(), frappe.local.site, [schedule]).get(
			schedule
		)
		error = status.schedule_errors().get(schedule)
	except Exception as exc:  # noqa: BLE001 - Redis down: say so, do not break the form
		return {"schedule": schedule, "redis_ok": False, "error": f"{type(exc).__name__}: {exc}"}
	next_ts = held.fire_time if held is not None else None
	out: dict[str, Any] = {"schedule": schedule, "redis_ok": True, "next_run": None, "daemon_error": error}
	if next_ts is not None:
		# Confirmed only when the daemon planned it by the rule and zone the schedule has now
		# (btu.contracts.pending): after an edit the daemon has not applied, the time is the old rule's,
		# and a disabled schedule (or a rule the daemon refuses) holds no time of its current rule.
		row = frappe.db.get_value("BTU Task Schedule", schedule, "*", as_dict=True)
		current = status.current_timing(row, status.configuration_time_zone())
		planned_zone = held.zone or zone  # the time is shown in the zone that produced it
		out["next_run"] = {
			"fire_ts": next_ts,
			"fire_time_schedule_zone": status.wall_time(next_ts, planned_zone),
			"fire_time_user_zone": status.wall_time(next_ts, status.user_time_zone()),
			"time_zone": planned_zone,
			"user_time_zone": status.user_time_zone(),
			"state": pending.confirmation(held, current),
			"planned_by": held.rule,
			"planned_zone": planned_zone,
		}
	# Skipped fire times (overlap policy Skip, misfires), the site's pause, a one-shot's progress.
	out["skipped"] = status.skipped_runs(schedule)
	out["paused"] = status.pause_state()
	if frappe.db.get_value("BTU Task Schedule", schedule, "run_frequency") == ONCE:
		from btu.api import run_status

		out["one_shot"] = run_status(schedule)
	return out


@frappe.whitelist()
def upcoming_runs(limit: int = 20) -> list[dict[str, Any]]:
	"""This site's next runs as the daemon holds them in Redis."""
	require_doc_permission("BTU Task Schedule", None, "read")
	return status.upcoming_runs(min(max(cint(limit) or 20, 1), 500))


@frappe.whitelist()
def scheduler_status() -> dict[str, Any]:
	"""Data of the BTU Scheduler Status page."""
	require_manager()
	return status.scheduler_status()


@frappe.whitelist()
def time_zones() -> list[str]:
	"""IANA time zone names for the Autocomplete fields."""
	return sorted(available_timezones())


def _blank_to_none(value: Any) -> Any:
	return None if value in (None, "") else value


@frappe.whitelist()
def task_overview(task: str) -> dict[str, Any]:
	"""A task's runs at a glance: its next run by its enabled schedules' rules, and its last run."""
	require_doc_permission("BTU Task", task, "read")
	upcoming = frappe.get_all(
		"BTU Task Schedule",
		filters={"task": task, "enabled": 1, "next_run": ("is", "set")},
		fields=["name", "next_run"],
		order_by="next_run asc",
		limit_page_length=1,
	)
	last = frappe.get_all(
		"BTU Task Log",
		filters={"task": task},
		fields=["name", "success_fail", "date_time_started", "execution_time"],
		order_by="creation desc",
		limit_page_length=1,
	)
	return {
		"task": task,
		"schedules": frappe.db.count("BTU Task Schedule", {"task": task, "enabled": 1}),
		"next_run": upcoming[0] if upcoming else None,
		"last_run": last[0] if last else None,
	}
