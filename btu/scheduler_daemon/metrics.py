"""Optional HTTP endpoint: ``http://<metrics_host>:<metrics_port>/metrics`` (off unless metrics_port is set),
with ``/healthz`` and ``/readyz`` for orchestrators beside it (health.py).

Uses ``prometheus_client`` (a dependency of BTU); when it cannot be imported or the port is
taken, the daemon logs ``metrics_unavailable`` and runs without metrics. The values come from the
daemon's own counters and health, read at scrape time by a custom collector, so the hot
paths carry no metric calls; the one exception is the enqueue-lateness histogram, observed
by the scheduler for each run it enqueues. One small threaded HTTP server (the standard library's)
serves the three paths on ``metrics_host`` (default 127.0.0.1; 0.0.0.0 in a container, whose probes
come from outside it).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from redis.exceptions import RedisError

from btu import __version__

from .health import HealthChecks
from .logutil import log_event

try:  # optional dependency: the "metrics" extra
	from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
	from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
except ImportError:  # pragma: no cover - exercised only without the extra
	CollectorRegistry = None  # type: ignore[assignment,misc]

log = logging.getLogger("btu.metrics")
METRICS_HOST = "127.0.0.1"  # the default of metrics_host
REQUEST_SECONDS = 5.0  # a client that sends no complete request within this is dropped
LATENESS_BUCKETS = (
	0.005,
	0.01,
	0.025,
	0.05,
	0.1,
	0.25,
	0.5,
	1.0,
	2.5,
	5.0,
	10.0,
	30.0,
	60.0,
	300.0,
	900.0,
	3600.0,
)

# counter name (without _total) -> (Counters attribute, help)
COUNTERS = {
	"btu_runs_enqueued": ("runs_enqueued", "Runs enqueued into RQ by this daemon."),
	"btu_runs_skipped_misfire": (
		"runs_skipped_misfire",
		"Due runs skipped because they were later than misfire_grace.",
	),
	"btu_runs_skipped_overlap": (
		"runs_skipped_overlap",
		"Due runs skipped because the schedule's previous run was still queued or running (overlap policy Skip).",
	),
	"btu_runs_already_enqueued": (
		"runs_already_enqueued",
		"Due runs found already enqueued (by an earlier daemon).",
	),
	"btu_schedules_synced": (
		"schedules_synced",
		"Schedules written to Redis (socket requests and refreshes).",
	),
	"btu_schedules_invalid_seen": ("schedules_invalid", "Schedule rows found invalid while syncing."),
	"btu_socket_requests": ("socket_requests", "Requests received on the Unix socket."),
	"btu_socket_errors": (
		"socket_errors",
		"Socket requests rejected or failed (malformed, oversized, slow, busy).",
	),
	"btu_refreshes": ("refreshes", "Full refreshes run (every full_refresh_interval and on request)."),
}


class MetricsError(Exception):
	"""The metrics endpoint cannot start; the message names metrics_port and what to do."""


class DaemonCollector:
	"""Reads the daemon's counters, health and Redis state at each scrape."""

	def __init__(self, ctx: Any) -> None:
		self.ctx = ctx

	def describe(self) -> list:
		return []  # nothing is read at registration time (Redis may be down)

	def collect(self) -> Iterator[Any]:
		ctx = self.ctx
		config = ctx.config
		info = InfoMetricFamily("btu_daemon", "The BTU scheduler daemon.")
		info.add_metric(
			[], {"version": __version__, "job_mode": config.job_mode, "bench_id": config.bench_id}
		)
		yield info
		yield GaugeMetricFamily(
			"btu_daemon_start_time_seconds", "When the daemon started (Unix time).", value=ctx.started_at
		)
		yield GaugeMetricFamily(
			"btu_leader",
			"1 when this daemon holds the enqueuing lease, 0 on standby.",
			value=1 if ctx.leads() else 0,
		)
		yield GaugeMetricFamily(
			"btu_redis_up",
			"1 when the daemon last reached Redis, else 0.",
			value=1 if ctx.health.redis_ok else 0,
		)
		sql_up = GaugeMetricFamily(
			"btu_sql_up", "1 when the daemon last reached the site's database, else 0.", labels=["site"]
		)
		for site in ctx.databases:
			sql_up.add_metric([site], 1 if ctx.health.sql_ok.get(site, False) else 0)
		yield sql_up
		pool = ctx.pool.stats()
		yield GaugeMetricFamily(
			"btu_db_connections_open",
			"Database connections the daemon holds now, all sites together (at most max_db_connections).",
			value=pool["open"],
		)
		yield GaugeMetricFamily("btu_db_connections_limit", "max_db_connections.", value=pool["limit"])
		yield GaugeMetricFamily("btu_sites", "Sites the daemon serves.", value=len(ctx.databases))

		with ctx.counters_lock:
			counters = dict(vars(ctx.counters))
		for name, (attribute, help_text) in COUNTERS.items():
			yield CounterMetricFamily(name, help_text, value=counters.get(attribute) or 0)
		yield CounterMetricFamily(
			"btu_redis_reconnects",
			"Times Redis answered again after an outage.",
			value=ctx.health.redis_reconnects,
		)
		yield CounterMetricFamily(
			"btu_sql_reconnects",
			"Times a site's database answered again after an outage.",
			value=ctx.health.sql_reconnects,
		)

		progress = ctx.refresh_progress
		priority, bulk = ctx.queue.sizes()
		yield GaugeMetricFamily(
			"btu_refresh_running",
			"1 while a full refresh is in progress.",
			value=1 if progress.running else 0,
		)
		yield GaugeMetricFamily(
			"btu_refresh_last_duration_seconds",
			"Duration of the last completed full refresh (first row read to last row applied).",
			value=progress.last_seconds if progress.last_seconds is not None else float("nan"),
		)
		yield GaugeMetricFamily(
			"btu_refresh_last_queue_seconds",
			"Time the last full refresh took to read every schedule and queue it.",
			value=counters.get("last_refresh_seconds") or float("nan"),
		)
		queue = GaugeMetricFamily(
			"btu_internal_queue_size", "Schedule ids waiting in the internal queue.", labels=["lane"]
		)
		queue.add_metric(["priority"], priority)
		queue.add_metric(["bulk"], bulk)
		yield queue

		known = GaugeMetricFamily(
			"btu_schedules", "Schedules known (with a next fire time in Redis).", labels=["site"]
		)
		invalid = GaugeMetricFamily(
			"btu_schedules_invalid", "Schedules that cannot run (see 'status').", labels=["site"]
		)
		if ctx.health.redis_ok:
			for site in ctx.databases:
				try:
					client = ctx.store.client(site)
					known.add_metric([site], ctx.store.count(site))
					invalid.add_metric([site], int(client.hlen(ctx.store.keys.errors(site))))
				except RedisError:
					continue
		yield known
		yield invalid


def _url(host: str, port: int, path: str = "/metrics") -> str:
	return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


class _Server(ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True


class _Server6(_Server):
	address_family = socket.AF_INET6


def _handler(metrics: "Metrics") -> type[BaseHTTPRequestHandler]:
	class Handler(BaseHTTPRequestHandler):
		timeout = REQUEST_SECONDS
		server_version = "btu-scheduler"
		sys_version = ""

		def do_GET(self) -> None:  # noqa: N802 - http.server's name
			self._answer(send_body=True)

		def do_HEAD(self) -> None:  # noqa: N802
			self._answer(send_body=False)

		def _answer(self, send_body: bool) -> None:
			path = self.path.split("?", 1)[0]
			try:
				if path in ("/metrics", "/"):
					status, content_type, body = 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
				elif path in ("/healthz", "/livez"):
					ok, data = metrics.health.liveness()
					status, content_type, body = 200 if ok else 503, "application/json", _json(data)
				elif path == "/readyz":
					ok, data = metrics.health.readiness()
					status, content_type, body = 200 if ok else 503, "application/json", _json(data)
				else:
					status, content_type = 404, "text/plain; charset=utf-8"
					body = b"not found: try /metrics, /healthz or /readyz\n"
			except Exception as exc:  # noqa: BLE001 - a probe must get an answer, never a dropped connection
				status, content_type = 500, "text/plain; charset=utf-8"
				body = f"error: {type(exc).__name__}: {exc}\n".encode()
			self.send_response(status)
			self.send_header("Content-Type", content_type)
			self.send_header("Content-Length", str(len(body)))
			self.send_header("Cache-Control", "no-store")
			self.end_headers()
			if send_body:
				self.wfile.write(body)

		def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
			pass  # no line per probe or scrape (the daemon logs events only)

	return Handler


def _json(data: dict[str, Any]) -> bytes:
	return (json.dumps(data, default=str, sort_keys=True) + "\n").encode()


class Metrics:
	"""The registry, the lateness histogram, the health checks and the HTTP server of one daemon."""

	def __init__(self, ctx: Any) -> None:
		if CollectorRegistry is None:
			raise MetricsError(
				"metrics_port is set but prometheus_client cannot be imported: "
				"pip install prometheus_client into the daemon's environment, or unset metrics_port."
			)
		self.registry = CollectorRegistry(auto_describe=True)
		self.registry.register(DaemonCollector(ctx))
		self.lateness = Histogram(
			"btu_enqueue_lateness_seconds",
			"How late each run was enqueued after its fire time.",
			buckets=LATENESS_BUCKETS,
			registry=self.registry,
		)
		self.health = HealthChecks(ctx)
		self.server: Any = None
		self.thread: Any = None
		self.port: int | None = None
		self.host = getattr(ctx.config, "metrics_host", METRICS_HOST) or METRICS_HOST

	def observe_lateness(self, seconds: float) -> None:
		self.lateness.observe(max(0.0, seconds))

	def start(self, port: int) -> None:
		host = self.host
		server_class = _Server6 if ":" in host else _Server
		try:
			self.server = server_class((host, port), _handler(self))
		except OSError as exc:
			raise MetricsError(
				f"metrics_port {port}: cannot listen on {host}:{port} "
				f"({exc.strerror or exc}); choose a free port or unset metrics_port."
			) from None
		self.thread = threading.Thread(
			target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, name="btu-http", daemon=True
		)
		self.thread.start()
		self.port = port
		log_event(
			log,
			logging.INFO,
			"metrics_listening",
			url=_url(host, port),
			health=_url(host, port, "/healthz"),
			ready=_url(host, port, "/readyz"),
		)

	def stop(self) -> None:
		if self.server is not None:
			self.server.shutdown()
			self.server.server_close()
			self.server = None
		self.health.close()


def start_metrics(ctx: Any, port: int) -> Metrics:
	"""Create the daemon's metrics, serve them (and the health paths) on metrics_host:port and
	attach them to ``ctx``."""
	metrics = Metrics(ctx)
	metrics.start(port)
	ctx.metrics = metrics
	return metrics
