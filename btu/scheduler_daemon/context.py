"""What the daemon's concurrent activities share: configuration, connections, queue, state."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .config import DaemonConfig
from .jobs import JobBuilder
from .redis_store import RedisStore
from .sql import SiteDatabase
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

    def error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()


@dataclass
class Counters:
    runs_enqueued: int = 0
    runs_skipped_misfire: int = 0
    runs_already_enqueued: int = 0
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
        self.databases = {site.name: SiteDatabase(site) for site in config.sites}
        self.site_timezones: dict[str, str] = {}
        # Last fire time the daemon wrote per schedule, kept in memory so that runs missed
        # while Redis was restarted (and emptied) are still seen: key -> (timing, fire_ts).
        self.known_next: dict[tuple[str, str], tuple[str, int]] = {}
        self.known_lock = threading.Lock()
        self.health = Health(sql_ok={site.name: True for site in config.sites})
        self.counters = Counters()
        self.counters_lock = threading.Lock()
        self.refresh_requested = threading.Event()
        self.refresh_sites: set[str] = set()
        self.is_leader = False
        self.wake_scheduler = lambda fire_ts: None  # replaced by the scheduler

    def count(self, name: str, amount: int = 1) -> None:
        with self.counters_lock:
            setattr(self.counters, name, getattr(self.counters, name) + amount)

    def timezone_for(self, site: str) -> str:
        return self.site_timezones.get(site) or self.config.default_timezone

    def request_refresh(self, site: str | None = None) -> None:
        if site:
            self.refresh_sites.add(site)
        else:
            self.refresh_sites.update(self.databases)
        self.refresh_requested.set()
