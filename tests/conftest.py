"""Shared fixtures: a private Redis for the session, a database and a daemon per test."""

from __future__ import annotations

import itertools
import os
import threading

import pymysql
import pytest
import redis

from .services import (
	MARIADB,
	DaemonProcess,
	RedisServer,
	SiteDB,
	Worker,
	cleanup_dir,
	short_tmpdir,
	write_toml,
)

_db_numbers = itertools.cycle(range(1, 16))
_db_lock = threading.Lock()


@pytest.fixture(scope="session")
def redis_server():
	"""One private redis-server for the whole run: the machine's shared Redis is never touched."""
	workdir = short_tmpdir("btu-redis-")
	server = RedisServer(workdir).start()
	yield server
	server.stop()
	cleanup_dir(workdir)


@pytest.fixture
def redis_url(redis_server):
	"""This test's own Redis database number, flushed before and after."""
	with _db_lock:
		number = next(_db_numbers)
	url = redis_server.url(number)
	client = redis.Redis.from_url(url)
	client.flushdb()
	yield url
	client.flushdb()
	client.close()


@pytest.fixture
def redis_client(redis_url):
	client = redis.Redis.from_url(redis_url)
	yield client
	client.close()


@pytest.fixture(scope="session")
def mariadb_available():
	try:
		pymysql.connect(**MARIADB, connect_timeout=3).close()
	except pymysql.MySQLError as exc:
		pytest.fail(
			f"MariaDB is not reachable at {MARIADB['host']}:{MARIADB['port']}: {exc} "
			"(start it: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd)"
		)


@pytest.fixture
def site_db(mariadb_available):
	"""This test's own MariaDB database with the BTU tables built from the DocType JSON."""
	database = SiteDB.create()
	yield database
	database.drop()


@pytest.fixture
def workdir():
	path = short_tmpdir()
	yield path
	cleanup_dir(path)


SITE = "test.localhost"


@pytest.fixture
def daemon_config(workdir, redis_url, site_db):
	"""Write a TOML config for one site; returns a function to (re)write it with changes."""
	path = os.path.join(workdir, "btu.toml")
	socket_path = os.path.join(workdir, "btu.sock")

	def write(**changes):
		values = {
			"job_mode": "plain",
			"redis_url": redis_url,
			"socket_path": socket_path,
			"full_refresh_interval": 300,
			"misfire_grace": 3600,
			"lease_ttl": 3,
			"log_level": "DEBUG",
			"queue_prefix": "",
			"bench_id": "testbench",
		}
		values.update(changes)
		site_values = {
			"db_name": site_db.name,
			"db_user": site_db.args["user"],
			"db_password": site_db.args["password"],
			"db_host": site_db.args["host"],
			"db_port": site_db.args["port"],
		}
		write_toml(path, values, {SITE: site_values})
		return path

	write.path = path
	write.socket_path = socket_path
	write()
	return write


@pytest.fixture
def start_daemon(workdir, daemon_config):
	"""Start real daemon processes; every one is stopped by its pid at the end of the test."""
	started: list[DaemonProcess] = []

	def start(name: str = "daemon", wait: bool = True, config_path: str | None = None) -> DaemonProcess:
		daemon = DaemonProcess(workdir, config_path or daemon_config.path, daemon_config.socket_path, name)
		started.append(daemon)
		return daemon.start(wait)

	yield start
	for daemon in started:
		daemon.stop()


@pytest.fixture
def start_worker(workdir, redis_url):
	started: list[Worker] = []

	def start(queues=("default",), name: str = "worker") -> Worker:
		worker = Worker(workdir, redis_url, list(queues), name)
		started.append(worker)
		return worker

	yield start
	for worker in started:
		worker.stop()
