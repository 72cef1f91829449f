"""Refiller: at start and every full_refresh_interval, queue every schedule of every site.

A self-healing full resync: rows are read in one streamed query per site and handed to
the consumer with the row attached (no second read); Redis entries whose schedule no
longer exists are queued for removal.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from .backoff import Backoff
from .context import DaemonContext
from .logutil import log_event
from .pause import apply_site_settings, check_files
from .sites import SiteDirectory
from .sql import SqlUnavailable

log = logging.getLogger("btu.refiller")
MAX_WAITING = 5000  # back-pressure: at most this many rows wait in the internal queue
ROW_READ_AT = "_btu_read_at"  # added to each row: time.monotonic() when the refresh's query began
PROGRESS_EVERY = 1.0  # seconds between refresh_progress log lines while a refresh runs


class Refiller:
	def __init__(self, ctx: DaemonContext) -> None:
		self.ctx = ctx
		self.sites = SiteDirectory(ctx)
		self._progress_logged_at = 0.0
		self._progress_logged_done = -1
		self.redis_backoff = Backoff()
		self.redis_retry: set[str] = set()  # sites whose refresh failed on Redis: tried again
		self.redis_retry_at = 0.0

	def run(self) -> None:
		ctx = self.ctx
		next_full = 0.0
		while not ctx.stop.is_set():
			asked, discover, ticket = ctx.refresh_requests.take()
			now = time.monotonic()
			full = now >= next_full
			if full or discover:
				self.sites.rediscover()  # sites added, dropped or fixed since the last look
			if full:
				sites = set(ctx.databases)
				next_full = now + ctx.config.full_refresh_interval
			else:
				sites = set()
			sites |= {site for site in asked if site in ctx.databases}
			if self.redis_retry and now >= self.redis_retry_at:
				sites |= {site for site in self.redis_retry if site in ctx.databases}
				self.redis_retry.clear()
			# A site whose database is down is left to the prober (sql_gate.py), which asks for its
			# refresh once it answers; one an operator asks for is tried at once.
			for site in sorted(sites):
				if ctx.sql_gate.blocked(site):
					sites.discard(site)
					if site in asked:
						ctx.sql_gate.retry_soon(site)
						down = ctx.sql_gate.describe(site) or {}
						log_event(
							log,
							logging.WARNING,
							"refresh_failed",
							site=site,
							error=down.get("error"),
							action="its database is down: tried again now, refreshed once it answers",
						)
			if sites or ticket:
				self.refresh(sorted(sites), ticket)
			self._follow_progress()
			wake_at = min(next_full, self.redis_retry_at) if self.redis_retry else next_full
			timeout = max(0.0, wake_at - time.monotonic())
			if ctx.refresh_progress.running:
				timeout = min(timeout, 0.2)  # watch the consumer work through the refresh
			ctx.refresh_requests.wait(timeout)

	def _estimate(self, sites: list[str]) -> dict[str, int]:
		"""Each site's schedules as Redis knows them: the refresh's total until the site's own count."""
		counts: dict[str, int] = {}
		for site in sites:
			try:
				counts[site] = self.ctx.store.count(site)
			except RedisError:
				counts[site] = 0
		return counts

	def refresh(self, sites: list[str], ticket: int = 0) -> None:
		ctx = self.ctx
		started = time.monotonic()
		ctx.counters.last_refresh_started = time.time()
		total = 0
		progress = ctx.refresh_progress
		counts = self._estimate(sites)
		progress.begin(sites, sum(counts.values()), ticket)
		check_files(ctx, force=True)  # site_config.json's maintenance_mode / pause_scheduler
		self._progress_logged_at = 0.0
		self._progress_logged_done = -1
		for site in sites:
			if ctx.stop.is_set():
				return
			if ctx.sql_gate.blocked(site) or site not in ctx.databases:
				continue  # went down (or left) during this refresh
			queued_before = progress.queued
			try:
				total += self.refresh_site(site, counts)
				self.redis_retry.discard(site)
				parked = ctx.sql_gate.succeeded(site)  # (None: it was not down, the usual case)
				if parked:
					ctx.queue.requeue([((site, n), ("sync", None)) for n in parked], priority=True)
				ctx.health.sql_up(site)
			except SqlUnavailable as exc:
				ctx.sql_gate.failed(site, exc)  # logs sql_unavailable once; the prober takes the site on
				log_event(
					log,
					logging.WARNING,
					"refresh_failed",
					site=site,
					error=str(exc)[:300],
					action="runs go on from Redis; the site is refreshed once its database answers",
				)
			except RedisError as exc:
				ctx.health.redis_down(exc)
				wait = self.redis_backoff.fail()
				self.redis_retry.add(site)
				self.redis_retry_at = time.monotonic() + wait
				log_event(
					log, logging.WARNING, "refresh_failed", site=site, error=f"Redis: {exc}", retry_in_s=wait
				)
			# The site is through: its exact share of the total is what was queued for it.
			progress.total += (progress.queued - queued_before) - counts.get(site, 0)
		if not self.redis_retry:
			self.redis_backoff.succeed()
		progress.pushing = False
		elapsed = time.monotonic() - started
		ctx.count("refreshes")
		ctx.counters.last_refresh_seconds = elapsed
		log_event(
			log,
			logging.INFO,
			"full_refresh_queued",
			sites=_names(sites),
			schedules=total,
			seconds=round(elapsed, 3),
		)
		self._follow_progress()

	def _follow_progress(self) -> None:
		"""Once every row of the refresh has left the internal queue, the refresh is complete."""
		progress = self.ctx.refresh_progress
		if not progress.running or progress.pushing:
			return
		if progress.total and self.ctx.queue.sizes()[1] > 0:
			self._log_progress()
			return
		progress.complete()
		log_event(
			log,
			logging.INFO if self._progress_logged_at else logging.DEBUG,
			"refresh_completed",
			sites=_names(progress.sites),
			schedules=progress.queued,
			seconds=progress.last_seconds,
		)

	def _log_progress(self) -> None:
		"""One ``refresh_progress`` line a second (from the second second on) while a refresh runs."""
		progress = self.ctx.refresh_progress
		now = time.monotonic()
		if now - progress.started_mono < PROGRESS_EVERY or now - self._progress_logged_at < PROGRESS_EVERY:
			return
		done = progress.done(self.ctx.queue.sizes()[1])
		if done == self._progress_logged_done:
			return  # stalled (e.g. Redis down): the consumer logs why; no repeated lines
		self._progress_logged_at = now
		self._progress_logged_done = done
		percent = round(100.0 * done / progress.total, 1) if progress.total else 100.0
		log_event(
			log,
			logging.INFO,
			"refresh_progress",
			sites=_names(progress.sites),
			done=done,
			total=progress.total,
			percent=percent,
			elapsed_s=round(now - progress.started_mono, 1),
		)

	def refresh_site(self, site: str, counts: dict[str, int] | None = None) -> int:
		ctx = self.ctx
		database = ctx.databases[site]
		seen: set[str] = set()
		chunk: list[tuple[tuple[str, str], tuple[str, dict]]] = []
		installed = self._btu_installed(site)
		if installed:
			apply_site_settings(ctx, site)  # its zone and BTU Configuration's Pause All Schedules
			if counts is not None:  # the progress's total: the site's own count, not Redis's estimate
				count = database.count_schedules()
				ctx.refresh_progress.total += count - counts.get(site, 0)
				counts[site] = count
			read_at = time.monotonic()  # the rows show the database as of (about) now
			for row in database.iter_all_schedules():
				seen.add(row["name"])
				row[ROW_READ_AT] = read_at  # the consumer drops a row older than a sync it already applied
				chunk.append(((site, row["name"]), ("row", row)))
				if len(chunk) >= 500:
					self._push(chunk)
					chunk = []
		self._push(chunk)
		stale = ctx.store.known_names(site) - seen
		for name in sorted(stale):
			# Re-read, do not cancel: a schedule created since the query above is not stale.
			# (A site without BTU's tables has no schedules left: its entries are removed.)
			ctx.queue.put((site, name), ("sync", None) if installed else ("cancel", None))
		ctx.refresh_progress.queued += len(stale)
		if stale:
			log_event(log, logging.INFO, "stale_schedules_found", site=site, count=len(stale))
		return len(seen)

	def _btu_installed(self, site: str) -> bool:
		"""A bench site without BTU is skipped quietly (re-checked at every full refresh)."""
		ctx = self.ctx
		installed = ctx.databases[site].has_btu()
		if installed and site in ctx.sites_without_btu:
			ctx.sites_without_btu.discard(site)
			log_event(log, logging.INFO, "site_btu_found", site=site)
		elif not installed and site not in ctx.sites_without_btu:
			ctx.sites_without_btu.add(site)
			log_event(
				log,
				logging.INFO,
				"site_without_btu",
				site=site,
				action="skipped until BTU is installed; checked at every full refresh",
			)
		return installed

	def _push(self, chunk: list) -> None:
		if not chunk:
			return
		while not self.ctx.queue.wait_below(MAX_WAITING, timeout=PROGRESS_EVERY / 2):
			if self.ctx.stop.is_set():
				return
			self._log_progress()
		self.ctx.queue.put_many(chunk)
		self.ctx.refresh_progress.queued += len(chunk)
		self._log_progress()


def _names(sites: tuple[str, ...] | list[str], limit: int = 20) -> str:
	"""Site names for a log line, at most ``limit`` of them (a bench may have a thousand)."""
	shown = ",".join(sites[:limit])
	return shown if len(sites) <= limit else f"{shown},... ({len(sites)} sites)"
