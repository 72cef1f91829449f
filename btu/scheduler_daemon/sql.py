"""Read BTU schedules from a site's MariaDB database (parameterised queries only)."""

from __future__ import annotations

import datetime
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import COMMAND

from btu.contracts.calendars import (
	BTU_HOLIDAY_LIST,
	HOLIDAY_TABLES,
	date_window,
	normalize_list_doctype,
	parse_dates,
)

from .config import SiteConfig

SCHEDULE_COLUMNS = """
    s.name, s.enabled, s.task, s.queue_name, s.run_frequency, s.minute, s.hour, s.day_of_week,
    s.day_of_month, s.month, s.cron_string, s.cron_timezone, s.argument_overrides, s.run_at, s.overlap_policy,
    s.holiday_list_doctype, s.holiday_list, s.on_holiday, s.jitter_seconds,
    t.name AS task_found, t.docstatus AS task_docstatus, t.function_string, t.arguments,
    t.max_task_duration, t.queue_name AS task_queue_name, t.desc_short
"""
SCHEDULE_FROM = "`tabBTU Task Schedule` s LEFT JOIN `tabBTU Task` t ON t.name = s.task"
SELECT_ONE = f"SELECT {SCHEDULE_COLUMNS} FROM {SCHEDULE_FROM} WHERE s.name = %s"
SELECT_MANY = f"SELECT {SCHEDULE_COLUMNS} FROM {SCHEDULE_FROM} WHERE s.name IN ({{placeholders}})"
MANY_CHUNK = 500  # names per IN (...) query
SELECT_ALL = f"SELECT {SCHEDULE_COLUMNS} FROM {SCHEDULE_FROM} ORDER BY s.name"
SELECT_TIMEZONE = "SELECT value FROM `tabSingles` WHERE doctype = %s AND field = %s"
SETTINGS = ("cron_time_zone", "pause_all_schedules")
SELECT_SETTINGS = "SELECT field, value FROM `tabSingles` WHERE doctype = %s AND field IN (%s, %s)"
SELECT_COUNT = "SELECT COUNT(*) AS n FROM `tabBTU Task Schedule`"
SELECT_LISTS_IN_USE = (
	"SELECT DISTINCT holiday_list_doctype, holiday_list FROM `tabBTU Task Schedule` "
	"WHERE enabled = 1 AND holiday_list IS NOT NULL AND holiday_list != ''"
)
# {table} is one of calendars.HOLIDAY_TABLES' values (never user input).
SELECT_HOLIDAYS = (
	"SELECT parent, holiday_date FROM `tab{table}` WHERE parenttype = %s AND parent IN ({placeholders}) "
	"AND holiday_date >= %s AND holiday_date < %s"
)
SELECT_LISTS = "SELECT name FROM `tab{doctype}` WHERE name IN ({placeholders})"
SELECT_PROBE = "SELECT 1 FROM `tabBTU Task Schedule` LIMIT 1"
SELECT_HAS_BTU = (
	"SELECT COUNT(*) AS n FROM information_schema.tables "
	"WHERE table_schema = DATABASE() AND table_name = 'tabBTU Task Schedule'"
)


class SqlUnavailable(Exception):
	"""The site's database cannot be reached or queried right now."""


class PoolBusy(SqlUnavailable):
	"""Every connection the daemon may hold is in use for longer than it would wait."""


UNKNOWN_COLUMN = 1054
NO_SUCH_TABLE = 1146
CONNECT_TIMEOUT = 5.0  # s, for the TCP connect and for each read of the handshake and log-in
READ_TIMEOUT = 30.0  # s, for each read of a query's answer once connected
IDLE_SECONDS = 10.0  # a pooled connection unused this long is closed
PING_AFTER = 1.0  # s idle after which a kept connection is pinged before it is used again
POOL_WAIT = 30.0  # s a caller waits for a free connection before giving up (PoolBusy)


def _describe(exc: pymysql.MySQLError) -> str:
	text = f"{type(exc).__name__}: {exc}"
	if exc.args and exc.args[0] == UNKNOWN_COLUMN:
		# A daemon newer than the site's tables (BTU updated, the site not migrated yet).
		text += "; the site's BTU tables are older than this daemon: run `bench --site <site> migrate`"
	return text


class _Connection(pymysql.connections.Connection):
	"""pymysql's connection with the TLS context of its default mode (TLS when the server offers it,
	certificates not verified) built once: pymysql >= 1.1.2 builds it for every connection, loading
	the system's CA store, about 0.1 s of CPU, 50 times the connection itself. With a pool that opens
	connections on demand that is most of a refresh of a thousand sites."""

	_preferred_ctx: Any = None

	def _create_ssl_ctx(self, sslp: Any) -> Any:
		if isinstance(sslp, dict) and not sslp:
			if _Connection._preferred_ctx is None:
				_Connection._preferred_ctx = super()._create_ssl_ctx(sslp)
			return _Connection._preferred_ctx
		return super()._create_ssl_ctx(sslp)


def open_connection(
	site: SiteConfig, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT
) -> pymysql.connections.Connection:
	"""A new connection to the site's database. ``connect_timeout`` bounds the TCP connect *and* each
	read of the handshake: pymysql reads the server's greeting with the read timeout, so a host that
	accepts and never answers would otherwise hold the caller for ``read_timeout`` (or forever)."""
	kwargs: dict[str, Any] = dict(
		user=site.db_user,
		password=site.db_password,
		database=site.db_name,
		connect_timeout=connect_timeout,
		read_timeout=connect_timeout,
		write_timeout=connect_timeout,
		autocommit=True,
		charset="utf8mb4",
		cursorclass=pymysql.cursors.DictCursor,
	)
	if site.db_socket:
		kwargs["unix_socket"] = site.db_socket
	else:
		kwargs.update(host=site.db_host, port=site.db_port)
	conn = _Connection(**kwargs)
	# Connected: queries get their own timeouts (pymysql applies them at the next read / write).
	conn._read_timeout = read_timeout
	conn._write_timeout = read_timeout
	return conn


def _close_quietly(conn: pymysql.connections.Connection, polite: bool = False) -> None:
	"""Close a connection: ``polite`` (an idle, healthy one) tells the server first (COM_QUIT, no
	answer awaited), so that it ends the session at once; a broken one is just dropped."""
	try:
		if polite and conn.open:
			# COM_QUIT, then wait (1 s at most) for the server to close its end: by then the session
			# has left the server's process list, so a connection opened next never overlaps it there.
			sock = conn._sock
			sock.settimeout(1.0)
			sock.sendall(struct.pack("<iB", 1, COMMAND.COM_QUIT))
			while sock.recv(4096):
				pass
		conn._force_close()
	except Exception:  # noqa: BLE001 - already broken
		try:
			conn._force_close()
		except Exception:  # noqa: BLE001
			pass


class ConnectionPool:
	"""The daemon's database connections over every site and thread: at most ``limit`` open at once.

	A connection is opened when a query needs one, handed back after it and kept for the next query
	of the same site (and database user) while it is used; one idle for ``idle_seconds`` is closed
	(``close_idle``, called every second by the prober, and at every hand-back). When all ``limit``
	are open, the longest-idle connection of any site is closed for the new one; when all are busy,
	the caller waits (at most ``POOL_WAIT`` s). ``idle_seconds=0``: close on hand-back (one-off use).
	"""

	def __init__(self, limit: int, idle_seconds: float = IDLE_SECONDS) -> None:
		self.limit = limit
		self.idle_seconds = idle_seconds
		self._condition = threading.Condition()
		self._open = 0  # busy + idle (and being opened)
		self._idle: dict[SiteConfig, list[tuple[pymysql.connections.Connection, float]]] = {}
		self.peak = 0
		self.opened = 0  # connections opened since start

	def stats(self) -> dict[str, int]:
		with self._condition:
			idle = sum(len(found) for found in self._idle.values())
			return {
				"limit": self.limit,
				"open": self._open,
				"idle": idle,
				"peak": self.peak,
				"opened": self.opened,
			}

	@contextmanager
	def connection(
		self,
		site: SiteConfig,
		opener: Callable[[SiteConfig], pymysql.connections.Connection],
		fresh: bool = False,
	) -> Iterator[pymysql.connections.Connection]:
		"""A connection to ``site`` for the caller alone; kept for reuse when the block ends normally,
		closed when it raised (the connection may be mid-answer or broken). ``fresh``: a new
		connection, closed after the block (a health check proves the site accepts a log-in now)."""
		conn = self._take(site, opener, fresh)
		healthy = False
		try:
			yield conn
			healthy = not fresh
		finally:
			self._give_back(site, conn, healthy)

	def _take(
		self,
		site: SiteConfig,
		opener: Callable[[SiteConfig], pymysql.connections.Connection],
		fresh: bool = False,
	) -> pymysql.connections.Connection:
		deadline = time.monotonic() + POOL_WAIT
		while not fresh:
			reused = self._reuse(site)
			if reused is None:
				break
			conn, since = reused
			if time.monotonic() - since < PING_AFTER or self._alive(conn):
				return conn
			self._give_back(site, conn, False)  # closed by the server meanwhile (restart, wait_timeout)
		victim = None
		with self._condition:
			while True:
				idle = None if fresh else self._idle.get(site)
				if idle:
					conn, _since = idle.pop()
					if not idle:
						del self._idle[site]
					return conn
				if self._open < self.limit:
					self._open += 1
					self.peak = max(self.peak, self._open)
					break
				victim = self._pop_oldest_idle()
				if victim is not None:
					break  # its slot goes to the new connection
				remaining = deadline - time.monotonic()
				if remaining <= 0:
					raise PoolBusy(
						f"all {self.limit} database connections of the daemon (max_db_connections) "
						f"stayed busy for {POOL_WAIT:g} s"
					)
				self._condition.wait(remaining)
		if victim is not None:
			_close_quietly(victim, polite=True)
		try:
			conn = opener(site)
		except BaseException:
			with self._condition:
				self._open -= 1
				self._condition.notify()
			raise
		with self._condition:
			self.opened += 1
		return conn

	def _reuse(self, site: SiteConfig) -> tuple[pymysql.connections.Connection, float] | None:
		with self._condition:
			idle = self._idle.get(site)
			if not idle:
				return None
			found = idle.pop()
			if not idle:
				del self._idle[site]
			return found

	@staticmethod
	def _alive(conn: pymysql.connections.Connection) -> bool:
		try:
			conn.ping(reconnect=False)
			return True
		except (pymysql.MySQLError, OSError):
			return False

	def _pop_oldest_idle(self) -> pymysql.connections.Connection | None:
		oldest: tuple[float, SiteConfig] | None = None
		for key, found in self._idle.items():
			since = found[0][1]
			if oldest is None or since < oldest[0]:
				oldest = (since, key)
		if oldest is None:
			return None
		found = self._idle[oldest[1]]
		conn, _since = found.pop(0)
		if not found:
			del self._idle[oldest[1]]
		return conn

	def _give_back(self, site: SiteConfig, conn: pymysql.connections.Connection, healthy: bool) -> None:
		if healthy and self.idle_seconds > 0 and conn.open:
			with self._condition:
				self._idle.setdefault(site, []).append((conn, time.monotonic()))
				self._condition.notify()
			self.close_idle()
			return
		_close_quietly(conn)
		with self._condition:
			self._open -= 1
			self._condition.notify()

	def close_idle(self, older_than: float | None = None) -> int:
		"""Close the connections idle for ``idle_seconds`` (or ``older_than``); how many were closed."""
		limit = self.idle_seconds if older_than is None else older_than
		cutoff = time.monotonic() - limit
		closing = []
		with self._condition:
			for key in list(self._idle):
				found = self._idle[key]
				keep = [(conn, since) for conn, since in found if since > cutoff]
				closing += [conn for conn, since in found if since <= cutoff]
				if keep:
					self._idle[key] = keep
				else:
					del self._idle[key]
			self._open -= len(closing)
			if closing:
				self._condition.notify_all()
		for conn in closing:
			_close_quietly(conn, polite=True)
		return len(closing)

	def forget(self, site_name: str) -> None:
		"""Close the idle connections of a site (removed from the bench, or its configuration changed)."""
		closing = []
		with self._condition:
			for key in [key for key in self._idle if key.name == site_name]:
				closing += [conn for conn, _since in self._idle.pop(key)]
			self._open -= len(closing)
			if closing:
				self._condition.notify_all()
		for conn in closing:
			_close_quietly(conn, polite=True)

	def close(self) -> None:
		self.close_idle(older_than=-1.0)


ONE_OFF = ConnectionPool(limit=4, idle_seconds=0)  # the command line's: a connection per query


class SiteDatabase:
	"""One site's database, queried through the daemon's bench-wide ConnectionPool."""

	def __init__(
		self,
		site: SiteConfig,
		connect_timeout: float = CONNECT_TIMEOUT,
		read_timeout: float = READ_TIMEOUT,
		pool: ConnectionPool | None = None,
	) -> None:
		self.site = site
		self.connect_timeout = connect_timeout
		self.read_timeout = read_timeout
		self.pool = pool or ONE_OFF

	def _open(self, site: SiteConfig) -> pymysql.connections.Connection:
		return open_connection(site, self.connect_timeout, self.read_timeout)

	def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
		try:
			with self.pool.connection(self.site, self._open) as conn:
				with conn.cursor() as cur:
					cur.execute(sql, args)
					return list(cur.fetchall())
		except pymysql.MySQLError as exc:
			raise SqlUnavailable(_describe(exc)) from exc
		except OSError as exc:
			raise SqlUnavailable(str(exc)) from exc

	def fetch_schedule(self, name: str) -> dict[str, Any] | None:
		rows = self._query(SELECT_ONE, (name,))
		if rows:
			self.attach_holidays(rows)
		return rows[0] if rows else None

	def fetch_schedules(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
		"""The row of each name (None: no such schedule), read with one query per MANY_CHUNK names;
		the same answer per name as fetch_schedule."""
		found: dict[str, dict[str, Any] | None] = {}
		unique = list(dict.fromkeys(names))
		for start in range(0, len(unique), MANY_CHUNK):
			chunk = unique[start : start + MANY_CHUNK]
			rows = self._query(SELECT_MANY.format(placeholders=", ".join(["%s"] * len(chunk))), tuple(chunk))
			by_name = {row["name"]: row for row in rows}
			for name in chunk:
				found[name] = by_name.pop(name, None)
			if by_name:
				# Rows the column's collation matched to a name spelled otherwise ('ts-1' finds 'TS-1'):
				# read each name found no exact row for alone, as fetch_schedule does (rare).
				for name in chunk:
					if found[name] is None:
						found[name] = self.fetch_schedule(name)
		self.attach_holidays([row for row in found.values() if row is not None])
		return found

	def holidays_of(self, lists: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, ...] | str]:
		"""The dates (ISO, within ``calendars.date_window``) of each (doctype, name) holiday list, or
		why it cannot be used: its DocType is not on this site (ERPNext's Holiday List on a plain
		Frappe site), or no such list exists. One query per doctype (and one for the names)."""
		found: dict[tuple[str, str], tuple[str, ...] | str] = {}
		low, high = date_window(datetime.date.today())
		for doctype in sorted({doctype for doctype, _ in lists}):
			names = sorted(name for kind, name in lists if kind == doctype)
			table = HOLIDAY_TABLES.get(doctype)
			if table is None:
				found.update(
					{(doctype, name): f"{doctype!r} is not a holiday list DocType" for name in names}
				)
				continue
			dates: dict[str, list[Any]] = {name: [] for name in names}
			try:
				for start in range(0, len(names), MANY_CHUNK):
					chunk = names[start : start + MANY_CHUNK]
					marks = ", ".join(["%s"] * len(chunk))
					existing = {
						row["name"]
						for row in self._query(
							SELECT_LISTS.format(doctype=doctype, placeholders=marks), tuple(chunk)
						)
					}
					for name in chunk:
						if name not in existing:
							found[(doctype, name)] = f"its {doctype} {name!r} does not exist"
					query = SELECT_HOLIDAYS.format(table=table, placeholders=marks)
					for row in self._query(query, (doctype, *chunk, low, high)):
						dates[row["parent"]].append(row["holiday_date"])
			except SqlUnavailable as exc:
				if not isinstance(exc.__cause__, pymysql.MySQLError) or exc.__cause__.args[:1] != (
					NO_SUCH_TABLE,
				):
					raise
				found.update(
					{
						(
							doctype,
							name,
						): f"this site has no {doctype} DocType (it comes with ERPNext or HRMS); "
						f"use a {BTU_HOLIDAY_LIST}"
						for name in names
					}
				)
				continue
			for name in names:
				found.setdefault((doctype, name), parse_dates(dates[name]))
		return found

	def attach_holidays(self, rows: list[dict[str, Any]], known: dict | None = None) -> None:
		"""Give each row that follows a holiday list its dates (``holidays``) or the reason they cannot
		be read (``holidays_error``); ``known`` holds lists already read (a refresh reads all first)."""
		wanted = {_list_of(row) for row in rows if (row.get("holiday_list") or "").strip()}
		lists = dict(known or {})
		missing = {key for key in wanted if key not in lists}
		if missing:
			lists.update(self.holidays_of(missing))
		for row in rows:
			if (row.get("holiday_list") or "").strip():
				value = lists[_list_of(row)]
				if isinstance(value, str):
					row["holidays_error"] = value
				else:
					row["holidays"] = value

	def holidays_in_use(self) -> dict[tuple[str, str], tuple[str, ...] | str]:
		"""The dates of every holiday list an enabled schedule of the site follows (a refresh's first read)."""
		lists = {_list_of(row) for row in self._query(SELECT_LISTS_IN_USE)}
		return self.holidays_of(lists) if lists else {}

	def iter_all_schedules(self, chunk: int = 1000):
		"""Every schedule with its task (and its holiday list's dates), streamed from one query
		(bounded memory). The connection is held while the caller iterates; one left unfinished is
		closed, not reused."""
		lists = self.holidays_in_use()
		try:
			with self.pool.connection(self.site, self._open) as conn:
				with conn.cursor(pymysql.cursors.SSDictCursor) as cur:
					cur.execute(SELECT_ALL)
					while True:
						rows = cur.fetchmany(chunk)
						if not rows:
							return
						self.attach_holidays(rows, lists)
						yield from rows
		except pymysql.MySQLError as exc:
			raise SqlUnavailable(_describe(exc)) from exc
		except OSError as exc:
			raise SqlUnavailable(str(exc)) from exc

	def has_btu(self) -> bool:
		"""Whether BTU is installed in this site (its schedule table exists)."""
		if self._query(SELECT_HAS_BTU)[0]["n"]:
			return True
		# Asked again on a new connection: a database dropped under a kept connection looks like one
		# without BTU's tables there; a new connection gets the server's own error (Unknown database).
		self.pool.forget(self.site.name)
		return bool(self._query(SELECT_HAS_BTU)[0]["n"])

	def count_schedules(self) -> int:
		"""How many schedules the site has (the total a full refresh works through)."""
		return int(self._query(SELECT_COUNT)[0]["n"])

	def site_settings(self) -> dict[str, str | None]:
		"""BTU Configuration's values the daemon uses: cron_time_zone, pause_all_schedules."""
		rows = self._query(SELECT_SETTINGS, ("BTU Configuration", *SETTINGS))
		found: dict[str, str | None] = dict.fromkeys(SETTINGS)
		for row in rows:
			value = row["value"]
			found[row["field"]] = value.strip() if isinstance(value, str) and value.strip() else None
		return found

	def configured_timezone(self) -> str | None:
		rows = self._query(SELECT_TIMEZONE, ("BTU Configuration", "cron_time_zone"))
		value = rows[0]["value"] if rows else None
		return value.strip() if isinstance(value, str) and value.strip() else None

	def ping(self) -> None:
		self._query("SELECT 1")

	def probe(self) -> None:
		"""The site answers and has BTU's schedule table (raises SqlUnavailable otherwise)."""
		self._query(SELECT_PROBE)

	def close(self) -> None:
		"""Close this site's idle connections."""
		self.pool.forget(self.site.name)


def _list_of(row: dict[str, Any]) -> tuple[str, str]:
	"""(doctype, name) of the holiday list a schedule row follows (a bad doctype is kept as written:
	the spec reports it)."""
	try:
		doctype = normalize_list_doctype(row.get("holiday_list_doctype"))
	except ValueError:
		doctype = str(row.get("holiday_list_doctype") or "").strip()
	return doctype, (row.get("holiday_list") or "").strip()
