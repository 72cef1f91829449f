"""The sites the daemon serves, found again while it runs.

At every full refresh and on a socket ``refresh`` the refiller reads the bench's ``sites`` folder
again (``config.bench_sites``): a new site is served from that refresh on, a site whose folder is
gone (``bench drop-site``) stops: nothing is enqueued for it any more and its Redis entries are
removed; a site whose ``site_config.json`` cannot be used is skipped with one line (again when its
error changes) and served once it is fixed; a changed database user or password is used at once.
``ctx.databases`` is replaced whole, never changed in place: the other threads iterate over it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .config import ConfigError, SiteConfig, bench_sites
from .logutil import log_event
from .sql import SiteDatabase

log = logging.getLogger("btu.sites")


class SiteDirectory:
	def __init__(self, ctx: Any) -> None:
		self.ctx = ctx
		self.skipped: dict[str, str] = {}  # site -> why its configuration cannot be used
		self._bench_error: str | None = None
		self._leftovers: set[str] = set()  # sites removed while Redis was away: entries still to remove

	def announce_skipped(self, skipped: list[tuple[str, str]]) -> None:
		"""Log the skipped sites whose reason is new; forget the ones no longer skipped."""
		now = dict(skipped)
		for site, why in sorted(now.items()):
			if self.skipped.get(site) != why:
				log_event(
					log,
					logging.ERROR,
					"site_config_invalid",
					site=site,
					error=why,
					action="site skipped; the other sites are served; read again at every full refresh",
				)
		self.skipped = now

	def rediscover(self) -> bool:
		"""Read the bench's sites again and apply the differences; True when the set of sites changed."""
		ctx = self.ctx
		try:
			found, skipped = bench_sites(ctx.config)
		except ConfigError as exc:  # common_site_config.json broken: keep serving the sites known
			if self._bench_error != str(exc):
				self._bench_error = str(exc)
				log_event(
					log,
					logging.ERROR,
					"bench_config_invalid",
					error=str(exc),
					action="keeps serving the sites it knows; read again at every full refresh",
				)
			return False
		if self._bench_error is not None:
			log_event(log, logging.INFO, "bench_config_fixed")
			self._bench_error = None
		for name in sorted(self._leftovers):
			if name not in {site.name for site in found}:
				self._remove_entries(name)
		# A site whose configuration broke is skipped only for new sites; one already served keeps its
		# last good configuration (its schedules keep running) until the file is readable again.
		current = ctx.databases
		broken_known = {name for name, _why in skipped if name in current and self._exists(name)}
		self.announce_skipped(skipped)
		wanted: dict[str, SiteConfig] = {site.name: site for site in found}
		for name in broken_known:
			wanted.setdefault(name, current[name].site)
		added = [name for name in wanted if name not in current]
		removed = [name for name in current if name not in wanted]
		changed = [name for name in wanted if name in current and current[name].site != wanted[name]]
		if not (added or removed or changed):
			return False
		databases = dict(current)
		for name in removed:
			databases.pop(name)
		for name in added + changed:
			site = wanted[name]
			if site.redis_url:
				ctx.store.site_redis[name] = site.redis_url
			databases[name] = SiteDatabase(site, pool=ctx.pool)
		ctx.set_sites(dict(sorted(databases.items())))
		for name in changed:
			ctx.pool.forget(name)
			ctx.sql_gate.retry_soon(name)
			log_event(log, logging.INFO, "site_config_changed", site=name)
		for name in added:
			log_event(log, logging.INFO, "site_added", site=name)
		for name in removed:
			self._remove(name)
		return bool(added or removed)

	def _exists(self, name: str) -> bool:
		"""Whether the site's folder is still in the bench (a broken file, not a dropped site)."""
		bench = self.ctx.config.bench_path
		return bool(bench) and os.path.isdir(os.path.join(bench, "sites", name))

	def _remove(self, name: str) -> None:
		"""A site that left the bench: nothing more is enqueued for it (it is no longer iterated) and
		its schedules' Redis entries are removed by the consumer, as cancels."""
		ctx = self.ctx
		ctx.pool.forget(name)
		ctx.sql_gate.forget(name)
		ctx.sites_without_btu.discard(name)
		log_event(
			log,
			logging.WARNING,
			"site_removed",
			site=name,
			action="no longer in the bench: its runs stop and its Redis entries are removed",
		)
		self._remove_entries(name)

	def _remove_entries(self, name: str) -> None:
		ctx = self.ctx
		try:
			names = sorted(ctx.store.known_names(name))
		except Exception as exc:  # noqa: BLE001 - Redis away: tried again at the next rediscovery
			self._leftovers.add(name)
			log_event(log, logging.WARNING, "site_removal_deferred", site=name, error=str(exc))
			return
		self._leftovers.discard(name)
		for schedule in names:
			ctx.queue.put((name, schedule), ("cancel", "site removed"), priority=False)
