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

log = logging.getLogger("btu.daemon")
STOP_SECONDS = 1.5
GIL_SWITCH_INTERVAL = 0.001
METRICS_RETRY_SECONDS = 30.0


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
			sites=",".join(s.name for s in self.config.sites),
			job_mode=self.config.job_mode,
			socket=self.config.socket_path,
			bench=self.config.bench_path,
			full_refresh_interval_s=self.config.full_refresh_interval,
		)
		for name, target in (
			("btu-socket", lambda: self.server.serve(self.ctx.stop)),
			("btu-consumer", self.consumer.run),
			("btu-refiller", self.refiller.run),
			("btu-scheduler", self.scheduler.run),
			("btu-preparer", self.scheduler.preparer.run),
			("btu-pause", PauseWatcher(self.ctx).run),
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
		names = [s.name for s in self.config.sites]
		if request.site is None:
			if len(names) == 1:
				return names[0], None
			return None, encode_reply(False, "'site' is required: this daemon serves " + ", ".join(names))
		if request.site not in names:
			return None, encode_reply(
				False, f"unknown site {request.site!r}; this daemon serves " + ", ".join(names)
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
			return encode_reply(True, "running", **self.status())
		if kind == "refresh":
			if request.site is not None:
				site, error = self._site_for(request)
				if error:
					return error
			else:
				site = None
			ctx.request_refresh(site)
			log_event(log, logging.INFO, "refresh_requested", site=site or "all")
			return encode_reply(True, f"full refresh of {site or 'all sites'} started")
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

	def status(self, upcoming: int = 10) -> dict[str, Any]:
		ctx = self.ctx
		priority, bulk = ctx.queue.sizes()
		sites: dict[str, Any] = {}
		for site in ctx.databases:
			site_error = ctx.health.site_errors.get(site)
			entry: dict[str, Any] = {
				"sql_ok": ctx.health.sql_ok.get(site, False),
				"btu_installed": site not in ctx.sites_without_btu,
				"time_zone": ctx.timezone_for(site),
				"paused": ctx.pause.paused(site),
				"pause_reasons": ctx.pause.reasons(site),
				"last_error": site_error[0] if site_error else None,
				"last_error_at": site_error[1] if site_error else None,
			}
			if ctx.health.redis_ok:
				try:
					entry["schedules"] = ctx.store.count(site)
					entry["invalid_schedules"] = ctx.store.errors(site)
					# Each fire time with the timing it was planned by, read together (pending.py).
					runs = read_upcoming(ctx.store.client(site), ctx.store.keys, site, upcoming)
					specs = ctx.store.specs(site, [run.schedule for run in runs])
					entry["next_runs"] = [self._next_run(run, raw) for run, raw in zip(runs, specs)]
					entry["runs_last_hour"] = ctx.store.enqueued_since(site, time.time() - 3600)
				except RedisError as exc:
					entry["redis_error"] = str(exc)
			sites[site] = entry
		lease_holder = None
		if ctx.health.redis_ok:
			try:
				lease_holder = ctx.store.bench_client().get(ctx.store.keys.lease(self.config.bench_id))
				lease_holder = lease_holder.decode() if lease_holder else None
			except RedisError:
				pass
		counters = dict(vars(ctx.counters))
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
			"sites": sites,
		}

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
