"""The ``btu-scheduler`` command line (also ``python -m btu.scheduler_daemon`` and ``bench btu-scheduler``)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

import click

from btu import __version__
from btu.contracts import protocol
from btu.contracts.pending import OVERDUE, UNCONFIRMED, Pending, confirmation, read_upcoming, timing_of_row
from btu.contracts.schedule_rules import CronError, TimeZoneError, next_fire_times, validate_timezone

from . import cli_errors
from .config import ConfigError, DaemonConfig, insecure_file_warning, load_config


def config_options(func: Any) -> Any:
	func = click.option(
		"--config",
		"config_file",
		type=click.Path(dir_okay=False),
		help="TOML configuration file (env BTU_CONFIG).",
	)(func)
	func = click.option(
		"--site", "sites", multiple=True, help="Site to serve (repeatable; default: all sites)."
	)(func)
	func = click.option(
		"--bench",
		"bench_path",
		type=click.Path(file_okay=False),
		help="Frappe bench folder (env BTU_BENCH_PATH).",
	)(func)
	func = click.option("--socket", "socket_path", help="Unix socket path (overrides the configured one).")(
		func
	)
	return func


def _load(
	bench_path: str | None, sites: tuple[str, ...], config_file: str | None, **overrides: Any
) -> DaemonConfig:
	try:
		config = load_config(bench_path, list(sites) or None, config_file, overrides=overrides)
	except ConfigError as exc:
		click.echo(f"btu-scheduler: configuration error: {exc}", err=True)
		sys.exit(cli_errors.EXIT_USAGE)
	context = click.get_current_context(silent=True)
	if context is not None:
		context.meta[cli_errors.CONFIG_KEY] = config  # for the failure lines of BTUCommandLine
	return config


def _socket_path(
	bench_path: str | None, sites: tuple[str, ...], config_file: str | None, socket_path: str | None
) -> str:
	"""The socket to talk to: --socket, else the configuration's, else the default."""
	if socket_path:
		return socket_path
	if bench_path or config_file:
		return _load(bench_path, sites, config_file).socket_path
	try:
		return load_config().socket_path
	except ConfigError:
		return protocol.default_socket_path(None)


def _utc(ts: float) -> str:
	return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _local(ts: float, zone: str) -> str:
	return datetime.fromtimestamp(ts, validate_timezone(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


class BTUCommandLine(click.Group):
	"""Every subcommand fails with one line and an exit code (cli_errors), never a traceback: a
	Redis or database that cannot be reached names its URL or site; anything unexpected names its
	type and message (BTU_TRACEBACK=1 keeps the traceback). ``run`` keeps its traceback: a crash of
	the daemon belongs in its error log whole."""

	def invoke(self, ctx: click.Context) -> Any:
		try:
			return super().invoke(ctx)
		except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
			raise
		except Exception as exc:
			failure = cli_errors.describe_failure(exc, ctx.meta.get(cli_errors.CONFIG_KEY))
			if failure is None:
				if ctx.invoked_subcommand == "run" or os.environ.get(cli_errors.TRACEBACK_VARIABLE):
					raise
				failure = (
					cli_errors.EXIT_FAILED,
					f"btu-scheduler: {ctx.invoked_subcommand or 'command'} failed: "
					f"{type(exc).__name__}: {' '.join(str(exc).split())} "
					f"(set {cli_errors.TRACEBACK_VARIABLE}=1 for the traceback)",
				)
			code, line = failure
			click.echo(line, err=True)
			ctx.exit(code)


@click.group(cls=BTUCommandLine, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="btu-scheduler")
def main() -> None:
	"""BTU scheduler daemon: runs BTU Task Schedules on time through RQ."""


@main.command()
@config_options
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--job-mode", type=click.Choice(["frappe", "plain"]))
@click.option(
	"--log-to",
	type=click.Choice(["stderr", "stdout"]),
	default="stderr",
	show_default=True,
	help="Stream for the event log (the Procfile/supervisor/systemd set-ups use stdout -> "
	"logs/btu_scheduler.log, keeping stderr -> logs/btu_scheduler.error.log for start-up errors).",
)
def run(bench_path, sites, config_file, socket_path, log_level, job_mode, log_to) -> None:
	"""Run the daemon in the foreground until SIGTERM or Ctrl-C."""
	from .daemon import Daemon
	from .logutil import setup_logging
	from .socket_server import SocketInUse

	config = _load(
		bench_path, sites, config_file, socket_path=socket_path, log_level=log_level, job_mode=job_mode
	)
	setup_logging(config.log_level, sys.stdout if log_to == "stdout" else None)
	try:
		Daemon(config).run_forever()
	except (SocketInUse, OSError) as exc:
		click.echo(f"btu-scheduler: cannot start: {exc}", err=True)
		sys.exit(cli_errors.EXIT_CANNOT_START)


@main.command("ping")
@config_options
def ping_command(bench_path, sites, config_file, socket_path) -> None:
	"""Ask the daemon whether it is alive."""
	path = _socket_path(bench_path, sites, config_file, socket_path)
	reply = protocol.ping(path)
	if not reply.ok:
		click.echo(reply.message, err=True)
		sys.exit(1)
	click.echo(
		f"pong from pid {reply.data.get('pid')} version {reply.data.get('version')} "
		f"uptime {reply.data.get('uptime_s')} s leader={reply.data.get('leader')} ({reply.elapsed_ms:.1f} ms)"
	)


@main.command("status")
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's status as JSON.")
@click.option(
	"--check",
	type=click.Choice(["live", "ready", "leader"]),
	help="For probes: print one line and exit 0 when it holds, 1 when not. live: the daemon answers; "
	"ready: and Redis and every site's database answered it; leader: and it holds the enqueuing lease.",
)
def status_command(bench_path, sites, config_file, socket_path, as_json, check) -> None:
	"""The daemon at a glance, a table per site; exits 1 when the daemon does not answer."""
	from . import status_view

	path = _socket_path(bench_path, sites, config_file, socket_path)
	reply = protocol.status(path, timeout=5.0)
	if reply.ok and sites and not reply.data.get("sites_detailed", True):
		# A large bench: the reply holds a summary per site; ask for the named sites' details.
		for site in sites:
			detail = protocol.status(path, timeout=5.0, site=site)
			if detail.ok and site in (detail.data.get("sites") or {}):
				reply.data["sites"][site] = detail.data["sites"][site]
	if check and not as_json:
		from .health import check_status

		passed, line = check_status(check, reply.ok, reply.message, reply.data, sites)
		click.echo(line)
		sys.exit(0 if passed else 1)
	if as_json:
		click.echo(
			json.dumps(
				status_view.as_json(reply.ok, reply.message, reply.data, path, sites), indent=2, default=str
			)
		)
	else:
		hint = status_view.start_hint(config_file or os.environ.get("BTU_CONFIG"), bench_path)
		for line in status_view.render(reply.ok, reply.message, reply.data, path, sites, hint=hint):
			click.echo(line)
	if check:
		from .health import check_status

		sys.exit(0 if check_status(check, reply.ok, reply.message, reply.data, sites)[0] else 1)
	sys.exit(0 if reply.ok else 1)


@main.command("refresh")
@config_options
@click.option(
	"--wait/--no-wait",
	default=True,
	show_default=True,
	help="Follow the refresh to its end (a progress bar on a terminal, a line a second otherwise).",
)
@click.option(
	"--timeout", default=3600.0, show_default=True, type=click.FloatRange(1), help="Seconds to wait at most."
)
def refresh_command(bench_path, sites, config_file, socket_path, wait, timeout) -> None:
	"""Ask the daemon to resync every schedule now."""
	from .progress import Progress

	path = _socket_path(bench_path, sites, config_file, socket_path)
	before = protocol.status(path, timeout=5.0) if wait else None
	if before is not None and not before.ok:
		click.echo(before.message, err=True)
		sys.exit(1)
	replies = [protocol.refresh(path, site) for site in sites] if sites else [protocol.refresh(path)]
	for reply in replies:
		click.echo(reply.message, err=not reply.ok)
	if not all(r.ok for r in replies):
		sys.exit(1)
	if before is None or "refresh" not in before.data:
		return  # --no-wait, or a daemon too old to report its refresh progress
	# This request's own refresh: the one that took its ticket (an older daemon gives none: the next
	# refresh to begin is taken for it).
	ticket = max((int(r.data.get("ticket") or 0) for r in replies), default=0)
	number = before.data["refresh"]["number"]
	deadline = time.monotonic() + timeout
	state: dict[str, Any] = {}
	with Progress("refresh", 0) as progress:
		while time.monotonic() < deadline:
			reply = protocol.status(path, timeout=5.0)
			if not reply.ok:
				click.echo(f"btu-scheduler: lost the daemon during the refresh: {reply.message}", err=True)
				sys.exit(1)
			state = reply.data["refresh"]
			if ticket:
				if state.get("completed_ticket", 0) >= ticket:
					done = state.get("last_schedules") or 0
					progress.update(done, done)
					break
				if state["running"] and state.get("ticket", 0) >= ticket:
					progress.update(state["done"], state["total"])
			elif state["number"] > number:
				progress.update(state["done"], state["total"])
				if not state["running"]:
					break
			time.sleep(0.2)
		else:
			click.echo(
				f"btu-scheduler: the refresh did not end within {timeout:g} s; it goes on in the daemon "
				"(see 'status').",
				err=True,
			)
			sys.exit(1)
	shown = ", ".join(state["sites"]) or "no site"
	if state.get("site_count", 0) > len(state["sites"]):
		shown = f"{state['site_count']} sites"
	click.echo(f"refresh of {shown} done: {state['last_schedules']} schedules in {state['last_seconds']} s")


@main.command("list")
@config_options
@click.option("--count", default=20, show_default=True, help="Upcoming runs to show per site.")
def list_command(bench_path, sites, config_file, socket_path, count) -> None:
	"""Upcoming runs per site, read from Redis, in the site's time zone and UTC; each says whether
	the daemon planned it by the schedule's current rule (its row in SQL) and whether it is overdue."""
	from .redis_store import RedisStore
	from .sql import SiteDatabase, SqlUnavailable

	config = _load(bench_path, sites, config_file)
	store = RedisStore(config)
	# Each site's zone as the daemon read it (one status request, no database connection per site:
	# a bench may have a thousand); the configured default when the daemon does not answer.
	status = protocol.status(_socket_path(bench_path, sites, config_file, socket_path), timeout=5.0)
	zones = {
		name: entry.get("time_zone")
		for name, entry in ((status.data.get("sites") or {}) if status.ok else {}).items()
	}
	for site in config.sites:
		# The zone as the daemon read it; each run's rule checked against the schedule's row (one
		# query per site, its connection closed at once).
		zone = zones.get(site.name) or config.default_timezone
		runs = read_upcoming(store.client(site.name), store.keys, site.name, count)
		rows: dict[str, dict | None] | None = None  # None: the rules could not be checked
		database = SiteDatabase(site)
		try:
			if runs:
				rows = database.fetch_schedules([run.schedule for run in runs])
		except SqlUnavailable:
			rows = None
		finally:
			database.close()
		click.echo(f"site {site.name} ({store.count(site.name)} schedules, times in {zone}):")
		if runs and rows is None:
			click.echo(
				"  (MariaDB unavailable: the rules below are the daemon's, not checked against the schedules)"
			)
		now = time.time()
		for run in runs:
			rule = run.rule or "?"
			state = _list_state(
				run, None if rows is None else rows.get(run.schedule), rows is not None, zone, now
			)
			click.echo(
				f"  {run.schedule:<16} {_local(run.fire_time, zone):<28} {_utc(run.fire_time):<24} {rule:<16} {state}".rstrip()
			)
		if not runs:
			click.echo("  (no upcoming runs)")


def _list_state(run: Pending, row: dict | None, checked: bool, default_zone: str, now: float) -> str:
	"""What ``list`` says of one upcoming run: confirmed for the current rule, overdue, or not confirmed."""
	current = None
	if checked:
		if row is None or not row.get("enabled"):
			return "NOT CONFIRMED: the schedule is deleted or disabled; the daemon has not applied it yet"
		try:
			current = timing_of_row(row, default_zone)
		except ValueError as exc:
			return f"NOT CONFIRMED: the schedule cannot run ({exc})"
	state = confirmation(run, current, now)
	if state == UNCONFIRMED:
		rule, _bar, zone = current.rpartition("|")
		now_rule = "once" if rule.startswith("@once ") else rule
		return (
			f"NOT CONFIRMED: planned by {run.rule} ({run.zone}); the schedule now says {now_rule} ({zone})"
			" - the daemon has not applied the edit (down, or its message lost: btu-scheduler refresh)"
		)
	if state == OVERDUE:
		return f"OVERDUE by {_ago(now - run.fire_time)} (daemon not firing? see btu-scheduler status)"
	return "confirmed" if checked else ""


def _ago(seconds: float) -> str:
	minutes, secs = divmod(int(seconds), 60)
	hours, minutes = divmod(minutes, 60)
	return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


@main.command("next-runs")
@config_options
@click.option("--cron", help="Cron string: 5, 6 (seconds first) or 7 fields, or @daily etc.")
@click.option(
	"--schedule",
	help="A schedule's name instead of --cron: its rule and zone with its business calendar and jitter "
	"(read from the site's database; name the site with --site when the bench has several).",
)
@click.option(
	"--tz", "zone", default="UTC", show_default=True, help="IANA time zone the rule is read in (any case)."
)
@click.option("--count", default=10, show_default=True, type=click.IntRange(1, 10000))
@click.option(
	"--after",
	help="ISO-8601 instant to start after (default: now), e.g. 2026-12-24T14:00:00Z; naive = in --tz.",
)
def next_runs(bench_path, sites, config_file, socket_path, cron, schedule, zone, count, after) -> None:
	"""Print the next fire times as ISO-8601 UTC instants, one per line."""
	if bool(cron) == bool(schedule):
		click.echo("btu-scheduler: give either --cron or --schedule", err=True)
		sys.exit(cli_errors.EXIT_USAGE)
	try:
		if schedule:
			_config, site, row, default_zone = _read_schedule(bench_path, sites, config_file, schedule)
			spec = _spec_of(site, row, default_zone)
			zone = spec.timezone
		tzinfo = validate_timezone(cli_errors.resolve_zone(zone))
		start = None
		if after:
			try:
				start = datetime.fromisoformat(after.strip().replace("Z", "+00:00"))
			except ValueError:
				click.echo(cli_errors.after_error(after), err=True)
				sys.exit(cli_errors.EXIT_USAGE)
			if start.tzinfo is None:
				start = start.replace(tzinfo=tzinfo)
		if schedule:
			cursor = (start or datetime.now(tzinfo)).timestamp()
			for _ in range(count):
				found = spec.next_fire_after(cursor)
				if found is None:
					break
				click.echo(datetime.fromtimestamp(found, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
				cursor = found
			return
		for instant in next_fire_times(cron, cli_errors.resolve_zone(zone), start, count):
			click.echo(instant.strftime("%Y-%m-%dT%H:%M:%SZ"))
	except (CronError, TimeZoneError) as exc:
		click.echo(f"btu-scheduler: {exc}", err=True)
		sys.exit(cli_errors.EXIT_USAGE)


def _read_schedule(bench_path, sites, config_file, schedule: str):
	"""(config, site, row, zone) of a saved schedule, read from its site's database; exits with the
	reason when there are several sites and none named, the database is unreachable or no such row."""
	from .sql import SiteDatabase, SqlUnavailable

	config = _load(bench_path, sites, config_file)
	if len(config.sites) > 1 and len(sites) != 1:
		click.echo("btu-scheduler: several sites configured; name one with --site", err=True)
		sys.exit(cli_errors.EXIT_USAGE)
	site = config.sites[0]
	database = SiteDatabase(site)
	try:
		row = database.fetch_schedule(schedule)
		zone = database.configured_timezone() or config.default_timezone
	except SqlUnavailable as exc:
		click.echo(
			f"btu-scheduler: cannot reach the database of site {site.name} "
			f"({site.db_name}@{site.db_host}:{site.db_port}): {exc}",
			err=True,
		)
		sys.exit(cli_errors.EXIT_UNREACHABLE)
	finally:
		database.close()
	if row is None:
		click.echo(f"btu-scheduler: schedule {schedule!r} not found in site {site.name}", err=True)
		sys.exit(cli_errors.EXIT_FAILED)
	return config, site, row, zone


def _spec_of(site, row: dict, zone: str):
	"""The spec the daemon would plan the row by (even a disabled one); exits 1 with the reason when
	it cannot run."""
	from .specs import ScheduleInvalid, spec_from_row

	try:
		return spec_from_row(site.name, {**row, "enabled": 1}, zone)
	except ScheduleInvalid as exc:
		click.echo(f"btu-scheduler: schedule {row['name']} cannot run: {exc}", err=True)
		sys.exit(cli_errors.EXIT_FAILED)


@main.command("enqueue-now")
@config_options
@click.option("--force", is_flag=True, help="Run a disabled schedule once all the same.")
@click.argument("schedule")
def enqueue_now(bench_path, sites, config_file, socket_path, force, schedule) -> None:
	"""Enqueue one run of SCHEDULE right now (its task, arguments and queue), once a second at most.

	Exits 1 without enqueueing when the schedule is disabled (unless --force) or already has a run
	for this second (the scheduler's, or an enqueue-now a moment ago)."""
	from .jobs import JobBuilder
	from .redis_store import RedisStore

	config, site, row, zone = _read_schedule(bench_path, sites, config_file, schedule)
	if not row.get("enabled") and not force:
		click.echo(
			f"btu-scheduler: schedule {schedule} of site {site.name} is disabled; enable it in Desk, "
			"or pass --force to run it once anyway",
			err=True,
		)
		sys.exit(cli_errors.EXIT_FAILED)
	spec = _spec_of(site, row, zone)
	store = RedisStore(config)
	client = store.client(site.name)
	fire_ts = int(time.time())
	queue, job = JobBuilder(config).build(client, spec, fire_ts)
	markers = store.keys.fired(site.name, fire_ts)  # the same marker the scheduler writes for this second
	if not client.hsetnx(markers, schedule, job.id):
		click.echo(
			f"btu-scheduler: schedule {schedule} already has a run for this second ({job.id}); "
			"not enqueued again (try again in a second)",
			err=True,
		)
		sys.exit(cli_errors.EXIT_FAILED)
	if client.ttl(markers) < 86400:
		client.expire(markers, 86400)
	queue.enqueue_job(job)
	click.echo(f"enqueued {job.id} on queue {queue.name}")


@main.command("check-config")
@config_options
def check_config(bench_path, sites, config_file, socket_path) -> None:
	"""Validate the configuration and reach Redis and every site's database."""
	from .redis_store import RedisStore
	from .sql import SiteDatabase, SqlUnavailable

	config = _load(bench_path, sites, config_file, socket_path=socket_path)
	problems = 0
	click.echo(json.dumps(config.redacted(), indent=2, default=str))
	for path in config.sources:
		warning = insecure_file_warning(path) if path != "environment" else None
		if warning:
			click.echo(f"warning: {warning}", err=True)
	try:
		RedisStore(config).bench_client().ping()
		click.echo(f"redis: ok ({config.redacted()['redis_url']})")
	except Exception as exc:  # noqa: BLE001
		problems += 1
		click.echo(f"redis: UNREACHABLE ({exc})", err=True)
	for site in config.sites:
		try:
			SiteDatabase(site).ping()
			click.echo(f"site {site.name}: database ok ({site.db_name}@{site.db_host}:{site.db_port})")
		except SqlUnavailable as exc:
			problems += 1
			click.echo(f"site {site.name}: database UNREACHABLE ({exc})", err=True)
	sys.exit(1 if problems else 0)


@main.command("init-db")
@click.option("--db-name", required=True, help="Database to create (if missing) with the BTU tables.")
@click.option("--db-host", default="127.0.0.1", show_default=True)
@click.option("--db-port", default=3306, show_default=True, type=int)
@click.option("--db-user", default="root", show_default=True)
@click.option("--db-password", default="", envvar="BTU_DB_PASSWORD")
@click.option("--demo", is_flag=True, help="Also insert demo tasks and schedules firing every few seconds.")
@click.option(
	"--demo-schedules",
	default=0,
	type=click.IntRange(0, 10_000_000),
	metavar="N",
	help="Also insert N daily schedules (TS-L0000001 ...) of the demo task, spread over the day: "
	"load for trying refreshes and metrics at scale (implies --demo).",
)
def init_db(db_name, db_host, db_port, db_user, db_password, demo, demo_schedules) -> None:
	"""Create the BTU tables in a MariaDB database from the DocType JSON files."""
	import pymysql

	from .demo_data import DemoDataConflict
	from .progress import Progress
	from .schema import init_database

	args = dict(host=db_host, port=db_port, user=db_user, password=db_password)
	try:
		tables = init_database(args, db_name)
		click.echo(f"database {db_name}: tables ready: {', '.join(tables)}")
		if demo or demo_schedules:
			from .demo_data import insert_demo_data, insert_load_schedules

			names = insert_demo_data(args, db_name, load_schedules=bool(demo_schedules))
			click.echo(f"demo schedules: {', '.join(names)}")
			if demo_schedules:
				with Progress("init-db: schedules", demo_schedules) as progress:
					insert_load_schedules(args, db_name, demo_schedules, progress.update)
				click.echo(f"load schedules: {demo_schedules} (TS-L{1:07d} ... TS-L{demo_schedules:07d})")
	except DemoDataConflict as exc:
		click.echo(f"btu-scheduler: init-db --demo refused: {exc}", err=True)
		sys.exit(cli_errors.EXIT_FAILED)
	except pymysql.MySQLError as exc:
		click.echo(f"btu-scheduler: init-db failed on {db_host}:{db_port}: {exc}", err=True)
		cannot_connect = bool(exc.args) and exc.args[0] in (
			2002,
			2003,
		)  # CR_CONNECTION_ERROR, CR_CONN_HOST_ERROR
		sys.exit(cli_errors.EXIT_UNREACHABLE if cannot_connect else cli_errors.EXIT_FAILED)


@main.command("watch")
@config_options
@click.option("--seconds", type=float, default=0, help="Stop after this many seconds (0 = until Ctrl-C).")
def watch(bench_path, sites, config_file, socket_path, seconds) -> None:
	"""Live view of BTU runs: one line per run as RQ workers finish it."""
	from .watch import watch_runs

	config = _load(bench_path, sites, config_file)
	try:
		watch_runs(config, seconds)
	except KeyboardInterrupt:
		pass


def _bench_for_setup(bench_path: str | None) -> str:
	from .deploy import DeployError, ensure_logs_folder, resolve_bench

	try:
		bench = resolve_bench(bench_path)
	except DeployError as exc:
		click.echo(f"btu-scheduler: {exc}", err=True)
		sys.exit(2)
	ensure_logs_folder(bench)
	return bench


def _report(outcome: Any, what: str) -> None:
	"""One line per set-up outcome; a kept (conflicting) file is exit status 1."""
	if outcome.status == "kept":
		click.echo(f"{what}: {outcome.path}: {outcome.detail}", err=True)
		sys.exit(1)
	words = {"created": "written", "added": "added", "updated": "replaced", "unchanged": "unchanged"}
	click.echo(
		f"{what}: {outcome.path}: {words[outcome.status]}"
		+ (f" ({outcome.detail})" if outcome.detail and outcome.status != "created" else "")
	)


def _explain_command(bench: str, user: str | None, direct: bool) -> None:
	from .deploy import bench_owner, daemon_command

	command, how = daemon_command(bench, direct)
	click.echo(f"command: {command}  ({how})")
	if (user or bench_owner(bench)) == "root":
		click.echo("warning: the daemon would run as root; pass --user with the bench's user.", err=True)
	python = os.path.join(bench, "env", "bin", "python")
	if command.startswith(python) and not os.access(python, os.X_OK):
		click.echo(f"warning: {python} is missing: is this a bench made by 'bench init'?", err=True)


setup_bench_option = click.option(
	"--bench",
	"bench_path",
	type=click.Path(file_okay=False),
	help="Frappe bench folder (default: the current directory, if it is a bench).",
)
setup_force_option = click.option(
	"--force", is_flag=True, help="Replace an existing different entry or file."
)
setup_user_option = click.option(
	"--user", help="User the daemon runs as (default: the owner of the bench folder)."
)
setup_direct_option = click.option(
	"--direct",
	is_flag=True,
	help="Run the daemon with the bench's Python (env/bin/python -m btu.scheduler_daemon) instead of through "
	"the bench CLI: starts faster, never loads frappe. Used anyway when no 'bench' is on PATH.",
)


@main.command("setup-procfile")
@setup_bench_option
@setup_force_option
def setup_procfile_command(bench_path, force) -> None:
	"""Add the daemon to the bench's Procfile (for 'bench start'); safe to run again."""
	from .deploy import DeployError, setup_procfile

	bench = _bench_for_setup(bench_path)
	try:
		outcome = setup_procfile(bench, force)
	except DeployError as exc:
		click.echo(f"btu-scheduler: {exc}", err=True)
		sys.exit(1)
	_report(outcome, "Procfile")
	if outcome.changed:
		click.echo(
			"Restart 'bench start' to run it; logs: logs/btu_scheduler.log and logs/btu_scheduler.error.log. "
			"Note: 'bench setup procfile' rewrites the Procfile: run this command again after it."
		)


@main.command("setup-supervisor")
@setup_bench_option
@setup_user_option
@setup_direct_option
@setup_force_option
def setup_supervisor_command(bench_path, user, direct, force) -> None:
	"""Write config/btu_scheduler.supervisor.conf (a supervisor program) and print how to enable it."""
	from .deploy import program_name, setup_supervisor, supervisor_instructions

	bench = _bench_for_setup(bench_path)
	outcome = setup_supervisor(bench, user, direct, force)
	_report(outcome, f"supervisor program {program_name(bench)}")
	_explain_command(bench, user, direct)
	click.echo("Enable it (once), as root:")
	for line in supervisor_instructions(bench):
		click.echo(f"  {line}")


@main.command("setup-systemd")
@setup_bench_option
@setup_user_option
@setup_direct_option
@setup_force_option
def setup_systemd_command(bench_path, user, direct, force) -> None:
	"""Write config/systemd/<bench>-btu-scheduler.service and print how to enable it."""
	from .deploy import setup_systemd, systemd_instructions, systemd_unit_name

	bench = _bench_for_setup(bench_path)
	outcome = setup_systemd(bench, user, direct, force)
	_report(outcome, f"systemd unit {systemd_unit_name(bench)}")
	_explain_command(bench, user, direct)
	click.echo("Enable it (once), as root:")
	for line in systemd_instructions(bench):
		click.echo(f"  {line}")


if __name__ == "__main__":  # pragma: no cover
	main()
