"""Read BTU schedules from a site's MariaDB database (parameterised queries only)."""

from __future__ import annotations

import threading
from typing import Any

import pymysql
import pymysql.cursors

from .config import SiteConfig

SCHEDULE_COLUMNS = """
    s.name, s.enabled, s.task, s.queue_name, s.run_frequency, s.minute, s.hour, s.day_of_week,
    s.day_of_month, s.month, s.cron_string, s.cron_timezone, s.argument_overrides, s.run_at, s.overlap_policy,
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
SELECT_HAS_BTU = (
	"SELECT COUNT(*) AS n FROM information_schema.tables "
	"WHERE table_schema = DATABASE() AND table_name = 'tabBTU Task Schedule'"
)


class SqlUnavailable(Exception):
	"""The site's database cannot be reached or queried right now."""


UNKNOWN_COLUMN = 1054


def _describe(exc: pymysql.MySQLError) -> str:
	text = f"{type(exc).__name__}: {exc}"
	if exc.args and exc.args[0] == UNKNOWN_COLUMN:
		# A daemon newer than the site's tables (BTU updated, the site not migrated yet).
		text += "; the site's BTU tables are older than this daemon: run `bench --site <site> migrate`"
	return text


class SiteDatabase:
	"""One site's database; a connection per thread, reopened after any failure."""

	def __init__(self, site: SiteConfig, connect_timeout: float = 5.0, read_timeout: float = 30.0) -> None:
		self.site = site
		self.connect_timeout = connect_timeout
		self.read_timeout = read_timeout
		self._local = threading.local()

	def _connection(self) -> pymysql.connections.Connection:
		conn = getattr(self._local, "conn", None)
		if conn is None:
			kwargs: dict[str, Any] = dict(
				user=self.site.db_user,
				password=self.site.db_password,
				database=self.site.db_name,
				connect_timeout=self.connect_timeout,
				read_timeout=self.read_timeout,
				write_timeout=self.read_timeout,
				autocommit=True,
				charset="utf8mb4",
				cursorclass=pymysql.cursors.DictCursor,
			)
			if self.site.db_socket:
				kwargs["unix_socket"] = self.site.db_socket
			else:
				kwargs.update(host=self.site.db_host, port=self.site.db_port)
			conn = pymysql.connect(**kwargs)
			self._local.conn = conn
		return conn

	def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
		try:
			conn = self._connection()
			with conn.cursor() as cur:
				cur.execute(sql, args)
				return list(cur.fetchall())
		except pymysql.MySQLError as exc:
			self.close()
			raise SqlUnavailable(_describe(exc)) from exc
		except OSError as exc:
			self.close()
			raise SqlUnavailable(str(exc)) from exc

	def fetch_schedule(self, name: str) -> dict[str, Any] | None:
		rows = self._query(SELECT_ONE, (name,))
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
		return found

	def iter_all_schedules(self, chunk: int = 1000):
		"""Every schedule with its task, streamed from one query (bounded memory)."""
		try:
			conn = self._connection()
			with conn.cursor(pymysql.cursors.SSDictCursor) as cur:
				cur.execute(SELECT_ALL)
				while True:
					rows = cur.fetchmany(chunk)
					if not rows:
						return
					yield from rows
		except pymysql.MySQLError as exc:
			self.close()
			raise SqlUnavailable(_describe(exc)) from exc
		except OSError as exc:
			self.close()
			raise SqlUnavailable(str(exc)) from exc

	def has_btu(self) -> bool:
		"""Whether BTU is installed in this site (its schedule table exists)."""
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

	def close(self) -> None:
		conn = getattr(self._local, "conn", None)
		self._local.conn = None
		if conn is not None:
			try:
				conn.close()
			except Exception:  # noqa: BLE001 - already broken
				pass
