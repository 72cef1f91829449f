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
from .sql import SqlUnavailable

log = logging.getLogger("btu.refiller")
MAX_WAITING = 5000  # back-pressure: at most this many rows wait in the internal queue


class Refiller:
    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx
        self.backoff: dict[str, Backoff] = defaultdict(Backoff)
        self.retry_at: dict[str, float] = {}

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
            if ctx.refresh_requested.is_set():
                ctx.refresh_requested.clear()
                sites |= ctx.refresh_sites
                ctx.refresh_sites.clear()
            if sites:
                self.refresh(sorted(sites))
            wake_at = min([next_full, *self.retry_at.values()])
            ctx.refresh_requested.wait(max(0.0, wake_at - time.monotonic()))

    def refresh(self, sites: list[str]) -> None:
        ctx = self.ctx
        started = time.monotonic()
        ctx.counters.last_refresh_started = time.time()
        total = 0
        for site in sites:
            if ctx.stop.is_set():
                return
            try:
                total += self.refresh_site(site)
                self.retry_at.pop(site, None)
                if self.backoff[site].succeed():
                    ctx.health.sql_ok[site] = True
                    log_event(log, logging.INFO, "sql_recovered", site=site)
            except SqlUnavailable as exc:
                ctx.health.sql_ok[site] = False
                ctx.health.error(f"SQL {site}: {exc}")
                wait = self.backoff[site].fail()
                self.retry_at[site] = time.monotonic() + wait
                log_event(log, logging.WARNING, "refresh_failed", site=site, error=str(exc), retry_in_s=wait)
            except RedisError as exc:
                ctx.health.redis_ok = False
                ctx.health.error(f"Redis: {exc}")
                wait = self.backoff[site].fail()
                self.retry_at[site] = time.monotonic() + wait
                log_event(log, logging.WARNING, "refresh_failed", site=site, error=f"Redis: {exc}", retry_in_s=wait)
        elapsed = time.monotonic() - started
        ctx.count("refreshes")
        ctx.counters.last_refresh_seconds = elapsed
        log_event(log, logging.INFO, "full_refresh_queued", sites=",".join(sites), schedules=total,
                  seconds=round(elapsed, 3))

    def refresh_site(self, site: str) -> int:
        ctx = self.ctx
        database = ctx.databases[site]
        ctx.site_timezones[site] = database.configured_timezone() or ctx.config.default_timezone
        seen: set[str] = set()
        chunk: list[tuple[tuple[str, str], tuple[str, dict]]] = []
        for row in database.iter_all_schedules():
            seen.add(row["name"])
            chunk.append(((site, row["name"]), ("row", row)))
            if len(chunk) >= 500:
                self._push(chunk)
                chunk = []
        self._push(chunk)
        stale = ctx.store.known_names(site) - seen
        for name in sorted(stale):
            ctx.queue.put((site, name), ("cancel", None))
        if stale:
            log_event(log, logging.INFO, "stale_schedules_found", site=site, count=len(stale))
        return len(seen)

    def _push(self, chunk: list) -> None:
        if not chunk:
            return
        while not self.ctx.queue.wait_below(MAX_WAITING, timeout=1.0):
            if self.ctx.stop.is_set():
                return
        self.ctx.queue.put_many(chunk)
