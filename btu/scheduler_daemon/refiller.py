"""Refiller: at start and every full_refresh_interval, queue every schedule of every site.

A self-healing full resync: rows are read in one streamed query per site and handed to
the consumer with the row attached (no second read); Redis entries whose schedule no
longer exists are queued for removal.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from redis.exceptions import RedisError

from .backoff import Backoff
from .context import DaemonContext
from .logutil import log_event
from .pause import apply_site_settings, check_files
from .sql import SqlUnavailable

log = logging.getLogger("btu.refiller")
MAX_WAITING = 5000  # back-pressure: at most this many rows wait in the internal queue
ROW_READ_AT = "_btu_read_at"  # added to each row: time.monotonic() when the refresh's query began
PROGRESS_EVERY = 1.0  # seconds between refresh_progress log lines while a refresh runs


class Refiller:
	def __init__(self, ctx: DaemonContext) -> None:
		self.ctx = ctx
		self.backoff: dict[str, Backoff] = defaultdict(Backoff)
		self.retry_at: dict[str, float] = {}
		self._progress_logged_at = 0.0
		self._progress_logged_done = -1

	def run(self) -> None:
		ctx = self.ctx
		next_full = 0.0
		while not ctx.stop.is_set():
			now = time.monotonic()
			if now >= next_full:
				sites = set(ctx.databases)
				next_full = now + ctx.config.full_refresh_interval
			else:
				sites = {s for s, at in self.retry_at.items() if at <= now}
			sites |= ctx.refresh_requests.take()
			if sites:
				self.refresh(sorted(sites))
			self._follow_progress()
			wake_at = min([next_full, *self.retry_at.values()])
			timeout = max(0.0, wake_at - time.monotonic())
			if ctx.refresh_progress.running:
				timeout = min(timeout, 0.2)  # watch the consumer work through the refresh
			ctx.refresh_requests.wait(timeout)

	def refresh(self, sites: list[str]) -> None:
		ctx = self.ctx
		started = time.monotonic()
		ctx.counters.last_refresh_started = time.time()
		total = 0
		progress = ctx.refresh_progress
		counts: dict[str, int] = {}
		for site in sites:
			try:
				counts[site] = ctx.databases[site].count_schedules()
			except SqlUnavailable:
				counts[site] = 0  # the site's refresh below fails the same way and is retried
		progress.begin(sites, sum(counts.values()))
		check_files(ctx, force=True)  # site_config.json's maintenance_mode / pause_scheduler
		self._progress_logged_at = 0.0
		self._progress_logged_done = -1
		for site in sites:
			if ctx.stop.is_set():
				return
			queued_before = progress.queued
			try:
				total += self.refresh_site(site)
				self.retry_at.pop(site, None)
				if self.backoff[site].succeed() and not ctx.health.sql_ok.get(site, True):
					ctx.health.sql_up(site)  # (a failure run of Redis errors is not an SQL recovery)
					log_event(log, logging.INFO, "sql_recovered", site=site)
			except SqlUnavailable as exc:
				ctx.health.sql_down(site, exc)
				wait = self.backoff[site].fail()
				self.retry_at[site] = time.monotonic() + wait
				log_event(log, logging.WARNING, "refresh_failed", site=site, error=str(exc), retry_in_s=wait)
			except RedisError as exc:
				ctx.health.redis_down(exc)
				wait = self.backoff[site].fail()
				self.retry_at[site] = time.monotonic() + wait
				log_event(
					log, logging.WARNING, "refresh_failed", site=site, error=f"Redis: {exc}", retry_in_s=wait
				)
			# The site is through: its exact share of the total is what was queued for it.
			progress.total += (progress.queued - queued_before) - counts.get(site, 0)
		progress.pushing = False
		elapsed = time.monotonic() - started
		ctx.count("refreshes")
		ctx.counters.last_refresh_seconds = elapsed
		log_event(
			log,
			logging.INFO,
			"full_refresh_queued",
			sites=",".join(sites),
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
		progress.running = False
		progress.last_completed_at = time.time()
		progress.last_seconds = round(time.monotonic() - progress.started_mono, 3)
		progress.last_schedules = progress.queued
		log_event(
			log,
			logging.INFO if self._progress_logged_at else logging.DEBUG,
			"refresh_completed",
			sites=",".join(progress.sites),
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
			sites=",".join(progress.sites),
			done=done,
			total=progress.total,
			percent=percent,
			elapsed_s=round(now - progress.started_mono, 1),
		)

	def refresh_site(self, site: str) -> int:
		ctx = self.ctx
		database = ctx.databases[site]
		seen: set[str] = set()
		chunk: list[tuple[tuple[str, str], tuple[str, dict]]] = []
		installed = self._btu_installed(site)
		if installed:
			apply_site_settings(ctx, site)  # its zone and BTU Configuration's Pause All Schedules
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
