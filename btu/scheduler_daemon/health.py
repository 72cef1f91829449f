"""Health for orchestrators: liveness and readiness of one daemon.

Served as ``/healthz`` and ``/readyz`` next to ``/metrics`` (metrics.py, on ``metrics_host:metrics_port``)
and, from the daemon's ``status`` reply, as ``btu-scheduler status --check live|ready|leader``.

* **Liveness** (``/healthz``): the process is not stopping, its activities (threads) are running and
  its socket listener answers a ping. Redis or a database being away does *not* fail it: the daemon
  retries on its own and a restart would not help.
* **Readiness** (``/readyz``): Redis answers a PING and every site's database a ``SELECT 1`` now
  (short timeouts, the answer kept for ``READY_CACHE_SECONDS``), and the role: ``leader`` (holds the
  enqueuing lease), ``standby`` (another daemon of the bench holds it) or ``down`` (Redis does not
  answer: this daemon can neither enqueue nor keep Redis in sync).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pymysql
import redis
from redis.exceptions import RedisError

from btu import __version__
from btu.contracts import protocol

from .sql import SqlUnavailable, open_connection

# The activities daemon.Daemon.start runs, by thread name.
ACTIVITIES = ("btu-socket", "btu-consumer", "btu-refiller", "btu-scheduler", "btu-pause", "btu-sqlprobe")
CHECK_TIMEOUT = 2.0  # seconds for each Redis / database check and for the socket self-ping
READY_CACHE_SECONDS = 1.0  # probes within this reuse the last readiness answer
CHECKS = ("live", "ready", "leader")
ROLES = ("leader", "standby", "down")


def _short(exc: BaseException) -> str:
	text = f"{type(exc).__name__}: {exc}"
	return text if len(text) <= 300 else text[:297] + "..."


class HealthChecks:
	"""Liveness and readiness of the daemon whose context is ``ctx`` (one per daemon)."""

	def __init__(self, ctx: Any) -> None:
		self.ctx = ctx
		self._lock = threading.Lock()  # one readiness check at a time; the others wait for its answer
		self._ready: tuple[float, bool, dict[str, Any]] | None = None
		self._redis: dict[str, redis.Redis] = {}
		self._holder_prefix = f"{socket.gethostname()}:{os.getpid()}:"  # lease.Lease's holder id

	# --- liveness ------------------------------------------------------------------------------
	def liveness(self) -> tuple[bool, dict[str, Any]]:
		ctx = self.ctx
		running = {thread.name for thread in threading.enumerate() if thread.is_alive()}
		activities = {name: "running" if name in running else "stopped" for name in ACTIVITIES}
		problems = [
			f"activity {name} is not running" for name, state in activities.items() if state != "running"
		]
		if ctx.stop.is_set():
			problems.insert(0, "the daemon is stopping")
		reply = protocol.ping(ctx.config.socket_path, timeout=CHECK_TIMEOUT)
		# Any answer (even "daemon busy" under a flood) shows the listener turns; silence does not.
		if reply.reachable:
			socket_state = "ok"
		else:
			socket_state = reply.message
			problems.append(f"the socket does not answer: {reply.message}")
		body = {
			"alive": not problems,
			"problems": problems,
			"activities": activities,
			"socket": socket_state,
			"pid": os.getpid(),
			"version": __version__,
			"uptime_s": round(time.time() - ctx.started_at, 1),
		}
		return not problems, body

	# --- readiness -----------------------------------------------------------------------------
	def readiness(self) -> tuple[bool, dict[str, Any]]:
		with self._lock:
			now = time.monotonic()
			if self._ready is not None and now - self._ready[0] < READY_CACHE_SECONDS:
				return self._ready[1], self._ready[2]
			ready, body = self._check_ready()
			self._ready = (time.monotonic(), ready, body)
			return ready, body

	def _redis_client(self, url: str) -> redis.Redis:
		client = self._redis.get(url)
		if client is None:
			config = self.ctx.config
			client = redis.Redis.from_url(
				url,
				username=config.redis_username,
				password=config.redis_password,
				socket_timeout=CHECK_TIMEOUT,
				socket_connect_timeout=CHECK_TIMEOUT,
				retry_on_timeout=False,
			)
			self._redis[url] = client
		return client

	def _check_redis(self, url: str) -> str | None:
		try:
			self._redis_client(url).ping()
			return None
		except (RedisError, OSError) as exc:
			return _short(exc)

	def _check_sql(self, site: Any) -> str | None:
		"""A new connection and ``SELECT 1``: proves now that the database exists, the site's user
		may log in and the server answers (a kept connection would not notice a dropped database).
		Taken from the daemon's pool (max_db_connections holds); a site the daemon already knows to
		be down is reported as such without a new try (a hung host would hold the probe)."""
		down = self.ctx.sql_gate.describe(site.name) if hasattr(self.ctx, "sql_gate") else None
		if down is not None:
			return down["error"][:300]

		def opener(config: Any) -> Any:
			return open_connection(config, CHECK_TIMEOUT, CHECK_TIMEOUT)

		try:
			with self.ctx.pool.connection(site, opener, fresh=True) as conn:
				with conn.cursor() as cur:
					cur.execute("SELECT 1")
					cur.fetchall()
			return None
		except (pymysql.MySQLError, OSError, SqlUnavailable) as exc:
			return _short(exc)

	def _check_ready(self) -> tuple[bool, dict[str, Any]]:
		ctx = self.ctx
		config = ctx.config
		redis_error = self._check_redis(config.redis_url)
		lease_holder = None
		if redis_error is None:
			try:
				value = self._redis_client(config.redis_url).get(ctx.store.keys.lease(config.bench_id))
				lease_holder = value.decode() if value else None
			except (RedisError, OSError) as exc:
				redis_error = _short(exc)
		if redis_error is not None:
			role = "down"
		elif ctx.leads() and lease_holder is not None and lease_holder.startswith(self._holder_prefix):
			role = "leader"
		else:
			role = "standby"
		sites: dict[str, Any] = {}
		for site in [database.site for database in ctx.databases.values()]:
			sql_error = self._check_sql(site)
			entry: dict[str, Any] = {
				"database": "ok" if sql_error is None else "unreachable",
				"error": sql_error,
			}
			if site.redis_url and site.redis_url != config.redis_url:
				site_redis = self._check_redis(site.redis_url)
				entry["redis"] = "ok" if site_redis is None else "unreachable"
				entry["redis_error"] = site_redis
			entry["paused"] = ctx.pause.paused(site.name)
			entry["btu_installed"] = site.name not in ctx.sites_without_btu
			sites[site.name] = entry
		problems = []
		if redis_error is not None:
			problems.append(f"redis: {redis_error}")
		for name, entry in sites.items():
			if entry["error"]:
				problems.append(f"site {name}: database: {entry['error']}")
			if entry.get("redis_error"):
				problems.append(f"site {name}: redis: {entry['redis_error']}")
		ready = not problems
		body = {
			"ready": ready,
			"role": role,
			"lease_holder": lease_holder,
			"bench_id": config.bench_id,
			"redis": "ok" if redis_error is None else "unreachable",
			"redis_error": redis_error,
			"sites": sites,
			"problems": problems,
			"pid": os.getpid(),
			"version": __version__,
			"checked_at": time.time(),
		}
		return ready, body

	def close(self) -> None:
		with self._lock:
			for client in self._redis.values():
				try:
					client.close()
				except Exception:  # noqa: BLE001
					pass
			self._redis.clear()


# --- btu-scheduler status --check --------------------------------------------------------------


def check_status(
	check: str, reply_ok: bool, message: str, data: dict[str, Any], only_sites: tuple[str, ...] = ()
) -> tuple[bool, str]:
	"""Evaluate ``status --check live|ready|leader`` on a ``status`` reply: (passed, one line);
	``only_sites`` (``--site``) limits the database checks to those sites.

	Read from what the daemon last saw (its ``status`` reply), not checked anew: Redis is touched
	at least every third of ``lease_ttl``, a site's database at each sync and full refresh.
	"""
	if check not in CHECKS:
		raise ValueError(f"unknown check {check!r}; expected one of {', '.join(CHECKS)}")
	if not reply_ok:
		return False, f"{check}: FAIL: daemon down: {message}"
	role = "leader" if data.get("leader") else "standby"
	pid = data.get("pid")
	if check == "live":
		return True, f"live: ok: daemon answers (pid {pid}, {role})"
	problems = []
	if not data.get("redis_ok"):
		problems.append("redis unreachable")
	sites = {n: s for n, s in (data.get("sites") or {}).items() if not only_sites or n in only_sites}
	for name in only_sites:
		if name not in sites:
			problems.append(f"site {name}: not served by this daemon")
	for name, site in sites.items():
		if not site.get("sql_ok"):
			problems.append(f"site {name}: database unreachable")
	if problems:
		return False, f"{check}: FAIL: " + "; ".join(problems) + f" (pid {pid}, {role})"
	if check == "ready":
		return True, f"ready: ok: redis and {len(sites)} site database(s) answer (pid {pid}, {role})"
	if role != "leader":
		holder = data.get("lease_holder") or "nobody yet"
		return False, f"leader: FAIL: standby (lease held by {holder}) (pid {pid})"
	return True, f"leader: ok: holds the lease, redis and {len(sites)} site database(s) answer (pid {pid})"
