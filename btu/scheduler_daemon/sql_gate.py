"""Sites whose database failed: kept apart so that they delay no other site.

A site whose database cannot be reached, refuses the password, hangs or lacks BTU's tables is
*down*: the consumer parks its edits instead of reading them (the names only, newest request
kept) and the refiller leaves it out of its passes. The prober, a thread of its own, tries each
down site again with the site's own back-off (RETRY_FIRST doubling up to RETRY_MAX seconds); when
it answers, its parked edits go back to the internal queue and a refresh of the site is asked for.
One ``sql_unavailable`` line when a site goes down or its error changes, one ``sql_recovered``
when it is back: the log does not grow with the retries.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from .backoff import Backoff
from .config import ConfigError, SiteConfig, bench_sites
from .logutil import log_event
from .sql import SqlUnavailable

log = logging.getLogger("btu.sql")
RETRY_FIRST = 1.0  # s before the first retry of a site that failed
RETRY_MAX = 30.0  # s between retries at most (a fixed site is served again within this)
TICK = 1.0  # s: the prober closes idle connections at least this often


@dataclass
class _Down:
	error: str
	since: float  # time.time() when it went down
	retry_at: float  # time.monotonic() of the next try
	backoff: Backoff = field(default_factory=lambda: Backoff(RETRY_FIRST, RETRY_MAX))
	attempts: int = 0


class SqlGate:
	"""Which sites are down, when each is tried again, and the edits parked for them (thread-safe)."""

	def __init__(self, health: Any) -> None:
		self.health = health
		self._lock = threading.Lock()
		self._down: dict[str, _Down] = {}
		self._parked: dict[str, dict[str, float]] = {}  # site -> schedule -> monotonic time of its request
		self.wake = threading.Event()

	def blocked(self, site: str) -> bool:
		with self._lock:
			return site in self._down

	def failed(self, site: str, exc: SqlUnavailable) -> float:
		"""Record a failure of the site's database; returns the wait before its next try."""
		text = str(exc)[:500]
		with self._lock:
			entry = self._down.get(site)
			changed = entry is None or entry.error != text
			if entry is None:
				entry = self._down[site] = _Down(text, time.time(), 0.0)
			wait = entry.backoff.fail()
			entry.retry_at = time.monotonic() + wait
			entry.error = text
			entry.attempts += 1
			parked = len(self._parked.get(site, ()))
		self.health.sql_down(site, exc)
		if changed:
			log_event(
				log,
				logging.WARNING,
				"sql_unavailable",
				site=site,
				error=text,
				retry_in_s=wait,
				pending=parked,
				action=f"other sites carry on; retried every {RETRY_MAX:g} s at most, edits kept",
			)
		else:
			log_event(
				log, logging.DEBUG, "sql_retry_failed", site=site, attempts=entry.attempts, retry_in_s=wait
			)
		self.wake.set()
		return wait

	def succeeded(self, site: str) -> list[str] | None:
		"""The site answered: None when it was not down, else the schedules parked meanwhile."""
		with self._lock:
			entry = self._down.pop(site, None)
			if entry is None:
				return None
			parked = list(self._parked.pop(site, {}))
		self.health.sql_up(site)
		log_event(
			log,
			logging.INFO,
			"sql_recovered",
			site=site,
			down_s=round(time.time() - entry.since, 1),
			attempts=entry.attempts,
			pending=len(parked),
		)
		return parked

	def park(self, site: str, names: list[str], at: float) -> None:
		"""Keep edits of a down site until it answers (a newer request of a name replaces the older)."""
		with self._lock:
			waiting = self._parked.setdefault(site, {})
			for name in names:
				waiting[name] = max(at, waiting.get(name, at))

	def settle(self, site: str, names: list[str], at: float) -> None:
		"""Forget parked edits that a newer action made moot: a row read or a cancel applied at ``at``."""
		with self._lock:
			waiting = self._parked.get(site)
			if not waiting:
				return
			for name in names:
				if name in waiting and waiting[name] <= at:
					del waiting[name]

	def due(self) -> list[str]:
		now = time.monotonic()
		with self._lock:
			return sorted(site for site, entry in self._down.items() if entry.retry_at <= now)

	def next_retry_in(self) -> float | None:
		with self._lock:
			if not self._down:
				return None
			return max(0.0, min(entry.retry_at for entry in self._down.values()) - time.monotonic())

	def retry_soon(self, site: str) -> None:
		"""Try a down site now (an operator asked for its refresh)."""
		with self._lock:
			entry = self._down.get(site)
			if entry is not None:
				entry.retry_at = time.monotonic()
		self.wake.set()

	def forget(self, site: str) -> None:
		"""The site left the bench."""
		with self._lock:
			self._down.pop(site, None)
			self._parked.pop(site, None)

	def down_sites(self) -> list[str]:
		with self._lock:
			return sorted(self._down)

	def describe(self, site: str) -> dict[str, Any] | None:
		with self._lock:
			entry = self._down.get(site)
			if entry is None:
				return None
			return {
				"error": entry.error,
				"down_since": entry.since,
				"retry_in_s": round(max(0.0, entry.retry_at - time.monotonic()), 1),
				"attempts": entry.attempts,
				"pending_edits": len(self._parked.get(site, ())),
			}


class SqlProber:
	"""The activity that tries down sites again and closes idle database connections."""

	def __init__(self, ctx: Any) -> None:
		self.ctx = ctx

	def run(self) -> None:
		ctx = self.ctx
		gate: SqlGate = ctx.sql_gate
		while not ctx.stop.is_set():
			ctx.pool.close_idle()
			for site in gate.due():
				if ctx.stop.is_set():
					return
				self.try_site(site)
			wait = gate.next_retry_in()
			gate.wake.wait(TICK if wait is None else min(TICK, wait))
			gate.wake.clear()

	def try_site(self, site: str) -> None:
		ctx = self.ctx
		database = ctx.databases.get(site)
		if database is None:
			ctx.sql_gate.forget(site)
			return
		if self._config_changed(database.site):
			# Its site_config.json was edited (a password fixed): the refiller takes the new one and
			# the site is tried with it at once.
			ctx.refresh_requests.ask([site], discover=True)
			ctx.sql_gate.failed(site, SqlUnavailable(ctx.sql_gate.describe(site)["error"]))
			return
		try:
			database.probe()
		except SqlUnavailable as exc:
			ctx.sql_gate.failed(site, exc)
			return
		parked = ctx.sql_gate.succeeded(site)
		if parked is None:
			return
		# Back in the priority lane; a request of the same name that came meanwhile keeps its place.
		ctx.queue.requeue([((site, name), ("sync", None)) for name in parked], priority=True)
		ctx.request_refresh(site)

	def _config_changed(self, site: SiteConfig) -> bool:
		"""Whether the site's configuration in the bench differs from the one in use (two small files)."""
		if not self.ctx.config.bench_path or site in self.ctx.config.extra_sites:
			return False
		try:
			found, _skipped = bench_sites(
				replace(self.ctx.config, site_selection=(site.name,), extra_sites=())
			)
		except ConfigError:
			return False
		return bool(found) and found[0] != site
