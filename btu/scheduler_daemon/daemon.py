"""The daemon: four concurrent activities over one internal queue, and a clean stop."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from redis.exceptions import RedisError

from btu import __version__
from btu.contracts.pending import OVERDUE, Pending, confirmation, read_upcoming
from btu.contracts.protocol import Request, encode_reply

from .config import DaemonConfig
from .consumer import Consumer
from .context import DaemonContext
from .logutil import log_event, utc_iso
from .pause import PauseWatcher
from .refiller import Refiller
from .scheduler import Scheduler
from .socket_server import SocketServer
from .specs import ScheduleSpec
from .sql_gate import SqlProber

log = logging.getLogger("btu.daemon")
STOP_SECONDS = 1.5
GIL_SWITCH_INTERVAL = 0.001
METRICS_RETRY_SECONDS = 30.0
DETAIL_SITES = 10  # status gives every site's details up to this many sites, else a summary per site
MAX_STATUS_SITES = 5000  # sites in one status reply at most (about 200 bytes each in summary)
MAX_LISTED = 100  # invalid schedules, down or skipped sites listed in a reply at most


def _names(sites: list[str], limit: int = 20) -> str:
	shown = ", ".join(sites[:limit])
	return shown if len(sites) <= limit else f"{shown}, ... ({len(sites)} sites)"


class Daemon:
	def __init__(self, config: DaemonConfig) -> None:
		self.config = config
		self.ctx = DaemonContext(config)
		self.consumer = Consumer(self.ctx)
		self.refiller = Refiller(self.ctx)
		self.scheduler = Scheduler(self.ctx)
		self.server = SocketServer(config.socket_path, config.socket_group, self.handle, self._socket_error)
		self.threads: list[threading.Thread] = []

	# --- lifecycle ---------------------------------------------------------------------------
	def start(self) -> None:
		"""Bind the socket (fails fast when another daemon answers), then start the activities."""
		self.server.bind()
		if self.config.metrics_port and not self._try_metrics():
			self.threads.append(self._start(self._retry_metrics, "btu-metrics"))
		log_event(
			log,
			logging.INFO,
			"daemon_started",
			version=__version__,
			pid=os.getpid(),
			sites=_names(list(self.ctx.databases)),
			site_count=len(self.ctx.databases),
			max_db_connections=self.config.max_db_connections,
			job_mode=self.config.job_mode,
			socket=self.config.socket_path,
			bench=self.config.bench_path,
			full_refresh_interval_s=self.config.full_refresh_interval,
		)
		self.refiller.sites.announce_skipped(list(self.config.skipped_sites))
		for name, target in (
			("btu-socket", lambda: self.server.serve(self.ctx.stop)),
			("btu-consumer", self.consumer.run),
			("btu-refiller", self.refiller.run),
			("btu-scheduler", self.scheduler.run),
			("btu-preparer", self.scheduler.preparer.run),
			("btu-pause", PauseWatcher(self.ctx).run),
			("btu-sqlprobe", SqlProber(self.ctx).run),
		):
			self.threads.append(self._start(self._guard(name, target), name))

	@staticmethod
	def _start(target: Any, name: str) -> threading.Thread:
		thread = threading.Thread(target=target, name=name, daemon=True)
		thread.start()
		return thread

	def _try_metrics(self) -> bool:
		"""Metrics are optional: when they cannot be served (port taken, ...) the daemon logs why and
		goes on without them (retrying every METRICS_RETRY_SECONDS); it never stops for them."""
		from .metrics import MetricsError, start_metrics

		try:
			start_metrics(self.ctx, self.config.metrics_port)
		except MetricsError as exc:
			if self.ctx.health.metrics_error != str(exc):
				log_event(
					log,
					logging.ERROR,
					"metrics_unavailable",
					error=str(exc),
					action=f"running without metrics; retrying every {METRICS_RETRY_SECONDS:g} s",
				)
			self.ctx.health.metrics_error = str(exc)
			return False
		self.ctx.health.metrics_error = None
		return True

	def _retry_metrics(self) -> None:
		while not self.ctx.stop.wait(METRICS_RETRY_SECONDS):
			if self._try_metrics():
				return

	def _guard(self, name: str, target: Any) -> Any:
		"""Run an activity; if it ever crashes, log it and restart it (the daemon keeps going)."""

		def run() -> None:
			while not self.ctx.stop.is_set():
				try:
					target()
					return
				except Exception as exc:  # noqa: BLE001
					self.ctx.health.error(f"{name}: {exc}")
					log_event(
						log, logging.ERROR, "activity_crashed", activity=name, error=str(exc), exc_info=True
					)
					self.ctx.stop.wait(1.0)

		return run

	def stop(self) -> None:
		ctx = self.ctx
		if ctx.stop.is_set():
			return
		log_event(log, logging.INFO, "daemon_stopping")
		ctx.stop.set()
		ctx.queue.close()
		ctx.refresh_requests.wake()
		self.scheduler.wake.set()
		self.scheduler.preparer.wake.set()
		deadline = time.monotonic() + STOP_SECONDS
		for thread in self.threads:
			thread.join(max(0.0, deadline - time.monotonic()))
		alive = [t.name for t in self.threads if t.is_alive()]
		self.server.close()
		if self.ctx.metrics is not None:
			self.ctx.metrics.stop()
		self.ctx.store.close()
		self.ctx.pool.close()
		log_event(log, logging.INFO, "daemon_stopped", threads_still_busy=",".join(alive) or None)

	def run_forever(self) -> None:
		"""Start, wait for SIGTERM/SIGINT, stop cleanly."""
		stop_requested = threading.Event()

		def on_signal(signum: int, _frame: Any) -> None:
			log_event(log, logging.INFO, "signal_received", signal=signal.Signals(signum).name)
			stop_requested.set()

		signal.signal(signal.SIGTERM, on_signal)
		signal.signal(signal.SIGINT, on_signal)
		# A socket request waits for the GIL while a refresh parses rows: hand it over after 1 ms,
		# not Python's default 5 ms, at each of the request's I/O waits.
		sys.setswitchinterval(GIL_SWITCH_INTERVAL)
		self.start()
		try:
			while not stop_requested.wait(1.0):
				pass
		finally:
			self.stop()

	# --- socket requests ---------------------------------------------------------------------
	def _socket_error(self) -> None:
		self.ctx.count("socket_errors")

	def _site_for(self, request: Request) -> tuple[str | None, bytes | None]:
		names = self.ctx.databases
		if request.site is None:
			if len(names) == 1:
				return next(iter(names)), None
			return None, encode_reply(False, "'site' is required: this daemon serves " + _names(list(names)))
		if request.site not in names:
			return None, encode_reply(
				False, f"unknown site {request.site!r}; this daemon serves " + _names(list(names))
			)
		return request.site, None

	def handle(self, request: Request) -> bytes:
		ctx = self.ctx
		ctx.count("socket_requests")
		kind = request.request_type
		if kind == "ping":
			return encode_reply(
				True,
				"pong",
				version=__version__,
				pid=os.getpid(),
				uptime_s=round(time.time() - ctx.started_at, 1),
				leader=ctx.leads(),
			)
		if kind == "status":
			if request.site is not None and request.site not in ctx.databases:
				return self._site_for(request)[1]
			return encode_reply(True, "running", **self.status(only=request.site))
		if kind == "refresh":
			return self._refresh(request)
		site, error = self._site_for(request)
		if error:
			return error
		name = request.content
		if kind == "create_task_schedule":
			ctx.queue.put((site, name), ("sync", None), priority=True)
			log_event(log, logging.DEBUG, "schedule_sync_requested", site=site, schedule=name)
			return encode_reply(
				True, f"schedule {name} of site {site} queued for sync", site=site, schedule=name
			)
		if kind == "cancel_task_schedule":
			ctx.queue.put((site, name), ("cancel", None), priority=True)
			log_event(log, logging.DEBUG, "schedule_cancel_requested", site=site, schedule=name)
			return encode_reply(
				True, f"schedule {name} of site {site} queued for removal", site=site, schedule=name
			)
		# parse_request refuses unknown types; a type added there but not here must not cancel anything.
		return encode_reply(False, f"request_type {kind!r} is not handled by this daemon")

	def _refresh(self, request: Request) -> bytes:
		"""A refresh of every site (the bench's sites read again first) or of one; a site the daemon
		does not serve yet is looked for in the bench (BTU's install hook asks so for a new site).
		The reply's ``ticket`` lets the client follow this request's refresh (status: refresh)."""
		ctx = self.ctx
		site = request.site
		if site is not None and site not in ctx.databases:
			if not ctx.config.bench_path:
				return self._site_for(request)[1]
			ticket = ctx.refresh_requests.ask([site], discover=True)
			log_event(log, logging.INFO, "refresh_requested", site=site, new_site=True)
			return encode_reply(
				True,
				f"site {site} is not served yet: looking for it in the bench, then its refresh",
				ticket=ticket,
			)
		ticket = ctx.request_refresh(site, discover=site is None)
		log_event(log, logging.INFO, "refresh_requested", site=site or "all")
		return encode_reply(True, f"full refresh of {site or 'all sites'} started", ticket=ticket)

	def status(self, upcoming: int = 10, only: str | None = None) -> dict[str, Any]:
		"""The daemon's state. Per site a summary; the details (next runs, invalid schedules) for the
		site asked for, or for every site while there are at most DETAIL_SITES: the reply stays well
		under the 1 MiB a client reads, at any number of sites."""
		ctx = self.ctx
		priority, bulk = ctx.queue.sizes()
		names = [only] if only else list(ctx.databases)
		detailed = only is not None or len(names) <= DETAIL_SITES
		sites: dict[str, Any] = {}
		for site in names[:MAX_STATUS_SITES]:
			sites[site] = self._site_status(site, detailed, upcoming)
		lease_holder = None
		if ctx.health.redis_ok:
			try:
				lease_holder = ctx.store.bench_client().get(ctx.store.keys.lease(self.config.bench_id))
				lease_holder = lease_holder.decode() if lease_holder else None
			except RedisError:
				pass
		counters = dict(vars(ctx.counters))
		down = ctx.sql_gate.down_sites()
		return {
			"version": __version__,
			"pid": os.getpid(),
			"uptime_s": round(time.time() - ctx.started_at, 1),
			"started_at": ctx.started_at,
			"leader": ctx.leads(),
			"lease_holder": lease_holder,
			"job_mode": self.config.job_mode,
			"bench": self.config.bench_path,
			"socket": self.config.socket_path,
			"metrics_port": self.config.metrics_port,
			"metrics_host": self.config.metrics_host,
			"metrics_error": ctx.health.metrics_error,
			"full_refresh_interval": self.config.full_refresh_interval,
			"misfire_grace": self.config.misfire_grace,
			"redis_ok": ctx.health.redis_ok,
			"last_error": ctx.health.last_error,
			"last_error_at": ctx.health.last_error_at,
			"internal_queue": {"priority": priority, "bulk": bulk},
			"reconnects": {"redis": ctx.health.redis_reconnects, "sql": ctx.health.sql_reconnects},
			"refresh": ctx.refresh_progress.snapshot(bulk),
			"prepare": self.scheduler.preparer.status(),
			"counters": counters,
			"db_connections": ctx.pool.stats(),
			"site_count": len(ctx.databases),
			"sites_down": down[:MAX_LISTED],
			"sites_down_count": len(down),
			"sites_skipped": dict(list(self.refiller.sites.skipped.items())[:MAX_LISTED]),
			"sites_detailed": detailed,
			"sites": sites,
		}

	def _site_status(self, site: str, detailed: bool, upcoming: int) -> dict[str, Any]:
		ctx = self.ctx
		site_error = ctx.health.site_errors.get(site)
		entry: dict[str, Any] = {
			"sql_ok": ctx.health.sql_ok.get(site, False),
			"btu_installed": site not in ctx.sites_without_btu,
			"time_zone": ctx.timezone_for(site),
			"paused": ctx.pause.paused(site),
			"pause_reasons": ctx.pause.reasons(site),
			"last_error": site_error[0][:300] if site_error else None,
			"last_error_at": site_error[1] if site_error else None,
		}
		down = ctx.sql_gate.describe(site)
		if down is not None:
			entry["sql_retry_in_s"] = down["retry_in_s"]
			entry["pending_edits"] = down["pending_edits"]
		if not ctx.health.redis_ok:
			return entry
		try:
			if detailed:
				entry["schedules"] = ctx.store.count(site)
				invalid = ctx.store.errors(site)
				entry["invalid_count"] = len(invalid)
				entry["invalid_schedules"] = dict(list(invalid.items())[:MAX_LISTED])
				# Each fire time with the timing it was planned by, read together (pending.py).
				runs = read_upcoming(ctx.store.client(site), ctx.store.keys, site, upcoming)
				specs = ctx.store.specs(site, [run.schedule for run in runs])
				entry["next_runs"] = [self._next_run(run, raw) for run, raw in zip(runs, specs)]
				entry["runs_last_hour"] = ctx.store.enqueued_since(site, time.time() - 3600)
			else:
				client = ctx.store.client(site)
				pipe = client.pipeline(transaction=False)
				pipe.zcard(ctx.store.keys.next_runs(site))
				pipe.hlen(ctx.store.keys.errors(site))
				pipe.zrange(ctx.store.keys.next_runs(site), 0, 0, withscores=True)
				count, invalid, first = pipe.execute()
				entry["schedules"] = int(count)
				entry["invalid_count"] = int(invalid)
				entry["next_fire_time"] = int(first[0][1]) if first else None
		except RedisError as exc:
			entry["redis_error"] = str(exc)
		return entry

	@staticmethod
	def _next_run(pending: Pending, raw_spec: bytes | None) -> dict[str, Any]:
		fire_ts = pending.fire_time
		run: dict[str, Any] = {
			"schedule": pending.schedule,
			"fire_time": fire_ts,
			"fire_time_utc": utc_iso(fire_ts),
			"timing": pending.timing,  # the "<cron>|<zone>" this fire time was planned by
			"overdue": confirmation(pending, None) == OVERDUE,
		}
		if raw_spec:
			try:
				spec = ScheduleSpec.from_json(raw_spec)
				run.update(
					task=spec.task,
					description=spec.description,
					cron=spec.cron,
					timezone=spec.timezone,
					once=spec.once,
					overlap=spec.overlap,
				)
			except (ValueError, TypeError):
				pass
		return run
