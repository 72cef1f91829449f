"""Alerts for runs that did not happen or went wrong (a dead man's switch per schedule).

Three rules on a recurring schedule, each off at 0:

* **No Success** (``alert_no_success_minutes``): no run succeeded within X minutes after a fire time;
* **Late Start** (``alert_late_start_minutes``): the run of a fire time had not started Y minutes after it;
* **Failures** (``alert_after_failures``): N failed (Failed or Timeout) runs in a row.

An incident is one BTU Alert (Open), raised once: while a schedule has an open alert of a kind, no
second one of that kind is raised. It goes to the site's System Managers as a Notification Log (Frappe
emails it to those whose notification settings ask for it) and onto the schedule's timeline. The next
successful run clears every open alert of its schedule.

Where the checks run, and why: the first two look for something that did *not* happen, so they
cannot run inside the run; nor in the BTU daemon, whose own absence is one of the causes (and which
never imports frappe). They run every minute as a Frappe scheduler event (``check_schedules``), which
needs only Frappe's own scheduler and a worker of Frappe's queue: the daemon down, a BTU queue without
workers, a run hung or failing are all seen. Frappe's own alert channels need a worker too (the email
queue is sent by one), so a site with no worker at all can alert nobody; the status page, computed
when it is opened, still shows the open alerts and the missed runs. Failures are counted by the runner
when a run ends (``after_run``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import frappe
from frappe import _
from frappe.utils import cint, get_datetime, now_datetime

from btu.btu_core import audit, business_calendar, notifications
from btu.btu_core.failure_pause import FAILED_STATES, failed_in_a_row
from btu.btu_core.run_summary import to_system_time
from btu.contracts.fire_times import FireTimes

ALERT = "BTU Alert"
SCHEDULE = "BTU Task Schedule"
NO_SUCCESS, LATE_START, FAILURES = "No Success", "Late Start", "Failures"
ALERT_FIELDS = ("alert_no_success_minutes", "alert_late_start_minutes", "alert_after_failures")
MAX_LOOKBACK = timedelta(days=400)
MAX_STEPS = 5000


def latest_fire_time(times: FireTimes, since: datetime, until: datetime) -> datetime | None:
	"""The schedule's latest fire time in (``since``, ``until``] (aware datetimes), or None.

	Searches back from ``until`` in doubling windows (one rule evaluation each), then steps forward
	through the window that holds one: cheap for a rule firing every minute and for a yearly one."""
	high = until.timestamp()
	window = timedelta(minutes=1)
	start = max(since, until - window)
	while True:
		first = times.next_after(start.timestamp())
		if first is not None and first <= high:
			break
		if start <= since or window >= MAX_LOOKBACK:
			return None
		window *= 2
		start = max(since, until - window)
	latest, steps = first, 0
	while steps < MAX_STEPS:
		found = times.next_after(latest)
		if found is None or found > high:
			break
		latest, steps = found, steps + 1
	return datetime.fromtimestamp(latest, timezone.utc)


def minutes_text(minutes: int) -> str:
	return _("a minute") if minutes == 1 else _("{0} minutes").format(minutes)


def open_alert(schedule: str, kind: str | None) -> str | None:
	"""The open alert of ``schedule`` of ``kind`` (None: of any kind)."""
	filters = {"schedule": schedule, "status": "Open"}
	if kind:
		filters["kind"] = kind
	return frappe.db.get_value(ALERT, filters, "name")


def raise_alert(schedule: Any, kind: str, message: str, fire_time: datetime | None = None) -> str | None:
	"""One open incident of ``kind`` for ``schedule`` (a document or row); None when one is open already."""
	if open_alert(schedule.name, kind):
		return None
	alert = frappe.get_doc(
		{
			"doctype": ALERT,
			"status": "Open",
			"kind": kind,
			"schedule": schedule.name,
			"task": schedule.task,
			"fire_time": fire_time,
			"raised_at": now_datetime(),
			"message": message,
		}
	).insert(ignore_permissions=True)
	audit.note_action(
		SCHEDULE,
		schedule.name,
		_("(automatic) raised alert {0}: {1}").format(alert.name, audit.text(message)),
	)
	notifications.notify_system_managers(
		_("BTU alert on schedule {0} ({1}): {2}").format(
			audit.text(schedule.name),
			audit.text(schedule.task_description or schedule.task),
			audit.text(kind),
		),
		audit.text(message),
		ALERT,
		alert.name,
	)
	return alert.name


def clear_alerts(schedule: str, log: str | None) -> int:
	"""A successful run of ``schedule`` (``log``), or its alerts switched off (``log`` None): its
	open alerts are cleared (how many)."""
	names = frappe.get_all(ALERT, filters={"schedule": schedule, "status": "Open"}, pluck="name")
	for name in names:
		frappe.db.set_value(
			ALERT, name, {"status": "Cleared", "cleared_at": now_datetime(), "cleared_by_log": log}
		)
	if names:
		reason = (
			_("run {0} succeeded.").format(audit.text(log))
			if log
			else _("the schedule's alerts were switched off.")
		)
		audit.note_action(
			SCHEDULE,
			schedule,
			_("(automatic) cleared alert(s) {0}: {1}").format(audit.text(", ".join(names)), reason),
		)
	return len(names)


def alerts_asked(schedule: Any) -> bool:
	"""Does ``schedule`` (a document or row) set any alert? (None: nothing to raise or clear.)"""
	return any(cint(schedule.get(field)) > 0 for field in ALERT_FIELDS)


def after_save(schedule: Any) -> None:
	"""A schedule saved with every alert off: its open alerts (if any) are cleared."""
	if not alerts_asked(schedule) and open_alert(schedule.name, None):
		clear_alerts(schedule.name, None)


def after_run(schedule: Any, status: str, log: str | None) -> None:
	"""The runner's bookkeeping for a run of ``schedule`` (its document): a success clears, N
	failures in a row raise. A schedule without alerts costs no query."""
	if not alerts_asked(schedule):
		return
	if status == "Success":
		clear_alerts(schedule.name, log)
		return
	limit = cint(schedule.get("alert_after_failures"))
	if status in FAILED_STATES and limit > 0 and failed_in_a_row(schedule.name, limit):
		message = (
			_("The run {0} failed.").format(log or "?")
			if limit == 1
			else _("{0} failed runs in a row; the last: {1}.").format(limit, log or "?")
		)
		raise_alert(schedule, FAILURES, message)


# The fields the minute check reads of a schedule.
CHECK_FIELDS = (
	"name",
	"task",
	"task_description",
	"run_frequency",
	"cron_string",
	"cron_timezone",
	"holiday_list_doctype",
	"holiday_list",
	"on_holiday",
	"jitter_seconds",
	"modified",
	"alert_no_success_minutes",
	"alert_late_start_minutes",
)


def check_schedules() -> int:
	"""Every minute (Frappe scheduler): No Success and Late Start of every schedule that asks; how many raised."""
	rows = frappe.get_all(
		SCHEDULE,
		filters={"enabled": 1, "run_frequency": ("!=", "Once")},
		or_filters={"alert_no_success_minutes": (">", 0), "alert_late_start_minutes": (">", 0)},
		fields=list(CHECK_FIELDS),
	)
	# BTU Configuration's zone (btu.btu_api.status.configuration_time_zone, which imports this module)
	default_zone = (
		(frappe.db.get_single_value("BTU Configuration", "cron_time_zone") or "UTC") if rows else None
	)
	raised = 0
	for row in rows:
		try:
			raised += check_schedule(row, row.cron_timezone or default_zone)
		except Exception:  # noqa: BLE001 - one schedule's bad rule never stops the others' checks
			frappe.log_error(title=f"BTU: alert check of {row.name} failed")
	return raised


def _no_success_message(minutes: int, fire_text: str, zone: str) -> str:
	return _("No run succeeded within {0} after the fire time {1} ({2}).").format(
		minutes_text(minutes), fire_text, zone
	)


def _late_start_message(minutes: int, fire_text: str, zone: str) -> str:
	return _("The run of the fire time {0} ({1}) had not started {2} after it.").format(
		fire_text, zone, minutes_text(minutes)
	)


# kind -> (its minutes field, whether only a successful run answers it, its message)
CHECKS = {
	NO_SUCCESS: ("alert_no_success_minutes", True, _no_success_message),
	LATE_START: ("alert_late_start_minutes", False, _late_start_message),
}


def check_schedule(row: Any, zone: str, now: datetime | None = None) -> int:
	"""The two checks of one schedule (fire times after its last save only: a rule just saved is
	not judged by fire times of the previous one)."""
	from zoneinfo import ZoneInfo

	from frappe.utils import get_system_timezone

	system = ZoneInfo(get_system_timezone())
	now_aware = (now or now_datetime()).replace(tzinfo=system)
	saved = get_datetime(row.modified).replace(tzinfo=system)
	raised = 0
	for kind, (field, success, message) in CHECKS.items():
		minutes = cint(row.get(field))
		if minutes <= 0 or open_alert(row.name, kind):
			continue
		times = business_calendar.fire_times_of(row, zone)
		fire = times and latest_fire_time(times, saved, now_aware - timedelta(minutes=minutes))
		if fire is None or _has_log(row.name, fire, success=success):
			continue
		fire_text = fire.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
		text = message(minutes, fire_text, zone)
		raised += bool(raise_alert(row, kind, text, to_system_time(fire.timestamp())))
	return raised


def _has_log(schedule: str, fire: datetime, success: bool) -> bool:
	"""A run of this fire time or a later one (that succeeded, with ``success``)."""
	filters: dict[str, Any] = {"schedule": schedule, "fire_time": (">=", to_system_time(fire.timestamp()))}
	if success:
		filters["success_fail"] = "Success"
	return bool(frappe.db.exists("BTU Task Log", filters))


def open_alerts(limit: int = 50) -> list[dict[str, Any]]:
	"""The status page's open incidents, newest first."""
	return frappe.get_all(
		ALERT,
		filters={"status": "Open"},
		fields=["name", "kind", "schedule", "task", "fire_time", "raised_at", "message"],
		order_by="creation desc",
		limit=limit,
	)
