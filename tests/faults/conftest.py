"""Fixtures of the fault-injection suite (see README.md beside this file).

SHORT mode by default; ``BTU_FAULTS_LONG=1`` selects the LONG mode. Each test gets its own
private redis-server (so it can be killed, paused and restarted) and its own MariaDB database;
a private mariadbd is started where MariaDB itself is the fault. Nothing shared is ever stopped.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from ..services import SiteDB, cleanup_dir, short_tmpdir
from .harness import LONG, STATS, Daemon, FaultRedis, SimpleWorker, write_config


def pytest_configure(config):
	config.addinivalue_line(
		"markers",
		"faults: fault-injection test of the scheduler daemon (tests/faults; BTU_FAULTS_LONG=1 = long mode)",
	)


def pytest_collection_modifyitems(config, items):
	here = os.path.dirname(__file__)
	for item in items:
		if str(item.fspath).startswith(here):
			item.add_marker(pytest.mark.faults)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
	outcome = yield
	report = outcome.get_result()
	setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
	if not STATS.tests:
		return
	figures = STATS.figures()
	terminalreporter.section(f"BTU fault injection ({'LONG' if LONG else 'SHORT'} mode)")
	for key, value in figures.items():
		if key != "per_test":
			terminalreporter.write_line(f"{key:>28}: {value}")
	report = os.environ.get("BTU_FAULTS_REPORT")
	if report:
		with open(report, "w", encoding="utf-8") as handle:
			json.dump(
				{**figures, "exitstatus": int(exitstatus), "finished_at": time.time()}, handle, indent=2
			)


class FaultBench:
	"""One test's world: a private Redis, a MariaDB database, daemons and workers it can break."""

	def __init__(self, workdir: str, redis_server: FaultRedis, site_db: SiteDB, test_name: str) -> None:
		self.workdir = workdir
		self.redis = redis_server
		self.site_db = site_db
		self.test_name = test_name
		self.daemons: list[Daemon] = []
		self.workers: list[SimpleWorker] = []

	@property
	def redis_url(self) -> str:
		return self.redis.url(0)

	def client(self):
		return self.redis.client()

	def config(self, name: str = "d", site_db: SiteDB | None = None, redis_url: str | None = None, **changes):
		return write_config(
			self.workdir, name, redis_url or self.redis_url, site_db or self.site_db, **changes
		)

	def daemon(self, name: str = "d", wait: bool = True, **changes) -> Daemon:
		config_path, socket_path = self.config(name, **changes)
		daemon = Daemon(self.workdir, config_path, socket_path, name)
		self.daemons.append(daemon)
		return daemon.start(wait)

	def worker(self, queues=("default",), name: str = "worker") -> SimpleWorker:
		worker = SimpleWorker(self.workdir, self.redis_url, list(queues), name)
		self.workers.append(worker)
		return worker

	def crashes(self) -> list[str]:
		found = []
		for daemon in self.daemons:
			found += [f"{daemon.name}: {c}" for c in daemon.crashes()]
		return found

	def close(self) -> list[str]:
		for daemon in self.daemons:
			daemon.stop()
		for worker in self.workers:
			worker.stop()
		return self.crashes()


@pytest.fixture
def fault_dir(request):
	path = short_tmpdir("btu-f-")
	yield path
	failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
	if failed and os.environ.get("BTU_FAULTS_KEEP", "1") != "0":
		print(f"\n[faults] logs of the failed test kept in {path}")
	else:
		cleanup_dir(path)


@pytest.fixture
def fault_redis(fault_dir):
	server = FaultRedis(fault_dir).start()
	yield server
	server.stop()


@pytest.fixture
def fault_site(mariadb_available):
	database = SiteDB.create()
	yield database
	database.drop()


@pytest.fixture
def bench(request, fault_dir, fault_redis, fault_site):
	world = FaultBench(fault_dir, fault_redis, fault_site, request.node.name)
	STATS.begin(request.node.name)
	yield world
	crashes = world.close()
	STATS.add(request.node.name, crashes=len(crashes))
	assert not crashes, "the daemon crashed:\n" + "\n".join(crashes[:20])
