"""Paused sites: the daemon enqueues nothing for a site while any of these is set:

* BTU Configuration's **Pause All Schedules** (read from ``tabSingles`` at every full refresh of
  the site, and when the Desk asks for one after the setting changed);
* ``maintenance_mode`` or ``pause_scheduler`` in the site's ``site_config.json`` or the bench's
  ``common_site_config.json`` (the site's value wins, as in Frappe's ``frappe.conf``): the files
  are re-read at every full refresh and whenever their modification time changes (checked every
  second: a ``stat`` per file).

Frappe's own *Enable Scheduler* setting is not one of them: benches in development have it off.
While a site is paused its due runs stay in Redis; when it resumes, the scheduler's misfire
rule decides (a run at most ``misfire_grace`` late runs once, older ones are skipped and logged).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from .config import DaemonConfig
from .logutil import log_event

log = logging.getLogger("btu.pause")
CHECK_SECONDS = 1.0
CONF_FLAGS = ("maintenance_mode", "pause_scheduler")
CONFIGURATION_REASON = "BTU Configuration: Pause All Schedules is set"


def flag_on(value: Any) -> bool:
	"""A site_config flag as Frappe writes it (1/0, true/false; '0'/'false' strings are off)."""
	if isinstance(value, str):
		return value.strip().lower() not in ("", "0", "false", "no", "off", "none", "null")
	return bool(value)


class PauseState:
	"""Why each site is paused (nothing: it is not). Written by the refiller, the consumer and the
	watcher; read by the scheduler and ``status``."""

	def __init__(self, config: DaemonConfig) -> None:
		self.bench_path = config.bench_path
		self.sites = [site.name for site in config.sites]
		self._lock = threading.Lock()
		self._files_lock = threading.Lock()  # the watcher and a full refresh both check the files
		self._configuration: dict[str, bool] = {}
		self._conf: dict[str, list[str]] = {}  # site -> reasons from the config files
		self._stamps: dict[str, tuple[int, int, int] | None] = {}  # path -> (mtime_ns, size, inode)
		self._values: dict[str, dict[str, Any]] = {}  # path -> the flags last read from it

	def set_sites(self, sites: list[str]) -> None:
		"""The sites served changed (sites.py); a new site's files are read at the next check."""
		self.sites = list(sites)

	def reasons(self, site: str) -> list[str]:
		with self._lock:
			found = list(self._conf.get(site, []))
			if self._configuration.get(site):
				found.insert(0, CONFIGURATION_REASON)
		return found

	def paused(self, site: str) -> bool:
		with self._lock:
			return bool(self._configuration.get(site) or self._conf.get(site))

	def set_configuration(self, site: str, paused: bool) -> tuple[list[str], list[str]] | None:
		"""BTU Configuration's flag as read from SQL; (reasons before, after) when it changed."""
		before = self.reasons(site)
		with self._lock:
			self._configuration[site] = bool(paused)
		after = self.reasons(site)
		return (before, after) if before != after else None

	# --- the config files -------------------------------------------------------------------
	def _paths(self, site: str) -> list[str]:
		if not self.bench_path:
			return []
		sites = os.path.join(self.bench_path, "sites")
		return [os.path.join(sites, "common_site_config.json"), os.path.join(sites, site, "site_config.json")]

	@staticmethod
	def _stamp(path: str) -> tuple[int, int, int] | None:
		try:
			info = os.stat(path)
		except OSError:
			return None
		return (info.st_mtime_ns, info.st_size, info.st_ino)

	def _read(self, path: str) -> dict[str, Any] | None:
		"""The pause flags of one file; None when it cannot be read whole right now (being written)."""
		try:
			with open(path, encoding="utf-8") as handle:
				data = json.load(handle)
		except FileNotFoundError:
			return {}
		except (OSError, ValueError):
			return None
		if not isinstance(data, dict):
			return None
		return {key: data[key] for key in CONF_FLAGS if key in data}

	def check_files(self, force: bool = False) -> list[tuple[str, list[str], list[str]]]:
		"""Re-read the config files whose stamp changed (all with ``force``); (site, reasons before,
		after) for each site whose pause state changed."""
		if not self.bench_path:
			return []
		with self._files_lock:
			return self._check_files(force)

	def _check_files(self, force: bool) -> list[tuple[str, list[str], list[str]]]:
		changed_paths = set()
		for path in dict.fromkeys(p for site in self.sites for p in self._paths(site)):
			stamp = self._stamp(path)
			if force or stamp != self._stamps.get(path, ()):
				values = self._read(path)
				if values is None:
					continue  # read again at the next check
				self._stamps[path] = stamp
				if values != self._values.get(path):
					self._values[path] = values
					changed_paths.add(path)
		if not changed_paths:
			return []
		changes = []
		for site in self.sites:
			common, own = self._paths(site)
			if common not in changed_paths and own not in changed_paths:
				continue
			merged = {**self._values.get(common, {}), **self._values.get(own, {})}
			reasons = []
			for flag in CONF_FLAGS:
				if flag_on(merged.get(flag)):
					where = (
						"site_config.json" if flag in self._values.get(own, {}) else "common_site_config.json"
					)
					reasons.append(f"{where}: {flag} is set")
			before = self.reasons(site)
			with self._lock:
				self._conf[site] = reasons
			after = self.reasons(site)
			if before != after:
				changes.append((site, before, after))
		return changes


def announce(ctx, site: str, before: list[str], after: list[str]) -> None:
	"""Log a change of a site's pause state; wake the scheduler when it resumes."""
	if after and not before:
		log_event(
			log,
			logging.WARNING,
			"site_paused",
			site=site,
			reason="; ".join(after),
			action="nothing is enqueued for this site until it resumes",
		)
	elif before and not after:
		log_event(
			log,
			logging.INFO,
			"site_resumed",
			site=site,
			was="; ".join(before),
			action=f"due runs at most misfire_grace ({ctx.config.misfire_grace} s) late run once, older ones are skipped",
		)
		ctx.wake_scheduler(0.0)
	else:
		log_event(log, logging.INFO, "site_pause_reasons", site=site, reason="; ".join(after))


def check_files(ctx, force: bool = False) -> None:
	for site, before, after in ctx.pause.check_files(force):
		announce(ctx, site, before, after)


def apply_site_settings(ctx, site: str) -> None:
	"""Read the site's BTU Configuration (zone, pause) from SQL into the context (raises SqlUnavailable)."""
	settings = ctx.databases[site].site_settings()
	ctx.site_timezones[site] = settings.get("cron_time_zone") or ctx.config.default_timezone
	change = ctx.pause.set_configuration(site, flag_on(settings.get("pause_all_schedules")))
	if change is not None:
		announce(ctx, site, *change)


class PauseWatcher:
	"""The fifth activity: every CHECK_SECONDS, the config files' stamps."""

	def __init__(self, ctx) -> None:
		self.ctx = ctx

	def run(self) -> None:
		check_files(self.ctx, force=True)
		while not self.ctx.stop.wait(CHECK_SECONDS):
			check_files(self.ctx)
