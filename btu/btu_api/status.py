"""What the Desk shows about the scheduler: daemon answers, Redis next runs, RQ queues, logs."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import frappe
from frappe import _
from frappe.utils import cint

from btu.btu_api import daemon_link
from btu.contracts import pending, protocol
from btu.contracts.redis_keys import KEYS, RedisKeys
from btu.contracts.runs import ONCE


def _decode(value: Any) -> str:
	return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def keys() -> RedisKeys:
	"""BTU's Redis key names (a test daemon of btu.btu_core.testing sets its own prefix in the flags)."""
	prefix = frappe.flags.get("btu_key_prefix")
	return RedisKeys(prefix) if prefix else KEYS


def redis_conn():
	"""The bench's RQ Redis: the daemon keeps its next-run sorted sets there too."""
	from frappe.utils.background_jobs import get_redis_conn

	return get_redis_conn()


def user_time_zone() -> str:
	from frappe.utils import get_system_timezone

	return frappe.db.get_value("User", frappe.session.user, "time_zone") or get_system_timezone()


def wall_time(ts: float, zone: str) -> str:
	"""Unix time as 'YYYY-MM-DD HH:MM:SS' on the wall clock of ``zone``."""
	return datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def upcoming_runs(limit: int = 20, site: str | None = None) -> list[dict[str, Any]]:
	"""The next runs the daemon holds in Redis for this site, each with the rule and zone that
	produced its time (one atomic read), joined with its schedule. ``state`` says whether that is the
	schedule's current rule (``btu.contracts.pending.confirmation``): after an edit the daemon has not
	applied yet, the row shows the old rule's time as *unconfirmed*, never the new rule beside it."""
	site = site or frappe.local.site
	held = pending.read_upcoming(redis_conn(), keys(), site, max(limit, 1))
	names = [run.schedule for run in held]
	schedules = {
		row.name: row
		for row in frappe.get_all(
			"BTU Task Schedule",
			filters={"name": ("in", names or [""])},
			fields=["name", "task", "task_description", "enabled", "overlap_policy", *TIMING_FIELDS],
		)
	}
	default_zone = configuration_time_zone()
	user_zone = user_time_zone()
	result = []
	for run in held:
		schedule = schedules.get(run.schedule) or frappe._dict()
		zone = run.zone or schedule.get("cron_timezone") or default_zone  # the zone that produced the time
		result.append(
			{
				"schedule": run.schedule,
				"task": schedule.get("task"),
				"task_description": schedule.get("task_description"),
				"cron_string": run.rule if run.rule != "once" else schedule.get("cron_string"),
				"once": run.rule == "once" or schedule.get("run_frequency") == ONCE,
				"overlap_policy": schedule.get("overlap_policy") or "Allow",
				"time_zone": zone,
				"fire_ts": float(run.fire_time),
				"fire_time_utc": wall_time(run.fire_time, "UTC"),
				"fire_time_schedule_zone": wall_time(run.fire_time, zone),
				"fire_time_user_zone": wall_time(run.fire_time, user_zone),
				"exists": bool(schedule),
				"state": pending.confirmation(run, current_timing(schedule, default_zone)),
			}
		)
	return result


TIMING_FIELDS = (
	"run_frequency",
	"minute",
	"hour",
	"day_of_week",
	"day_of_month",
	"month",
	"cron_string",
	"cron_timezone",
	"run_at",
	"holiday_list_doctype",
	"holiday_list",
	"on_holiday",
	"jitter_seconds",
)  # fmt: skip  (pending.timing_of_row reads them all)


def current_timing(row: Any, default_zone: str) -> str:
	"""The timing a schedule row has now ("" for a missing or disabled row, or a rule the daemon
	refuses too: such a row confirms no planned time)."""
	if not row or not cint(row.get("enabled")):
		return ""
	try:
		return pending.timing_of_row(row, default_zone)
	except Exception:  # noqa: BLE001 - the daemon's error for it says why
		return ""


def schedule_errors(site: str | None = None) -> dict[str, str]:
	"""Schedules the daemon could not plan (e.g. a task that is no longer submitted), with its reason."""
	site = site or frappe.local.site
	raw = redis_conn().hgetall(keys().errors(site)) or {}
	return {_decode(k): _decode(v) for k, v in raw.items()}


def all_next_runs(site: str | None = None) -> dict[str, float]:
	"""Every schedule the daemon holds for this site: name -> next fire time (Unix s)."""
	site = site or frappe.local.site
	return {
		_decode(member): score
		for member, score in redis_conn().zrange(keys().next_runs(site), 0, -1, withscores=True)
	}


def next_run_of(schedule_name: str, site: str | None = None) -> float | None:
	site = site or frappe.local.site
	return redis_conn().zscore(keys().next_runs(site), schedule_name)


def skipped_runs(schedule_name: str, site: str | None = None) -> list[dict[str, Any]]:
	"""The schedule's last skipped fire times as the daemon recorded them (newest first), each with
	``fire_ts``, ``reason`` (overlap: its previous run was still queued or running; misfire: more
	than misfire_grace late) and the details; times in the schedule's zone and the user's."""
	import json

	site = site or frappe.local.site
	raw = redis_conn().hget(keys().skipped(site), schedule_name)
	try:
		records = json.loads(raw) if raw else []
	except ValueError:
		records = []
	zone = (
		frappe.db.get_value("BTU Task Schedule", schedule_name, "cron_timezone") or configuration_time_zone()
	)
	user_zone = user_time_zone()
	out = []
	for record in records if isinstance(records, list) else []:
		if not isinstance(record, dict) or not isinstance(record.get("fire_time"), (int, float)):
			continue
		out.append(
			{
				**record,
				"fire_time_schedule_zone": wall_time(record["fire_time"], zone),
				"fire_time_user_zone": wall_time(record["fire_time"], user_zone),
				"time_zone": zone,
				"user_time_zone": user_zone,
			}
		)
	return out


PAUSE_FLAGS = ("maintenance_mode", "pause_scheduler")


def pause_state() -> dict[str, Any]:
	"""Whether the daemon pauses this site, as the site sees it: BTU Configuration's Pause All
	Schedules, maintenance_mode / pause_scheduler of site_config.json (or common_site_config.json)."""
	reasons = []
	if frappe.db.get_single_value("BTU Configuration", "pause_all_schedules"):
		reasons.append(_("BTU Configuration: Pause All Schedules is set"))
	for flag in PAUSE_FLAGS:
		value = frappe.conf.get(flag)
		if value and str(value).strip().lower() not in ("0", "false", "no", "off", "none", "null"):
			reasons.append(_("site_config.json: {0} is set").format(flag))
	return {"paused": bool(reasons), "reasons": reasons}


def queue_lengths() -> list[dict[str, Any]]:
	"""Jobs waiting (and how long the oldest has waited), running, failed, and workers of each BTU
	Queue's RQ queue. Read with plain Redis counts: rq's registry ``count`` cleans the registry up
	first, which calls ``signal`` for an expired job and fails outside a process's main thread (a
	web request)."""
	from frappe.utils.background_jobs import generate_qname
	from rq import Queue, Worker

	conn = redis_conn()
	now = time.time()
	result = []
	for name in frappe.get_all("BTU Queue", pluck="name", order_by="name asc"):
		rq_name = generate_qname(name)
		queue = Queue(rq_name, connection=conn)
		result.append(
			{
				"queue": name,
				"rq_name": rq_name,
				"queued": conn.llen(queue.key),
				"oldest_waiting_s": _oldest_waiting_seconds(conn, queue.key, now),
				"started": conn.zcard(queue.started_job_registry.key),
				"failed": conn.zcard(queue.failed_job_registry.key),
				"workers": Worker.count(connection=conn, queue=queue),
			}
		)
	return result


def workers_listening(queue_name: str) -> int:
	"""How many RQ workers registered themselves as listening on a BTU Queue's RQ queue."""
	from frappe.utils.background_jobs import generate_qname
	from rq import Queue, Worker

	conn = redis_conn()
	return Worker.count(connection=conn, queue=Queue(generate_qname(queue_name), connection=conn))


def _oldest_waiting_seconds(conn: Any, queue_key: str, now: float) -> float | None:
	"""Seconds since the job at the head of the queue was enqueued (None: nothing waits)."""
	head = conn.lindex(queue_key, 0)
	if head is None:
		return None
	job_id = head.decode() if isinstance(head, bytes) else str(head)
	enqueued = conn.hget(f"rq:job:{job_id}", "enqueued_at")
	if not enqueued:
		return None
	text = enqueued.decode() if isinstance(enqueued, bytes) else str(enqueued)
	try:
		stamp = datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
	except ValueError:
		return None
	return max(0.0, now - stamp.timestamp())


def email_warning() -> str | None:
	"""Why enabled schedules' emails cannot go out (None: they can, or nobody asked for any)."""
	from btu.btu_core import email_notify

	if email_notify.outgoing_account() is not None:
		return None
	schedules = frappe.db.sql(
		"""SELECT COUNT(DISTINCT s.name) FROM `tabBTU Task Schedule` s
		JOIN `tabBTU Email Recipient` r ON r.parent = s.name AND r.parenttype = 'BTU Task Schedule'
		WHERE s.enabled = 1 AND IFNULL(r.email_address, '') != ''"""
	)[0][0]
	if not schedules:
		return None
	return _("{0} enabled schedule(s) have email recipients, but their emails cannot be sent: {1}.").format(
		schedules, email_notify.no_account_reason()
	)


def configuration_time_zone() -> str:
	return frappe.db.get_single_value("BTU Configuration", "cron_time_zone") or "UTC"


def latest_logs(limit: int = 10) -> list[dict[str, Any]]:
	return frappe.get_all(
		"BTU Task Log",
		fields=[
			"name",
			"task",
			"task_desc_short",
			"schedule",
			"success_fail",
			"date_time_started",
			"execution_time",
		],
		order_by="creation desc",
		limit_page_length=limit,
	)


def scheduler_status(upcoming: int = 20) -> dict[str, Any]:
	"""Everything the BTU Scheduler Status page shows; each part fails on its own."""
	path = daemon_link.socket_path()
	reply = protocol.status(path, site=frappe.local.site)  # this site's details only
	out: dict[str, Any] = {
		"site": frappe.local.site,
		"now_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
		"user_time_zone": user_time_zone(),
		"configuration_time_zone": configuration_time_zone(),
		"daemon": daemon_link.reply_as_dict(reply, path),
		"pause": pause_state(),
	}
	site_entry = (reply.data.get("sites") or {}).get(frappe.local.site) if reply.ok else None
	out["daemon_serves_this_site"] = bool(site_entry) if reply.ok else None
	if site_entry:
		# What the daemon itself applies (it re-reads the files every second, the flag at a refresh).
		out["daemon_pause"] = {
			"paused": bool(site_entry.get("paused")),
			"reasons": site_entry.get("pause_reasons") or [],
		}
	for key, func in (
		("upcoming", lambda: upcoming_runs(upcoming)),
		("schedule_errors", schedule_errors),
		("queues", queue_lengths),
	):
		try:
			out[key] = func()
		except Exception as exc:  # noqa: BLE001 - Redis down must not break the page
			out[key] = None
			out.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"
	out["email_warning"] = email_warning()
	out["latest_logs"] = latest_logs()
	from btu.btu_core.alerts import open_alerts

	out["open_alerts"] = open_alerts()
	return out
