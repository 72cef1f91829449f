"""How ``btu-scheduler`` fails: one line on stderr naming what failed and where, and an exit code
from the table below (README, "Command line"); never a Python traceback for a service that is down.

| code | meaning |
|---|---|
| 0 | done |
| 1 | not done: the daemon does not answer (ping, status, refresh), a check failed (check-config,
|   | status --check), a schedule not found, not runnable, disabled, or already enqueued this second |
| 2 | bad usage, option value or configuration (the line names the option or key) |
| 3 | ``run`` cannot start (another daemon on the socket, the socket path unusable) |
| 4 | Redis or a site's database cannot be reached; nothing was changed: try again when it is up |
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from typing import Any

import redis

from btu.contracts.schedule_rules import TimeZoneError, validate_timezone

from .config import DaemonConfig
from .sql import SqlUnavailable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_START = 3
EXIT_UNREACHABLE = 4

CONFIG_KEY = "btu.config"  # where the loaded configuration waits in click's context meta
TRACEBACK_VARIABLE = "BTU_TRACEBACK"  # set to 1: unexpected errors keep their traceback


def _one_line(text: str) -> str:
	return " ".join(str(text).split())


def _masked(url: str) -> str:
	return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def _redis_urls(config: DaemonConfig | None) -> list[str]:
	if config is None:
		return []
	urls = [config.redis_url] + [site.redis_url for site in config.sites if site.redis_url]
	return [_masked(url) for url in dict.fromkeys(urls)]


def _where_redis(exc: Exception, config: DaemonConfig | None) -> str:
	"""The Redis URL the failure was about: the only one configured, else the one whose host and
	port the error names, else all of them."""
	urls = _redis_urls(config)
	if len(urls) > 1:
		text = str(exc)
		named = [url for url in urls if _host_port(url) and _host_port(url) in text]
		urls = named if len(named) == 1 else urls
	return " or ".join(urls) if urls else "the configured URL"


def _host_port(url: str) -> str:
	match = re.match(r"[a-z+]+://(?:[^@/]*@)?([^/?]+)", url)
	return match.group(1) if match else ""


def _reason(exc: Exception) -> str:
	"""The operating system's words when there are some ('Connection refused'), else the error's."""
	cause = exc.__cause__ or exc.__context__
	if isinstance(cause, OSError) and cause.strerror:
		return cause.strerror
	return _one_line(exc) or type(exc).__name__


def describe_failure(exc: BaseException, config: DaemonConfig | None) -> tuple[int, str] | None:
	"""(exit code, line) for a failure of the machine around the command; None for anything else."""
	if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
		return (
			EXIT_UNREACHABLE,
			f"btu-scheduler: cannot reach Redis at {_where_redis(exc, config)}: {_reason(exc)}",
		)
	if isinstance(exc, redis.exceptions.RedisError):
		return EXIT_FAILED, f"btu-scheduler: Redis at {_where_redis(exc, config)} answered: {_one_line(exc)}"
	if isinstance(exc, SqlUnavailable):
		sites = config.sites if config else ()
		where = (
			f" of site {sites[0].name} ({sites[0].db_name}@{sites[0].db_host}:{sites[0].db_port})"
			if len(sites) == 1
			else ""
		)
		return EXIT_UNREACHABLE, f"btu-scheduler: cannot reach the database{where}: {_one_line(exc)}"
	return None


@functools.lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, list[str]]:
	zones: dict[str, list[str]] = {}
	for name in zoneinfo.available_timezones():
		zones.setdefault(name.casefold(), []).append(name)
	return zones


def resolve_zone(text: str) -> str:
	"""The IANA name of ``text``, whatever its case (``utc`` -> ``UTC``, ``europe/paris`` ->
	``Europe/Paris``); TimeZoneError when it names no zone."""
	try:
		validate_timezone(text)
		return str(text).strip()
	except TimeZoneError:
		matches = _zones_by_folded_name().get(str(text).strip().casefold(), [])
		if len(matches) != 1:
			raise
		return matches[0]


AFTER_EXAMPLES = "2026-12-24T14:00:00Z, 2026-12-24T14:00:00+01:00 or 2026-12-24 14:00 (read in --tz)"


def after_error(value: Any) -> str:
	return f"btu-scheduler: --after {value!r} is not an ISO-8601 date-time; expected for example {AFTER_EXAMPLES}"
