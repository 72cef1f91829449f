"""What a schedule's row says at a glance: its next run by its rule, and its last run.

Lists are SQL: to make them sortable, filterable and cheap at any size, a schedule keeps four
columns of its own: ``next_run`` (the next fire time its current rule gives, in the system zone),
``last_run``, ``last_status`` and ``last_log``. They are written by BTU's own code, never by
the daemon (which only reads SQL): on save (the next run from now) and by every run's bookkeeping
(the runner, the dead-work-horse sweep, a late run's skip). ``next_run`` is the rule's answer, not
the daemon's promise: the form's headline shows what the daemon holds and whether it is confirmed,
and a ``next_run`` in the past means no run happened since (the daemon is down, or the site paused).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import frappe
from frappe.utils import cint, get_system_timezone

from btu.btu_core import business_calendar
from btu.contracts.runs import ONCE, wall_time_to_timestamp

SUMMARY_FIELDS = ("next_run", "last_run", "last_status", "last_log")


def to_system_time(ts: float | None) -> datetime | None:
	"""A Unix time as a naive datetime in the system zone (how Frappe stores a Datetime)."""
	if ts is None:
		return None
	return datetime.fromtimestamp(ts, ZoneInfo(get_system_timezone())).replace(tzinfo=None)


def expected_next_run(schedule: Any, zone: str, after: float | None = None) -> datetime | None:
	"""The next fire time of an enabled schedule's current rule (with its business calendar and
	jitter) after ``after`` (default now);
	a one-shot's own time while it is pending; None when disabled or the rule never fires again."""
	if not cint(schedule.get("enabled")):
		return None
	try:
		if (schedule.get("run_frequency") or "") == ONCE:
			if not schedule.get("run_at"):
				return None
			return to_system_time(wall_time_to_timestamp(schedule.get("run_at"), zone))
		times = business_calendar.fire_times_of(schedule, zone)
		found = times.next_after(time.time() if after is None else after) if times else None
	except Exception:  # noqa: BLE001 - a rule validate refuses, or the daemon would: no next run
		return None
	return to_system_time(found) if found is not None else None


def record_run(schedule: Any, zone: str, log_name: str | None, status: str, started: datetime) -> None:
	"""After a run of ``schedule`` (a document), its last run and the next one by its rule."""
	values = {
		"last_run": started,
		"last_status": status,
		"last_log": log_name,
		"next_run": None if schedule.get("run_frequency") == ONCE else expected_next_run(schedule, zone),
	}
	frappe.db.set_value("BTU Task Schedule", schedule.name, values, update_modified=False)
