"""What the daemon's concurrent activities share: configuration, connections, queue, state."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .config import DaemonConfig
from .jobs import JobBuilder
from .leader_memory import LeaderMemory
from .pause import PauseState
from .redis_store import RedisStore
from .sql import ConnectionPool, SiteDatabase
from .sql_gate import SqlGate
from .unique_queue import UniqueQueue

# Internal queue: key (site, schedule) -> action ("sync", None) | ("row", row dict) | ("cancel", None)
Action = tuple[str, Any]


@dataclass
class Health:
	redis_ok: bool = True
	sql_ok: dict[str, bool] = field(default_factory=dict)
	last_error: str | None = None
	last_error_at: float | None = None
	redis_reconnects: int = 0
	sql_reconnects: int = 0
	metrics_error: str | None = None  # why metrics_port is not served (None: served or off)
	site_errors: dict[str, tuple[str, float]] = field(default_factory=dict)  # site -> (last error, when)

	def error(self, message: str, site: str | None = None) -> None:
		self.last_error = message
		self.last_error_at = time.time()
		if site is not None:
			self.site_errors[site] = (message, self.last_error_at)

	def redis_up(self) -> None:
		"""Redis answers again after an outage (counted once per outage, whichever activity sees it first)."""
		if not self.redis_ok:
			self.redis_reconnects += 1
		self.redis_ok = True

	def redis_down(self, exc: Exception) -> None:
		self.redis_ok = False
		self.error(f"Redis: {exc}")

	def sql_up(self, site: str) -> None:
		"""A site's database answers again after an outage."""
		if not self.sql_ok.get(site, True):
			self.sql_reconnects += 1
		self.sql_ok[site] = True

	def sql_down(self, site: str, exc: Exception) -> None:
		self.sql_ok[site] = False
		self.error(f"SQL {site}: {exc}", site)


class RefreshRequests:
	"""Sites whose schedules should all be resynced soon: asked for by socket threads, the consumer,
	the prober and the scheduler, taken by the refiller. One lock: a request is never lost between a
	take and the next wait. Each request gets a ticket (increasing); the refresh that takes it reports
	it (RefreshProgress), so that a client follows its own request, not another one."""

	def __init__(self) -> None:
		self._lock = threading.Lock()
		self._sites: set[str] = set()
		self._discover = False
		self._ticket = 0
		self._taken = 0
		self._event = threading.Event()

	def ask(self, sites: Iterable[str], discover: bool = False) -> int:
		"""Ask for a refresh of ``sites`` (``discover``: read the bench's sites again first)."""
		with self._lock:
			self._sites.update(sites)
			self._discover = self._discover or discover
			self._ticket += 1
			self._event.set()
			return self._ticket

	def take(self) -> tuple[set[str], bool, int]:
		"""(sites, discover, highest ticket taken; 0: none new)."""
		with self._lock:
			sites, self._sites = self._sites, set()
			discover, self._discover = self._discover, False
			ticket = self._ticket if self._ticket > self._taken else 0
			self._taken = self._ticket
			self._event.clear()
		return sites, discover, ticket

	def wait(self, timeout: float | None) -> None:
		self._event.wait(timeout)

	def wake(self) -> None:
		"""Wake the refiller without a request (the daemon is stopping)."""
		self._event.set()


@dataclass
class RefreshProgress:
	"""The full refresh in progress (or the last one): rows handed to the consumer out of the total.

	``queued`` counts rows (and removals of stale entries) put on the internal queue; the refresh
	is done when they have all left the queue. ``ticket`` is the newest request it answers,
	``completed_ticket`` the newest request answered by a completed refresh. Written by the refiller
	only; read by status/metrics.
	"""

	number: int = 0  # how many refreshes have begun
	running: bool = False
	pushing: bool = False
	sites: tuple[str, ...] = ()
	total: int = 0
	queued: int = 0
	ticket: int = 0
	completed_ticket: int = 0
	started_at: float | None = None
	started_mono: float = 0.0
	last_completed_at: float | None = None
	last_seconds: float | None = None
	last_schedules: int | None = None

	def begin(self, sites: list[str], total: int, ticket: int = 0) -> None:
		# A refresh begun before the previous one completed answers its requests too.
		self.ticket = max(ticket, self.ticket if self.running else 0)
		self.number += 1
		self.sites = tuple(sites)
		self.total = total
		self.queued = 0
		self.started_at = time.time()
		self.started_mono = time.monotonic()
		self.pushing = True
		self.running = True

	def complete(self) -> None:
		self.running = False
		self.completed_ticket = max(self.completed_ticket, self.ticket)
		self.last_completed_at = time.time()
		self.last_seconds = round(time.monotonic() - self.started_mono, 3)
		self.last_schedules = self.queued

	def done(self, bulk_waiting: int) -> int:
		"""Rows the consumer has taken so far (approximate while it works through a batch)."""
		if not self.running:
			return self.last_schedules or 0
		return max(0, min(self.total, self.queued - bulk_waiting))

	def snapshot(self, bulk_waiting: int, site_limit: int = 20) -> dict[str, Any]:
		return {
			"number": self.number,
			"running": self.running,
			"sites": list(self.sites[:site_limit]),
			"site_count": len(self.sites),
			"done": self.done(bulk_waiting),
			"total": self.total,
			"ticket": self.ticket,
			"completed_ticket": self.completed_ticket,
			"started_at": self.started_at,
			"seconds": round(time.monotonic() - self.started_mono, 3) if self.running else self.last_seconds,
			"last_completed_at": self.last_completed_at,
			"last_seconds": self.last_seconds,
			"last_schedules": self.last_schedules,
		}


@dataclass
class Counters:
	runs_enqueued: int = 0
	runs_skipped_misfire: int = 0
	runs_skipped_overlap: int = 0  # overlap policy Skip: the previous run was still queued or running
	runs_already_enqueued: int = 0
	runs_prepared: int = 0  # of runs_enqueued: made visible by a prepared step (prepared.py)
	schedules_synced: int = 0
	schedules_invalid: int = 0
	socket_requests: int = 0
	socket_errors: int = 0
	refreshes: int = 0
	last_refresh_started: float | None = None
	last_refresh_seconds: float | None = None


class DaemonContext:
	def __init__(self, config: DaemonConfig) -> None:
		self.config = config
		self.started_at = time.time()
		self.stop = threading.Event()
		self.queue: UniqueQueue[tuple[str, str], Action] = UniqueQueue()
		self.store = RedisStore(config)
		self.jobs = JobBuilder(config)
		self.pool = ConnectionPool(config.max_db_connections)  # every database connection of the daemon
		self.databases = {site.name: SiteDatabase(site, pool=self.pool) for site in config.sites}
		self.site_timezones: dict[str, str] = {}
		self.pause = PauseState(config)  # why a site is paused (nothing enqueued for it meanwhile)
		self.sites_without_btu: set[str] = set()  # bench sites whose database has no BTU tables
		self.memory = LeaderMemory()  # fire times the leader planned, for catch-ups after Redis loses data
		self.health = Health(sql_ok={site.name: True for site in config.sites})
		self.sql_gate = SqlGate(self.health)  # sites whose database is down: retried apart (sql_gate.py)
		self.counters = Counters()
		self.counters_lock = threading.Lock()
		self.refresh_progress = RefreshProgress()
		self.metrics: Any = None  # a metrics.Metrics when metrics_port is set
		self.refresh_requests = RefreshRequests()
		self.is_leader = False  # the scheduler's own view; what the daemon reports is leads()
		self.lease_confirmed_at = 0.0  # time.monotonic() of the last acquire/renew that got through
		self.wake_scheduler = lambda fire_ts: None  # replaced by the scheduler
		# (site, {schedule: row or None}, time.monotonic() of the read): applies rows read from SQL as
		# the consumer does; replaced by the consumer
		self.apply_rows = lambda site, rows, read_at: None
		# (site, schedules whose runs prepared ahead were dropped, earliest new fire time, schedules given
		# new fire times): the preparer's
		self.prepared_changed = lambda site, names=(), earliest=None, joined=(): None

	def leads(self) -> bool:
		"""What the daemon says of its leadership (ping, status, /readyz, btu_leader): it holds the lease
		and renewed it within lease_ttl. A daemon cut off from Redis keeps is_leader (and the fire times
		it remembers) until it can ask again, but by then its lease may be another's."""
		return self.is_leader and time.monotonic() - self.lease_confirmed_at <= self.config.lease_ttl

	def count(self, name: str, amount: int = 1) -> None:
		with self.counters_lock:
			setattr(self.counters, name, getattr(self.counters, name) + amount)

	def timezone_for(self, site: str) -> str:
		return self.site_timezones.get(site) or self.config.default_timezone

	def request_refresh(self, site: str | None = None, discover: bool = False) -> int:
		"""Ask the refiller for a refresh of one site or all; returns the request's ticket."""
		return self.refresh_requests.ask([site] if site else list(self.databases), discover)

	def set_sites(self, databases: dict[str, SiteDatabase]) -> None:
		"""Replace the sites served (sites.py): a new dict, so that iterations in progress are unharmed."""
		for name in databases:
			self.health.sql_ok.setdefault(name, True)
		self.databases = databases
		self.pause.set_sites(list(databases))
