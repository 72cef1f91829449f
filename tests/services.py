"""Real services and processes for the tests: private redis-server / mariadbd, BTU databases,
daemon and rq worker processes. Everything started here is stopped by its own pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import redis

from btu.contracts import protocol
from btu.scheduler_daemon.schema import init_database

REPO = Path(__file__).resolve().parent.parent
MARIADB = dict(
	host=os.environ.get("BTU_TEST_DB_HOST", "127.0.0.1"),
	port=int(os.environ.get("BTU_TEST_DB_PORT", "3306")),
	user=os.environ.get("BTU_TEST_DB_USER", "root"),
	password=os.environ.get("BTU_TEST_DB_PASSWORD", ""),
)


def free_port() -> int:
	with socket.socket() as sock:
		sock.bind(("127.0.0.1", 0))
		return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		value = predicate()
		if value:
			return value
		time.sleep(interval)
	raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def short_tmpdir(prefix: str = "btu-") -> str:
	"""A short folder under /tmp: Unix socket paths must stay under 108 bytes."""
	return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


class Process:
	"""A child process with its output in a log file; stopped by its own pid."""

	def __init__(
		self, args: list[str], log_path: str, env: dict[str, str] | None = None, cwd: str | None = None
	):
		self.args = args
		self.log_path = log_path
		self._log = open(log_path, "ab")
		self.proc = subprocess.Popen(
			args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
		)

	@property
	def pid(self) -> int:
		return self.proc.pid

	def alive(self) -> bool:
		return self.proc.poll() is None

	def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
		if self.proc.poll() is None:
			try:
				os.kill(self.proc.pid, sig)
			except ProcessLookupError:
				pass
			try:
				self.proc.wait(timeout)
			except subprocess.TimeoutExpired:
				os.kill(self.proc.pid, signal.SIGKILL)
				self.proc.wait(5)
		self._log.close()
		return self.proc.returncode

	def kill(self) -> None:
		self.stop(signal.SIGKILL)

	def output(self) -> str:
		if not self._log.closed:
			self._log.flush()
		return Path(self.log_path).read_text(errors="replace")


class RedisServer:
	"""A private redis-server on a free port (keeps nothing on disk)."""

	def __init__(self, workdir: str, port: int | None = None) -> None:
		self.workdir = workdir
		self.port = port or free_port()
		self.process: Process | None = None

	def start(self) -> "RedisServer":
		self.process = Process(
			[
				"redis-server",
				"--port",
				str(self.port),
				"--bind",
				"127.0.0.1",
				"--save",
				"",
				"--appendonly",
				"no",
				"--dir",
				self.workdir,
				"--daemonize",
				"no",
			],
			os.path.join(self.workdir, f"redis-{self.port}.log"),
		)
		wait_for(self.ping, 10, what=f"redis-server on port {self.port}")
		return self

	def ping(self) -> bool:
		try:
			return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
		except redis.RedisError:
			return False

	def url(self, db: int = 0) -> str:
		return f"redis://127.0.0.1:{self.port}/{db}"

	def stop(self) -> None:
		if self.process:
			self.process.stop()


class MariaDBServer:
	"""A private mariadbd on a free port with its own data directory (for fault tests)."""

	def __init__(self, workdir: str) -> None:
		self.workdir = workdir
		self.datadir = os.path.join(workdir, "data")
		self.port = free_port()
		self.socket = os.path.join(workdir, "mysqld.sock")
		self.process: Process | None = None

	def install(self) -> None:
		subprocess.run(
			[
				"mariadb-install-db",
				"--no-defaults",
				f"--datadir={self.datadir}",
				"--auth-root-authentication-method=normal",
				"--user=root",
				"--skip-test-db",
			],
			check=True,
			capture_output=True,
		)

	def start(self) -> "MariaDBServer":
		if not os.path.isdir(self.datadir):
			self.install()
		self.process = Process(
			[
				"mariadbd",
				"--no-defaults",
				f"--datadir={self.datadir}",
				f"--port={self.port}",
				"--bind-address=127.0.0.1",
				f"--socket={self.socket}",
				"--user=root",
				"--skip-grant-tables=0",
				"--innodb-buffer-pool-size=32M",
				f"--pid-file={os.path.join(self.workdir, 'mysqld.pid')}",
				"--skip-log-bin",
			],
			os.path.join(self.workdir, "mariadbd.log"),
		)
		wait_for(self.ping, 60, 0.2, what=f"mariadbd on port {self.port}")
		return self

	def connection_args(self) -> dict[str, Any]:
		return dict(host="127.0.0.1", port=self.port, user="root", password="")

	def ping(self) -> bool:
		try:
			pymysql.connect(**self.connection_args(), connect_timeout=1).close()
			return True
		except pymysql.MySQLError:
			return False

	def stop(self) -> None:
		if self.process:
			self.process.stop(timeout=30)


@dataclass
class SiteDB:
	"""One test's own MariaDB database holding the BTU tables, with helpers to edit rows."""

	name: str
	args: dict[str, Any]
	created: list[str] = field(default_factory=list)

	@classmethod
	def create(cls, args: dict[str, Any] | None = None) -> "SiteDB":
		args = dict(args or MARIADB)
		name = f"btu_test_{uuid.uuid4().hex[:10]}"
		init_database(args, name)
		return cls(name, args)

	def connect(self) -> pymysql.connections.Connection:
		return pymysql.connect(**self.args, database=self.name, autocommit=True)

	def execute(self, sql: str, params: tuple = ()) -> int:
		conn = self.connect()
		try:
			with conn.cursor() as cur:
				return cur.execute(sql, params)
		finally:
			conn.close()

	def add_task(
		self,
		name: str,
		function_string: str,
		arguments: dict | str | None = None,
		docstatus: int = 1,
		max_task_duration: int = 600,
		queue: str = "default",
	) -> str:
		text = arguments if isinstance(arguments, str) or arguments is None else json.dumps(arguments)
		self.execute(
			"INSERT INTO `tabBTU Task` (name, creation, modified, owner, modified_by, docstatus, desc_short,"
			" function_string, arguments, max_task_duration, queue_name) VALUES"
			" (%s, NOW(6), NOW(6), 'Administrator', 'Administrator', %s, %s, %s, %s, %s, %s)",
			(name, docstatus, f"test task {name}", function_string, text, max_task_duration, queue),
		)
		return name

	def add_schedule(
		self,
		name: str,
		task: str,
		cron: str,
		timezone: str | None = "UTC",
		enabled: int = 1,
		overrides: dict | str | None = None,
		queue: str = "default",
		run_frequency: str = "Cron Style",
		**fields: Any,
	) -> str:
		text = overrides if isinstance(overrides, str) or overrides is None else json.dumps(overrides)
		columns = [
			"name",
			"creation",
			"modified",
			"owner",
			"modified_by",
			"task",
			"enabled",
			"queue_name",
			"run_frequency",
			"cron_string",
			"cron_timezone",
			"argument_overrides",
			*fields,
		]
		values = [name, task, enabled, queue, run_frequency, cron, timezone, text, *fields.values()]
		placeholders = ["%s", "NOW(6)", "NOW(6)", "'Administrator'", "'Administrator'"] + ["%s"] * (
			len(columns) - 5
		)
		self.execute(
			f"INSERT INTO `tabBTU Task Schedule` ({', '.join(f'`{c}`' for c in columns)}) "
			f"VALUES ({', '.join(placeholders)})",
			(values[0], *values[1:]),
		)
		return name

	def update_schedule(self, name: str, **fields: Any) -> None:
		assignments = ", ".join(f"`{k}` = %s" for k in fields)
		self.execute(
			f"UPDATE `tabBTU Task Schedule` SET {assignments}, modified = NOW(6) WHERE name = %s",
			(*fields.values(), name),
		)

	def delete_schedule(self, name: str) -> None:
		self.execute("DELETE FROM `tabBTU Task Schedule` WHERE name = %s", (name,))

	def set_config_timezone(self, zone: str) -> None:
		self.execute(
			"DELETE FROM `tabSingles` WHERE doctype = 'BTU Configuration' AND field = 'cron_time_zone'"
		)
		self.execute(
			"INSERT INTO `tabSingles` (doctype, field, value) VALUES ('BTU Configuration', 'cron_time_zone', %s)",
			(zone,),
		)

	def drop(self) -> None:
		conn = pymysql.connect(**self.args, autocommit=True)
		try:
			with conn.cursor() as cur:
				cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
		finally:
			conn.close()


def write_toml(path: str, values: dict[str, Any], sites: dict[str, dict[str, Any]]) -> str:
	def render(value: Any) -> str:
		if isinstance(value, bool):
			return "true" if value else "false"
		if isinstance(value, (int, float)):
			return str(value)
		return json.dumps(str(value))

	lines = [f"{key} = {render(value)}" for key, value in values.items()]
	for site, site_values in sites.items():
		lines.append(f'\n[sites."{site}"]')
		lines.extend(f"{key} = {render(value)}" for key, value in site_values.items())
	Path(path).write_text("\n".join(lines) + "\n")
	return path


class DaemonProcess:
	"""The real daemon, run as ``python -m btu.scheduler_daemon run --config ...``."""

	def __init__(
		self,
		workdir: str,
		config_path: str,
		socket_path: str,
		name: str = "daemon",
		env: dict[str, str] | None = None,
	) -> None:
		self.workdir = workdir
		self.config_path = config_path
		self.socket_path = socket_path
		self.name = name
		self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
		self.process: Process | None = None

	def start(self, wait: bool = True) -> "DaemonProcess":
		self.process = Process(
			[sys.executable, "-m", "btu.scheduler_daemon", "run", "--config", self.config_path],
			os.path.join(self.workdir, f"{self.name}.log"),
			env=self.env,
			cwd=str(REPO),
		)
		if wait:
			wait_for(
				lambda: protocol.ping(self.socket_path, 0.5).ok or not self.process.alive(),
				20,
				what="daemon to answer ping",
			)
			assert self.process.alive(), self.output()
		return self

	def request(self, request_type: str, content: str | None = None, site: str | None = None):
		return protocol.send_request(self.socket_path, request_type, content, site, timeout=5.0)

	def stop(self, sig: int = signal.SIGTERM) -> int | None:
		return self.process.stop(sig) if self.process else None

	def kill(self) -> None:
		if self.process:
			self.process.kill()

	def output(self) -> str:
		return self.process.output() if self.process else ""


class Worker:
	"""A plain ``rq worker`` process listening on the given queues."""

	def __init__(self, workdir: str, redis_url: str, queues: list[str], name: str = "worker") -> None:
		self.process = Process(
			[
				sys.executable,
				"-m",
				"rq.cli",
				"worker",
				"-u",
				redis_url,
				"--name",
				f"{name}-{uuid.uuid4().hex[:6]}",
				*queues,
			],
			os.path.join(workdir, f"{name}.log"),
			env={**os.environ, "PYTHONPATH": str(REPO)},
			cwd=str(REPO),
		)

	def stop(self) -> None:
		self.process.stop()


def cleanup_dir(path: str) -> None:
	shutil.rmtree(path, ignore_errors=True)


def metrics_daemon(workdir: str, redis_url: str, site: str, db_name: str, db_user: str, name: str):
	"""A daemon (not started) with its own socket and a metrics port, refreshing every second:
	returns (DaemonProcess, metrics port)."""
	port = free_port()
	socket_path = os.path.join(workdir, f"{name}.sock")
	config = write_toml(
		os.path.join(workdir, f"{name}.toml"),
		{
			"job_mode": "plain",
			"redis_url": redis_url,
			"socket_path": socket_path,
			"lease_ttl": 3,
			"full_refresh_interval": 1,
			"metrics_port": port,
		},
		{site: {"db_name": db_name, "db_user": db_user}},
	)
	return DaemonProcess(workdir, config, socket_path), port
