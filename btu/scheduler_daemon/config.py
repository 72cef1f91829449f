"""Daemon configuration: bench discovery < TOML file < BTU_* environment < command line.

Every bad or missing value raises ConfigError with one line naming the key, where it
came from and what was expected. Nothing here imports frappe.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

try:
	import tomllib
except ModuleNotFoundError:  # Python 3.10 (Frappe v15 supports it): the same parser, from PyPI
	import tomli as tomllib

from btu.contracts.protocol import DEFAULT_SOCKET_PATH, MAX_SOCKET_PATH, default_socket_path
from btu.contracts.schedule_rules import TimeZoneError, validate_timezone

JOB_MODES = ("frappe", "plain")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
	"""A configuration problem; str() is one line naming the key and its source."""


@dataclass(frozen=True)
class SiteConfig:
	name: str
	db_name: str
	db_user: str
	db_password: str = ""
	db_host: str = "127.0.0.1"
	db_port: int = 3306
	db_socket: str | None = None
	redis_url: str | None = None  # None: the daemon's redis_url


@dataclass(frozen=True)
class DaemonConfig:
	sites: tuple[SiteConfig, ...]
	redis_url: str = "redis://127.0.0.1:6379/0"
	redis_username: str | None = None
	redis_password: str | None = None
	bench_path: str | None = None
	bench_id: str = "btu"
	socket_path: str = DEFAULT_SOCKET_PATH
	socket_group: str | None = None
	job_mode: str = "plain"
	queue_prefix: str = ""
	key_prefix: str = "btu"
	full_refresh_interval: int = 180
	misfire_grace: int = 3600
	prepare_ahead: int = 1  # s: a fire time's runs are prepared at least this long before it (0: never)
	lease_ttl: int = 10
	default_timezone: str = "UTC"
	job_user: str = "Administrator"
	result_ttl: int = 600
	failure_ttl: int = 7 * 24 * 3600
	log_level: str = "INFO"
	metrics_port: int | None = None
	metrics_host: str = "127.0.0.1"
	max_db_connections: int = 8  # bench-wide: database connections the daemon holds at most (sql.py)
	sources: tuple[str, ...] = field(default_factory=tuple)
	# The bench's sites are found again at every full refresh (sites.py): the --site / BTU_SITES
	# selection (None: every site of the bench), the sites a TOML file adds to the bench's, and the
	# bench sites skipped because their configuration is broken: (site, why).
	site_selection: tuple[str, ...] | None = None
	extra_sites: tuple[SiteConfig, ...] = ()
	skipped_sites: tuple[tuple[str, str], ...] = ()

	def site(self, name: str) -> SiteConfig | None:
		for site in self.sites:
			if site.name == name:
				return site
		return None

	def redacted(self) -> dict[str, Any]:
		"""The configuration as a dict with every secret masked (for logs and check-config)."""

		def mask_url(url: str | None) -> str | None:
			if not url:
				return url
			parsed = urlparse(url)
			if parsed.password:
				return url.replace(f":{parsed.password}@", ":***@")
			return url

		hidden = ("sites", "sources", "extra_sites", "site_selection", "skipped_sites")
		data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in hidden}
		data["redis_url"] = mask_url(self.redis_url)
		data["redis_password"] = "***" if self.redis_password else None
		data["sites"] = [
			{
				**site.__dict__,
				"db_password": "***" if site.db_password else "",
				"redis_url": mask_url(site.redis_url),
			}
			for site in self.sites
		]
		data["sources"] = list(self.sources)
		if self.skipped_sites:
			data["skipped_sites"] = {name: why for name, why in self.skipped_sites}
		return data


# --- value checkers: each returns the clean value or raises ValueError(expected) ---------------


def _str(value: Any) -> str:
	if not isinstance(value, str):
		raise ValueError("a string")
	return value


def _nonempty(value: Any) -> str:
	if not isinstance(value, str) or not value.strip():
		raise ValueError("a non-empty string")
	return value.strip()


def _int_range(low: int, high: int) -> Callable[[Any], int]:
	def check(value: Any) -> int:
		if isinstance(value, bool):
			raise ValueError(f"a whole number from {low} to {high}")
		if isinstance(value, str) and value.strip().lstrip("-").isdigit():
			value = int(value.strip())
		if not isinstance(value, int) or not low <= value <= high:
			raise ValueError(f"a whole number from {low} to {high}")
		return value

	return check


def _bool(value: Any) -> bool:
	if isinstance(value, bool):
		return value
	if isinstance(value, int) and value in (0, 1):
		return bool(value)
	if isinstance(value, str) and value.strip().lower() in (
		"1",
		"0",
		"true",
		"false",
		"yes",
		"no",
		"on",
		"off",
	):
		return value.strip().lower() in ("1", "true", "yes", "on")
	raise ValueError("true or false")


def _choice(options: tuple[str, ...], upper: bool = False) -> Callable[[Any], str]:
	def check(value: Any) -> str:
		text = value.strip() if isinstance(value, str) else value
		if isinstance(text, str) and upper:
			text = text.upper()
		if text not in options:
			raise ValueError("one of " + ", ".join(options))
		return text

	return check


def _redis_url(value: Any) -> str:
	if not isinstance(value, str) or urlparse(value.strip()).scheme not in ("redis", "rediss", "unix"):
		raise ValueError("a Redis URL such as redis://127.0.0.1:6379/0")
	return value.strip()


def _host(value: Any) -> str:
	"""An address to listen on: an IPv4/IPv6 literal (0.0.0.0 and :: = every interface) or a host name."""
	text = value.strip() if isinstance(value, str) else None
	if text:
		try:
			ipaddress.ip_address(text)
			return text
		except ValueError:
			if len(text) <= 253 and all(
				label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
				for label in text.split(".")
			):
				return text
	raise ValueError("an IP address (127.0.0.1, 0.0.0.0 for every interface, ::) or a host name")


def _timezone(value: Any) -> str:
	try:
		validate_timezone(value if isinstance(value, str) else "")
	except TimeZoneError:
		raise ValueError("an IANA time zone name such as UTC or Europe/Paris") from None
	return value.strip()


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
	def wrapped(value: Any) -> Any:
		if value is None or value == "":
			return None
		return check(value)

	return wrapped


# Top-level keys: name -> checker. These are also the BTU_<NAME> environment variables.
DAEMON_KEYS: dict[str, Callable[[Any], Any]] = {
	"redis_url": _redis_url,
	"redis_username": _optional(_str),
	"redis_password": _optional(_str),
	"bench_path": _optional(_nonempty),
	"bench_id": _nonempty,
	"socket_path": _nonempty,
	"socket_group": _optional(_nonempty),
	"job_mode": _choice(JOB_MODES),
	"queue_prefix": _str,
	"key_prefix": _nonempty,
	"full_refresh_interval": _int_range(1, 7 * 24 * 3600),
	"misfire_grace": _int_range(0, 30 * 24 * 3600),
	"prepare_ahead": _int_range(0, 120),
	"lease_ttl": _int_range(2, 3600),
	"default_timezone": _timezone,
	"job_user": _nonempty,
	"result_ttl": _int_range(-1, 365 * 24 * 3600),
	"failure_ttl": _int_range(-1, 365 * 24 * 3600),
	"log_level": _choice(LOG_LEVELS, upper=True),
	"metrics_port": _optional(_int_range(1, 65535)),
	"metrics_host": _host,
	# At least 3: the refiller, the consumer and the prober (sql_gate.py) may each hold one at once.
	"max_db_connections": _int_range(3, 1000),
}
SITE_KEYS: dict[str, Callable[[Any], Any]] = {
	"db_name": _nonempty,
	"db_user": _nonempty,
	"db_password": _str,
	"db_host": _nonempty,
	"db_port": _int_range(1, 65535),
	"db_socket": _optional(_nonempty),
	"redis_url": _optional(_redis_url),
}
# Key names of the original (Rust) BTU daemon's TOML file, accepted as aliases.
ORIGINAL_TOML_KEYS: dict[str, str] = {
	"full_refresh_internal_secs": "full_refresh_interval",
	"time_zone_string": "default_timezone",
	"tracing_level": "log_level",
	"socket_file_group_owner": "socket_group",
}
ORIGINAL_SITE_KEYS: dict[str, str] = {
	"mysql_user": "db_user",
	"mysql_password": "db_password",
	"mysql_host": "db_host",
	"mysql_port": "db_port",
	"mysql_database": "db_name",
}
IGNORED_ORIGINAL_KEYS = {
	"name",
	"environment_name",
	"scheduler_polling_interval",
	"startup_without_database_connections",
	"webserver_ip",
	"webserver_port",
	"webserver_token",
	"webserver_host_header",
	"slack_webhook_host",
	"slack_webhook_url",
	"email_address_from",
	"email_host_name",
	"email_host_port",
	"email_account_name",
	"email_account_password",
	"email_token",
	"email_addresses",
	"email_on_level",
	"email_when_queuing",
	"max_seconds_between_updates",
}
# The original daemon's Redis: rq_host + rq_port, turned into redis_url (unless redis_url is given too).
ORIGINAL_REDIS_KEYS = ("rq_host", "rq_port")


def _check(checks: dict[str, Callable[[Any], Any]], key: str, value: Any, source: str) -> Any:
	try:
		return checks[key](value)
	except ValueError as exc:
		shown = "(hidden)" if "password" in key else repr(value)
		raise ConfigError(f"{source}: key '{key}' is {shown}; expected {exc}.") from None


def _read_json(path: str) -> dict[str, Any]:
	try:
		with open(path, encoding="utf-8") as handle:
			data = json.load(handle)
	except FileNotFoundError:
		raise ConfigError(f"{path}: file not found.") from None
	except json.JSONDecodeError as exc:
		raise ConfigError(
			f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
		) from None
	except OSError as exc:
		raise ConfigError(f"{path}: cannot read ({exc.strerror}).") from None
	if not isinstance(data, dict):
		raise ConfigError(f"{path}: expected a JSON object at the top level.")
	return data


# Daemon settings a bench may set in sites/common_site_config.json, as btu_<key>.
BENCH_BTU_KEYS = (
	"btu_socket_path",
	"btu_full_refresh_interval",
	"btu_misfire_grace",
	"btu_prepare_ahead",
	"btu_socket_group",
	"btu_metrics_port",
	"btu_metrics_host",
	"btu_log_level",
	"btu_max_db_connections",
)


def frappe_bench_id(bench_path: str, common: dict[str, Any]) -> str:
	"""Frappe v15's bench id: ``bench_id`` from common_site_config, else the bench path with '/' -> '-'."""
	configured = common.get("bench_id")
	if configured:
		return str(configured)
	# Frappe derives it from the bench's real path (get_bench_path), symlinks resolved: so must we,
	# or a bench reached through a symlink gets its jobs in queues no worker reads.
	return os.path.realpath(bench_path).strip("/").replace("/", "-")


def is_bench(path: str) -> bool:
	return os.path.isdir(os.path.join(path, "sites")) and os.path.isdir(os.path.join(path, "apps"))


def discover_bench(
	bench_path: str, site_names: list[str] | None, missing_is_error: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str], list[tuple[str, str]]]:
	"""Read a bench's common and site configs; return (daemon values, site dicts, files read, sites
	skipped). A site whose site_config.json cannot be used is skipped with the reason (one broken
	site never stops the others); a site named in ``site_names`` that does not exist is an error
	unless ``missing_is_error`` is false (then it is skipped too: a site dropped while running)."""
	bench_path = os.path.realpath(bench_path)
	sites_dir = os.path.join(bench_path, "sites")
	if not os.path.isdir(sites_dir):
		raise ConfigError(f"{bench_path}: not a bench (no 'sites' folder); pass --bench with a bench path.")
	common_path = os.path.join(sites_dir, "common_site_config.json")
	common = _read_json(common_path) if os.path.exists(common_path) else {}
	files = [common_path] if common else []
	values: dict[str, Any] = {
		"bench_path": bench_path,
		"bench_id": frappe_bench_id(bench_path, common),
		"socket_path": default_socket_path(bench_path),
		"job_mode": "frappe",
	}
	if "redis_queue" in common:
		values["redis_url"] = _check(
			DAEMON_KEYS, "redis_url", common["redis_queue"], f"{common_path} (redis_queue)"
		)
	if _bool(common.get("use_rq_auth", False)):
		values["redis_username"] = common.get("rq_username") or values["bench_id"]
		if not common.get("rq_password"):
			raise ConfigError(
				f"{common_path}: key 'rq_password' is missing; expected it because use_rq_auth is set."
			)
		values["redis_password"] = common["rq_password"]
	# The TTLs Frappe v15 gives its own jobs (frappe.utils.background_jobs.enqueue).
	for frappe_key, key in (("rq_results_ttl", "result_ttl"), ("rq_job_failure_ttl", "failure_ttl")):
		if common.get(frappe_key):
			values[key] = _check(DAEMON_KEYS, key, common[frappe_key], f"{common_path} ({frappe_key})")
	for key in BENCH_BTU_KEYS:
		if key in common:
			values[key[len("btu_") :]] = common[key]
	if site_names is None:
		site_names = sorted(
			entry
			for entry in os.listdir(sites_dir)
			if os.path.isfile(os.path.join(sites_dir, entry, "site_config.json"))
		)
	sites = []
	skipped: list[tuple[str, str]] = []
	for name in site_names:
		path = os.path.join(sites_dir, name, "site_config.json")
		if not os.path.exists(path):
			message = f"{path}: file not found; site '{name}' does not exist in bench {bench_path}."
			if missing_is_error:
				raise ConfigError(message)
			skipped.append((name, message))
			continue
		try:
			site_conf = {**common, **_read_json(path)}
			if not site_conf.get("db_name"):
				raise ConfigError(f"{path}: key 'db_name' is missing; expected the site's database name.")
		except ConfigError as exc:
			skipped.append((name, str(exc)))
			continue
		files.append(path)
		site: dict[str, Any] = {
			"name": name,
			"db_name": site_conf["db_name"],
			"db_user": site_conf.get("db_user") or site_conf["db_name"],
			"db_password": site_conf.get("db_password", ""),
			"db_host": site_conf.get("db_host") or "127.0.0.1",
			"db_port": site_conf.get("db_port") or 3306,
			"_source": path,
			"_bench": True,
		}
		if site_conf.get("redis_queue") and site_conf.get("redis_queue") != common.get("redis_queue"):
			site["redis_url"] = site_conf["redis_queue"]
		sites.append(site)
	return values, sites, files, skipped


def bench_sites(config: DaemonConfig) -> tuple[list[SiteConfig], list[tuple[str, str]]]:
	"""The sites to serve now, found again in the bench (plus the TOML file's own sites), and the
	bench sites skipped because their configuration is broken or gone: (site, why)."""
	if not config.bench_path:
		return list(config.sites), []
	selection = list(config.site_selection) if config.site_selection is not None else None
	_values, raw_sites, _files, skipped = discover_bench(config.bench_path, selection, missing_is_error=False)
	sites: list[SiteConfig] = []
	for raw in raw_sites:
		try:
			sites.append(_build_site(dict(raw), {}))
		except ConfigError as exc:
			skipped.append((raw["name"], str(exc)))
	bench_names = {site.name for site in sites}
	sites += [site for site in config.extra_sites if site.name not in bench_names]
	return sites, skipped


def _read_toml(path: str) -> dict[str, Any]:
	try:
		with open(path, "rb") as handle:
			return tomllib.load(handle)
	except FileNotFoundError:
		raise ConfigError(f"{path}: file not found.") from None
	except tomllib.TOMLDecodeError as exc:
		raise ConfigError(f"{path}: invalid TOML: {exc}.") from None
	except OSError as exc:
		raise ConfigError(f"{path}: cannot read ({exc.strerror}).") from None


def _toml_values(data: dict[str, Any], path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
	values: dict[str, Any] = {}
	flat_site: dict[str, Any] = {}
	sites: list[dict[str, Any]] = []
	for key, value in data.items():
		if key == "sites":
			if not isinstance(value, dict):
				raise ConfigError(f"{path}: key 'sites' must be a table of [sites.\"<site name>\"] sections.")
			for name, site in value.items():
				if not isinstance(site, dict):
					raise ConfigError(f"{path}: key 'sites.{name}' must be a table.")
				sites.append(
					{
						"name": name,
						**{ORIGINAL_SITE_KEYS.get(k, k): v for k, v in site.items()},
						"_source": path,
					}
				)
		elif key in ORIGINAL_SITE_KEYS or key in SITE_KEYS and key != "redis_url":
			flat_site[ORIGINAL_SITE_KEYS.get(key, key)] = value
		elif key == "site_name":
			flat_site["name"] = value
		elif key in ORIGINAL_TOML_KEYS or key in DAEMON_KEYS:
			values[ORIGINAL_TOML_KEYS.get(key, key)] = value
		elif key in ORIGINAL_REDIS_KEYS:
			continue
		elif key not in IGNORED_ORIGINAL_KEYS:
			raise ConfigError(
				f"{path}: key '{key}' is unknown; expected one of {', '.join(sorted(DAEMON_KEYS))}, sites."
			)
	if any(key in data for key in ORIGINAL_REDIS_KEYS) and "redis_url" not in data:
		host = _check({"rq_host": _nonempty}, "rq_host", data.get("rq_host", "127.0.0.1"), path)
		port = _check({"rq_port": _int_range(1, 65535)}, "rq_port", data.get("rq_port", 6379), path)
		values["redis_url"] = f"redis://{host}:{port}/0"
	if flat_site:
		flat_site.setdefault("name", "default")
		flat_site["_source"] = path
		sites.append(flat_site)
	return values, sites


def _env_values(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
	values = {key: environ[f"BTU_{key.upper()}"] for key in DAEMON_KEYS if f"BTU_{key.upper()}" in environ}
	site_values = {
		key: environ[f"BTU_{key.upper()}"]
		for key in SITE_KEYS
		if key != "redis_url" and f"BTU_{key.upper()}" in environ
	}
	return values, site_values


def _build_site(raw: dict[str, Any], env_site: dict[str, Any]) -> SiteConfig:
	raw.pop("_bench", None)
	source = raw.pop("_source", "configuration")
	name = raw.pop("name")
	for key, value in env_site.items():
		raw[key] = value
	if "db_name" not in raw:
		raise ConfigError(
			f"{source}: key 'db_name' is missing for site '{name}'; expected the site's database name."
		)
	raw.setdefault("db_user", raw["db_name"])
	unknown = set(raw) - set(SITE_KEYS)
	if unknown:
		raise ConfigError(
			f"{source}: key '{sorted(unknown)[0]}' of site '{name}' is unknown; expected one of "
			+ ", ".join(sorted(SITE_KEYS))
			+ "."
		)
	clean = {}
	for key, value in raw.items():
		where = f"environment variable BTU_{key.upper()}" if key in env_site else source
		clean[key] = _check(SITE_KEYS, key, value, where)
	return SiteConfig(name=str(name), **clean)


def load_config(
	bench_path: str | None = None,
	site_names: list[str] | None = None,
	config_file: str | None = None,
	environ: dict[str, str] | None = None,
	overrides: dict[str, Any] | None = None,
) -> DaemonConfig:
	"""Assemble the configuration from all sources, lowest precedence first."""
	environ = dict(os.environ if environ is None else environ)
	values: dict[str, Any] = {}
	value_source: dict[str, str] = {}
	raw_sites: list[dict[str, Any]] = []
	sources: list[str] = []

	def take(new: dict[str, Any], source: str) -> None:
		for key, value in new.items():
			values[key] = value
			value_source[key] = source

	bench_path = bench_path or environ.get("BTU_BENCH_PATH") or None
	if site_names is None and environ.get("BTU_SITES"):
		site_names = [s.strip() for s in environ["BTU_SITES"].split(",") if s.strip()]
	skipped: list[tuple[str, str]] = []
	if bench_path:
		bench_values, raw_sites, files, skipped = discover_bench(bench_path, site_names)
		take(bench_values, os.path.join(os.path.abspath(bench_path), "sites", "common_site_config.json"))
		sources.extend(files)
	config_file = config_file or environ.get("BTU_CONFIG") or None
	if config_file:
		toml_values, toml_sites = _toml_values(_read_toml(config_file), config_file)
		take(toml_values, config_file)
		if toml_sites:
			raw_sites = toml_sites if not bench_path else raw_sites + toml_sites
		sources.append(config_file)
	env_values, env_site = _env_values(environ)
	for key, value in env_values.items():
		take({key: value}, f"environment variable BTU_{key.upper()}")
	if env_values or env_site:
		sources.append("environment")
	if env_site and not raw_sites:
		raw_sites = [{"name": environ.get("BTU_SITE_NAME", "default"), "_source": "environment"}]
	for key, value in (overrides or {}).items():
		if value is not None:
			take({key: value}, f"command-line option --{key.replace('_', '-')}")

	clean: dict[str, Any] = {}
	for key, value in values.items():
		if key not in DAEMON_KEYS:
			raise ConfigError(f"{value_source[key]}: key '{key}' is unknown.")
		clean[key] = _check(DAEMON_KEYS, key, value, value_source[key])
	if "queue_prefix" not in clean and clean.get("job_mode", "frappe" if bench_path else "plain") == "frappe":
		clean["queue_prefix"] = f"{clean.get('bench_id', 'btu')}:"
	if site_names is not None and not bench_path:
		raw_sites = [s for s in raw_sites if s["name"] in site_names]
		missing = set(site_names) - {s["name"] for s in raw_sites}
		if missing:
			raise ConfigError(
				f"command line: site '{sorted(missing)[0]}' is not defined in the configuration."
			)
	if env_site and len(raw_sites) > 1:
		raise ConfigError(
			"environment: BTU_DB_* variables are ambiguous with several sites; use a TOML [sites] table."
		)
	built: list[SiteConfig] = []
	extra: list[SiteConfig] = []
	for raw in raw_sites:
		from_bench = raw.get("_bench", False)
		try:
			site = _build_site(dict(raw), env_site)
		except ConfigError as exc:
			if not from_bench:
				raise
			skipped.append((raw["name"], str(exc)))  # one broken site of a bench never stops the others
			continue
		built.append(site)
		if not from_bench:
			extra.append(site)
	sites = tuple(built)
	if not sites and skipped:
		raise ConfigError(f"{skipped[0][1]} (no other site of the bench can be served)")
	if not sites:
		where = (
			f"{config_file}: key 'sites' is missing" if config_file and not bench_path else "configuration"
		)
		raise ConfigError(
			f"{where}: no site defined; expected --bench PATH (a Frappe bench), a TOML file with "
			'[sites."<name>"] db_name = ..., or BTU_DB_NAME.'
		)
	config = DaemonConfig(
		sites=sites,
		sources=tuple(sources),
		site_selection=tuple(site_names) if site_names is not None else None,
		extra_sites=tuple(extra) if bench_path else (),
		skipped_sites=tuple(skipped),
		**clean,
	)
	if len(config.socket_path.encode()) > MAX_SOCKET_PATH:
		where = value_source.get("socket_path", "default socket path")
		raise ConfigError(
			f"{where}: key 'socket_path' is {len(config.socket_path.encode())} bytes long; expected at most "
			f"{MAX_SOCKET_PATH} bytes (a Unix socket path limit): set a shorter socket_path."
		)
	return config


SECRET_KEY_WORDS = ("password", "passwd", "secret", "token", "encryption_key", "api_key")


def secrets_in(data: Any, path: str = "") -> list[str]:
	"""Dotted keys of ``data`` (parsed JSON or TOML) that hold a secret: a non-empty value under a
	secret-sounding key, or a URL with a password in it."""
	found: list[str] = []
	if isinstance(data, dict):
		for key, value in data.items():
			where = f"{path}.{key}" if path else str(key)
			if isinstance(value, (dict, list)):
				found += secrets_in(value, where)
			elif value not in (None, "") and any(word in str(key).lower() for word in SECRET_KEY_WORDS):
				found.append(where)
			elif isinstance(value, str) and "://" in value and urlparse(value).password:
				found.append(where)
	elif isinstance(data, list):
		for index, value in enumerate(data):
			found += secrets_in(value, f"{path}[{index}]")
	return found


def _parse_config_file(path: str) -> Any:
	with open(path, "rb") as handle:
		raw = handle.read()
	if path.endswith(".json"):
		return json.loads(raw)
	return tomllib.loads(raw.decode("utf-8"))


def insecure_file_warning(path: str) -> str | None:
	"""A warning when a configuration file that holds a secret is readable by every user."""
	try:
		mode = os.stat(path).st_mode
	except OSError:
		return None
	if not mode & 0o004:
		return None
	try:
		secrets = secrets_in(_parse_config_file(path))
	except (OSError, ValueError, tomllib.TOMLDecodeError):
		return None  # unreadable or unparsable: load_config reports that itself
	if not secrets:
		return None
	return (
		f"{path} is readable by every user (mode {oct(mode & 0o777)}) and holds secrets "
		f"({', '.join(secrets)}): chmod 600 it (or 640 with the daemon's group)."
	)
