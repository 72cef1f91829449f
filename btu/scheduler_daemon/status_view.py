"""Render the daemon's ``status`` reply for people (a table per site) and for programs (JSON)."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any

from btu.contracts.schedule_rules import TimeZoneError, validate_timezone


def duration(seconds: float | None) -> str:
	"""``42s``, ``3m 12s``, ``2h 03m``, ``3d 04h``."""
	if seconds is None:
		return "-"
	seconds = int(max(0, seconds))
	if seconds < 60:
		return f"{seconds}s"
	if seconds < 3600:
		return f"{seconds // 60}m {seconds % 60:02d}s"
	if seconds < 86400:
		return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
	return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def utc_text(ts: float) -> str:
	return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def local_text(ts: float, zone: str) -> str:
	try:
		tzinfo = validate_timezone(zone)
	except TimeZoneError:
		return utc_text(ts)
	return datetime.fromtimestamp(ts, tzinfo).strftime("%Y-%m-%d %H:%M:%S %Z")


def local_iso(ts: float, zone: str) -> str:
	try:
		tzinfo = validate_timezone(zone)
	except TimeZoneError:
		tzinfo = timezone.utc
	return datetime.fromtimestamp(ts, tzinfo).isoformat()


def table(headers: list[str], rows: list[list[str]], indent: str = "") -> list[str]:
	"""Left-aligned columns separated by two spaces."""
	widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
	lines = []
	for row in [headers, *rows]:
		lines.append(indent + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
	return lines


def _ago(ts: float | None, now: float) -> str:
	return f"{duration(now - ts)} ago" if ts else "never"


def _refresh_line(data: dict[str, Any], now: float) -> str:
	refresh = data.get("refresh") or {}
	every = data.get("full_refresh_interval")
	tail = f"; every {duration(every)}" if every else ""
	if refresh.get("running"):
		total = refresh.get("total") or 0
		done = refresh.get("done") or 0
		percent = f" ({100.0 * done / total:.0f}%)" if total else ""
		return f"running: {done}/{total} schedules{percent}, {duration(refresh.get('seconds'))} so far{tail}"
	if refresh.get("last_completed_at"):
		return (
			f"idle; last: {refresh.get('last_schedules')} schedules in {refresh.get('last_seconds')} s, "
			f"{_ago(refresh.get('last_completed_at'), now)}{tail}"
		)
	return f"not run yet{tail}"


BENCH_START_HINT = [
	"bench start (development, with the Procfile line from 'bench btu-scheduler setup-procfile'),",
	"or your process manager: sudo supervisorctl start <bench>-btu-scheduler /",
	"sudo systemctl start <bench>-btu-scheduler",
]


def start_hint(config_file: str | None, bench_path: str | None) -> list[str]:
	"""How to start the daemon, for the set-up the command was pointed at: a TOML file (plain
	set-up), a bench, or neither said (both ways)."""
	plain = f"btu-scheduler run --config {os.path.abspath(config_file) if config_file else '<your btu.toml>'}"
	if config_file and not bench_path:
		return [f"{plain} (in the foreground; or the unit your process manager runs it with)"]
	if bench_path:
		return BENCH_START_HINT
	return ["in a bench: " + BENCH_START_HINT[0], *BENCH_START_HINT[1:], f"outside a bench: {plain}"]


def render(
	reply_ok: bool,
	message: str,
	data: dict[str, Any],
	socket_path: str,
	only_sites: tuple[str, ...] = (),
	upcoming: int = 10,
	hint: list[str] | None = None,
) -> list[str]:
	"""The status as lines of text: the daemon's health, then one table per site. ``hint``: how to
	start a daemon that is down (default: the bench's ways)."""
	if not reply_ok:
		hint = hint or BENCH_START_HINT
		return [
			"daemon    DOWN",
			f"socket    {socket_path}",
			f"reason    {message}",
			f"start it  {hint[0]}",
			*(f"          {line}" for line in hint[1:]),
		]
	now = time.time()
	counters = data.get("counters") or {}
	queue = data.get("internal_queue") or {}
	reconnects = data.get("reconnects") or {}
	role = "leader" if data.get("leader") else "standby"
	if not data.get("leader") and data.get("lease_holder"):
		role += f" (leader: {data['lease_holder']})"
	error = data.get("last_error")
	lines = [
		f"daemon    UP  pid {data.get('pid')}  version {data.get('version')}  uptime {duration(data.get('uptime_s'))}"
		f"  {role}  job_mode {data.get('job_mode')}",
		f"socket    {socket_path}",
		f"redis     {'ok' if data.get('redis_ok') else 'UNREACHABLE'}  (reconnects {reconnects.get('redis', 0)})",
		f"refresh   {_refresh_line(data, now)}",
		f"queue     {queue.get('priority', 0)} priority, {queue.get('bulk', 0)} bulk waiting",
		f"enqueued  {counters.get('runs_enqueued', 0)} runs since start"
		f" ({counters.get('runs_skipped_misfire', 0)} skipped as too late,"
		f" {counters.get('runs_skipped_overlap', 0)} skipped while the previous run was active,"
		f" {counters.get('runs_already_enqueued', 0)} already enqueued)",
		f"error     {error + ' (' + _ago(data.get('last_error_at'), now) + ')' if error else '-'}",
	]
	if data.get("metrics_port"):
		host = data.get("metrics_host") or "127.0.0.1"
		host = f"[{host}]" if ":" in host else host
		lines.append(f"metrics   http://{host}:{data['metrics_port']}/metrics  (/healthz, /readyz)")
		if data.get("metrics_error"):
			lines.append(f"          NOT SERVED: {data['metrics_error']}")
	conns = data.get("db_connections")
	if conns:
		lines.append(
			f"database  {conns.get('open', 0)} connections open of max_db_connections {conns.get('limit')}"
			f" (peak {conns.get('peak', 0)}, {conns.get('opened', 0)} opened since start)"
		)
	if "site_count" in data:
		lines.append(
			f"sites     {data['site_count']} served, {data.get('sites_down_count', 0)} with their database down,"
			f" {len(data.get('sites_skipped') or {})} skipped (configuration broken)"
		)
		for name, why in (data.get("sites_skipped") or {}).items():
			lines.append(f"  ! skipped {name}: {why}")
	summary = [
		(name, site)
		for name, site in (data.get("sites") or {}).items()
		if "next_runs" not in site and (not only_sites or name in only_sites)
	]
	if summary:
		rows = [
			[
				name,
				("ok" if site.get("sql_ok") else "DOWN")
				+ ("" if site.get("btu_installed", True) else " (no BTU)"),
				str(site.get("schedules", "?")),
				str(site.get("invalid_count", "?")),
				utc_text(site["next_fire_time"]) if site.get("next_fire_time") else "-",
				"PAUSED" if site.get("paused") else "no",
			]
			for name, site in summary
		]
		lines += ["", *table(["SITE", "DATABASE", "SCHEDULES", "INVALID", "NEXT RUN", "PAUSED"], rows)]
		lines.append("(details of a site: status --site <site>)")
	for name, site in (data.get("sites") or {}).items():
		if only_sites and name not in only_sites:
			continue
		if "next_runs" not in site and "schedules" in site:
			continue  # in the summary table above
		zone = site.get("time_zone") or "UTC"
		invalid = site.get("invalid_schedules") or {}
		schedules = site.get("schedules")
		site_error = site.get("last_error")
		lines += [
			"",
			f"site {name}",
			*table(
				["", ""],
				[
					[
						"database",
						("ok" if site.get("sql_ok") else "UNREACHABLE")
						+ (
							""
							if site.get("btu_installed", True)
							else "; BTU not installed in this site: skipped"
						),
					],
					["time zone", zone],
					[
						"paused",
						"PAUSED: "
						+ "; ".join(site.get("pause_reasons") or ["yes"])
						+ " (nothing is enqueued; on resume misfire_grace decides what runs)"
						if site.get("paused")
						else "no",
					],
					[
						"schedules",
						"?"
						if schedules is None
						else f"{schedules} known, {site.get('invalid_count', len(invalid))} invalid",
					],
					["runs last hour", str(site.get("runs_last_hour", "?"))],
					[
						"last error",
						f"{site_error} ({_ago(site.get('last_error_at'), now)})"
						if site_error
						else (f"Redis: {site['redis_error']}" if site.get("redis_error") else "-"),
					],
				],
				indent="  ",
			)[1:],
		]
		runs = (site.get("next_runs") or [])[:upcoming]
		if runs:
			lines.append(f"  next {len(runs)} runs:")
			rows = [
				[
					run["schedule"] + (" (once)" if run.get("once") else ""),
					run.get("task", "?"),
					local_text(run["fire_time"], run.get("timezone") or zone),
					utc_text(run["fire_time"]),
				]
				for run in runs
			]
			lines += table(["SCHEDULE", "TASK", "LOCAL (schedule's zone)", "UTC"], rows, indent="    ")
		elif schedules is not None:
			lines.append("  next runs: none (no enabled schedule)")
		invalid_count = site.get("invalid_count", len(invalid))
		for schedule, why in list(invalid.items())[:20]:
			lines.append(f"  ! {schedule}: {why}")
		if invalid_count > 20:
			lines.append(f"  ! ... and {invalid_count - 20} more invalid schedules")
	return lines


def as_json(
	reply_ok: bool, message: str, data: dict[str, Any], socket_path: str, only_sites: tuple[str, ...] = ()
) -> dict[str, Any]:
	"""The status reply plus derived fields (``daemon``, local fire times), ready for ``json.dumps``."""
	result: dict[str, Any] = {
		"ok": reply_ok,
		"daemon": "up" if reply_ok else "down",
		"message": message,
		"socket": socket_path,
	}
	if not reply_ok:
		return result
	result.update(data)
	sites = {}
	for name, site in (data.get("sites") or {}).items():
		if only_sites and name not in only_sites:
			continue
		zone = site.get("time_zone") or "UTC"
		site = dict(site)
		site["next_runs"] = [
			{**run, "fire_time_local": local_iso(run["fire_time"], run.get("timezone") or zone)}
			for run in site.get("next_runs") or []
		]
		sites[name] = site
	result["sites"] = sites
	return result
