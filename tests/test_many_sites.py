"""Many sites on one bench (issue 20): bounded database connections, a broken or hung site delays no
other site, sites found while the daemon runs, edits never lost to a site's outage.

Real MariaDB (each site its own database and its own database user, so that the server counts
the daemon's connections per user), a private Redis db, the real daemon process."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pymysql
import pytest
import redis

from btu.contracts.redis_keys import KEYS

from .services import MARIADB, REPO, DaemonProcess, SiteDB, wait_for, write_toml

RECORD = "tests.run_tasks.record"
NEVER = "0 0 1 1 *"  # once a year: planned, never fired during a test


def _root() -> pymysql.connections.Connection:
	return pymysql.connect(**MARIADB, autocommit=True)


class SiteUser:
	"""A site's own database and database user (as `bench new-site` makes them)."""

	def __init__(self, prefix: str, index: int, max_user_connections: int = 0) -> None:
		self.db = SiteDB.create()
		self.user = f"{prefix}{index:03d}"
		self.password = uuid.uuid4().hex
		conn = _root()
		try:
			with conn.cursor() as cur:
				for host in ("localhost", "127.0.0.1", "%%"):
					cur.execute(
						f"CREATE USER '{self.user}'@'{host}' IDENTIFIED BY %s"
						+ (
							f" WITH MAX_USER_CONNECTIONS {max_user_connections}"
							if max_user_connections
							else ""
						),
						(self.password,),
					)
					cur.execute(
						f"GRANT ALL ON `{self.db.name}`.* TO '{self.user}'@'{host.replace('%%', '%')}'"
					)
		finally:
			conn.close()

	def site_values(self) -> dict:
		return {
			"db_name": self.db.name,
			"db_user": self.user,
			"db_password": self.password,
			"db_host": MARIADB["host"],
			"db_port": MARIADB["port"],
		}

	def connect_as_site(self) -> pymysql.connections.Connection:
		return pymysql.connect(
			host=MARIADB["host"],
			port=MARIADB["port"],
			user=self.user,
			password=self.password,
			database=self.db.name,
		)

	def drop(self) -> None:
		conn = _root()
		try:
			with conn.cursor() as cur:
				for host in ("localhost", "127.0.0.1", "%"):
					cur.execute(f"DROP USER IF EXISTS '{self.user}'@'{host}'")
		finally:
			conn.close()
		self.db.drop()


@pytest.fixture
def make_sites(mariadb_available):
	prefix = f"btu_u{uuid.uuid4().hex[:6]}_"
	made: list[SiteUser] = []

	def make(count: int, schedules: int = 2, max_user_connections: int = 0) -> list[SiteUser]:
		for _ in range(count):
			site = SiteUser(prefix, len(made), max_user_connections)
			made.append(site)
			site.db.add_task("BTU-00001", RECORD)
			for number in range(1, schedules + 1):
				site.db.add_schedule(f"TS-{number:06d}", "BTU-00001", NEVER)
		return made[-count:]

	make.prefix = prefix
	yield make
	for site in made:
		site.drop()


def held_connections(prefix: str) -> int:
	"""Connections the MariaDB server holds for the test's site users (counted by the server)."""
	conn = _root()
	try:
		with conn.cursor() as cur:
			cur.execute(
				"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE user LIKE %s", (prefix + "%",)
			)
			return int(cur.fetchone()[0])
	finally:
		conn.close()


class Sampler:
	"""The most connections held at once, sampled on the server every 20 ms while it runs."""

	def __init__(self, prefix: str) -> None:
		self.prefix = prefix
		self.peak = 0
		self._stop = threading.Event()
		self._thread = threading.Thread(target=self._run, daemon=True)
		self._thread.start()

	def _run(self) -> None:
		while not self._stop.wait(0.02):
			self.peak = max(self.peak, held_connections(self.prefix))

	def stop(self) -> int:
		self._stop.set()
		self._thread.join(5)
		return self.peak


class HungServer:
	"""A TCP server that accepts connections and never answers (a hung database host)."""

	def __init__(self) -> None:
		self.sock = socket.socket()
		self.sock.bind(("127.0.0.1", 0))
		self.sock.listen(64)
		self.port = self.sock.getsockname()[1]
		self.accepted: list[socket.socket] = []
		self._thread = threading.Thread(target=self._run, daemon=True)
		self._thread.start()

	def _run(self) -> None:
		while True:
			try:
				conn, _addr = self.sock.accept()
			except OSError:
				return
			self.accepted.append(conn)

	def close(self) -> None:
		self.sock.close()
		for conn in self.accepted:
			conn.close()


class Bench:
	"""A bench folder (sites/<site>/site_config.json) and the daemon run on it (BTU_BENCH_PATH), plain
	job mode, the test's Redis, a short full refresh so that sites are found again quickly."""

	def __init__(self, workdir: str, redis_url: str, **values) -> None:
		self.workdir = workdir
		self.path = os.path.join(workdir, "bench")
		self.sites = os.path.join(self.path, "sites")
		os.makedirs(self.sites)
		os.makedirs(os.path.join(self.path, "apps"))
		Path(self.sites, "common_site_config.json").write_text(json.dumps({"redis_queue": redis_url}))
		self.socket_path = os.path.join(workdir, "btu.sock")
		self.toml = write_toml(
			os.path.join(workdir, "btu.toml"),
			{
				"job_mode": "plain",
				"queue_prefix": "",
				"socket_path": self.socket_path,
				"lease_ttl": 3,
				"log_level": "DEBUG",
				"full_refresh_interval": 300,
				**values,
			},
			{},
		)
		self.daemon: DaemonProcess | None = None

	def add_site(self, name: str, values: dict | str) -> None:
		os.makedirs(os.path.join(self.sites, name), exist_ok=True)
		text = values if isinstance(values, str) else json.dumps(values)
		Path(self.sites, name, "site_config.json").write_text(text)

	def drop_site(self, name: str) -> None:
		folder = Path(self.sites, name)
		(folder / "site_config.json").unlink()
		folder.rmdir()

	def start(self) -> DaemonProcess:
		self.daemon = DaemonProcess(
			self.workdir, self.toml, self.socket_path, env={"BTU_BENCH_PATH": self.path}
		)
		return self.daemon.start()


@pytest.fixture
def bench(workdir, redis_url):
	made: list[Bench] = []

	def make(**values) -> Bench:
		made.append(Bench(workdir, redis_url, **values))
		return made[-1]

	yield make
	for one in made:
		if one.daemon:
			one.daemon.stop()


def planned(client: redis.Redis, site: str) -> int:
	return int(client.zcard(KEYS.next_runs(site)))


def timing(client: redis.Redis, site: str, schedule: str) -> str | None:
	value = client.hget(KEYS.timings(site), schedule)
	return value.decode() if value else None


def test_connections_held_stay_under_the_cap_with_many_sites(bench, make_sites, redis_client):
	"""30 sites, max_db_connections 4: every site is served, the server never sees more than 4
	connections of the sites' users from the daemon, and a site's own user can still connect."""
	sites = make_sites(30)
	one = bench(max_db_connections=4, full_refresh_interval=3)
	for index, site in enumerate(sites):
		one.add_site(f"s{index:02d}.localhost", site.site_values())
	sampler = Sampler(make_sites.prefix)
	try:
		daemon = one.start()
		wait_for(
			lambda: all(planned(redis_client, f"s{i:02d}.localhost") == 2 for i in range(30)),
			60,
			what="every site's schedules planned",
		)
		# Edits of many sites at once, and a second full refresh, while the sampler watches.
		for index, site in enumerate(sites):
			site.db.update_schedule("TS-000001", cron_string="0 0 2 1 *")
			assert daemon.request("create_task_schedule", "TS-000001", f"s{index:02d}.localhost").ok
		wait_for(
			lambda: all(
				timing(redis_client, f"s{i:02d}.localhost", "TS-000001") == "0 0 2 1 *|UTC" for i in range(30)
			),
			60,
			what="every site's edit applied",
		)
		time.sleep(4)  # a full refresh of the 30 sites (every 3 s)
		sites[0].connect_as_site().close()  # the site's own user still connects
	finally:
		peak = sampler.stop()
	assert 1 <= peak <= 4, f"the daemon held {peak} connections at once (max_db_connections 4)"
	status = daemon.request("status")
	assert status.data["db_connections"]["limit"] == 4
	assert status.data["db_connections"]["peak"] <= 4
	assert status.data["site_count"] == 30
	# 30 sites: a summary per site, details on request (a bounded reply at any number of sites).
	assert status.data["sites_detailed"] is False
	assert status.data["sites"]["s07.localhost"]["schedules"] == 2
	detail = daemon.request("status", site="s07.localhost")
	assert [run["schedule"] for run in detail.data["sites"]["s07.localhost"]["next_runs"]] == [
		"TS-000002",
		"TS-000001",
	]
	# The command line: one line per site, the details of the one named; refresh follows its own request.
	text = cli("status", "--socket", one.socket_path)
	assert "30 served, 0 with their database down, 0 skipped" in text, text
	assert re.search(r"^s07\.localhost\s+ok\s+2\s+0\s", text, re.M), text
	text = cli("status", "--socket", one.socket_path, "--site", "s07.localhost")
	assert "site s07.localhost" in text and "next 2 runs:" in text, text
	text = cli("refresh", "--socket", one.socket_path)
	assert re.search(r"^refresh of 30 sites done: 60 schedules in [\d.]+ s$", text, re.M), text


def cli(*args: str) -> str:
	result = subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", *args],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		timeout=120,
	)
	assert result.returncode == 0, result.stderr
	return result.stdout


def test_a_hung_or_refusing_site_does_not_hold_up_another_sites_edit(bench, make_sites, redis_client):
	"""A site whose host accepts and never answers, and one whose password is refused, each with an
	edit waiting: the other site's edit is applied while they are still broken, and the refused site
	is served by itself once its password is fixed."""
	good, refused = make_sites(2)
	hung = HungServer()
	one = bench()
	one.add_site("good.localhost", good.site_values())
	one.add_site("hung.localhost", {**good.site_values(), "db_port": hung.port})
	one.add_site("refused.localhost", {**refused.site_values(), "db_password": "wrong"})
	try:
		daemon = one.start()
		wait_for(lambda: planned(redis_client, "good.localhost") == 2, 30, what="the good site planned")
		for site in ("hung.localhost", "refused.localhost"):
			assert daemon.request("create_task_schedule", "TS-000001", site).ok
		for cron in ("0 0 2 1 *", "0 0 3 1 *", "0 0 4 1 *"):
			good.db.update_schedule("TS-000002", cron_string=cron)
			assert daemon.request("create_task_schedule", "TS-000002", "good.localhost").ok
			wait_for(
				lambda cron=cron: timing(redis_client, "good.localhost", "TS-000002") == f"{cron}|UTC",
				20,
				what=f"the good site's edit to {cron!r} applied while the others are broken",
			)
		assert hung.accepted, "the hung host was never asked"
		status = daemon.request("status").data["sites"]
		assert status["hung.localhost"]["sql_ok"] is False and status["refused.localhost"]["sql_ok"] is False
		assert planned(redis_client, "refused.localhost") == 0
		# Fixed: the refused site recovers by itself (its own back-off) and its edit is applied.
		one.add_site("refused.localhost", refused.site_values())
		wait_for(lambda: planned(redis_client, "refused.localhost") == 2, 60, what="the fixed site served")
		output = daemon.output()
		assert output.count("event=sql_unavailable site=refused.localhost") == 1, output
		assert "event=sql_recovered site=refused.localhost" in output
	finally:
		hung.close()


def test_sites_found_while_running_and_a_broken_site_config_is_skipped(bench, make_sites, redis_client):
	"""A broken site_config.json is skipped with one line (the daemon serves the others, it does not
	exit); a site created while the daemon runs is served without a restart, one fixed too; a site
	whose folder goes (bench drop-site) stops: its Redis entries are removed."""
	first, second = make_sites(2)
	one = bench(full_refresh_interval=2)
	one.add_site("a.localhost", first.site_values())
	one.add_site("broken.localhost", "{oops")
	daemon = one.start()
	wait_for(lambda: planned(redis_client, "a.localhost") == 2, 30, what="site a planned")
	output = daemon.output()
	assert output.count("event=site_config_invalid site=broken.localhost") == 1, output
	assert "invalid JSON at line 1, column 2" in output
	# A new site (bench new-site ... --install-app btu) is found at the next full refresh.
	one.add_site("b.localhost", second.site_values())
	wait_for(lambda: planned(redis_client, "b.localhost") == 2, 30, what="the new site b served")
	# The broken one, fixed, is served too; its error was logged once for all those refreshes.
	assert daemon.output().count("event=site_config_invalid site=broken.localhost") == 1
	one.add_site("broken.localhost", second.site_values())
	wait_for(lambda: planned(redis_client, "broken.localhost") == 2, 30, what="the fixed site served")
	# A dropped site stops: its runs' entries leave Redis.
	one.drop_site("a.localhost")
	wait_for(lambda: planned(redis_client, "a.localhost") == 0, 30, what="site a's entries removed")
	assert "event=site_removed site=a.localhost" in daemon.output()
	assert "a.localhost" not in daemon.request("status").data["sites"]


def test_refresh_of_a_new_site_serves_it_at_once(bench, make_sites, redis_client):
	"""BTU's install hook asks for a refresh of the new site: served without waiting for the next
	full refresh; the reply's ticket is followed to that refresh's end."""
	first, second = make_sites(2)
	one = bench(full_refresh_interval=3600)
	one.add_site("a.localhost", first.site_values())
	daemon = one.start()
	wait_for(lambda: planned(redis_client, "a.localhost") == 2, 30, what="site a planned")
	one.add_site("new.localhost", second.site_values())
	reply = daemon.request("refresh", site="new.localhost")
	assert reply.ok and reply.data["ticket"] >= 1, reply
	wait_for(lambda: planned(redis_client, "new.localhost") == 2, 30, what="the new site served")
	wait_for(
		lambda: daemon.request("status").data["refresh"]["completed_ticket"] >= reply.data["ticket"],
		30,
		what="the request's refresh completed",
	)


def test_an_edit_waiting_for_its_sites_database_is_applied_and_never_hidden_by_a_refresh(
	bench, make_sites, redis_client
):
	"""The site's user may hold one connection (MAX_USER_CONNECTIONS 1). An edit whose read fails
	meanwhile is kept apart from the internal queue: a refresh's row of the same schedule is applied,
	and the edit is read again and applied once the site answers."""
	(site,) = make_sites(1, max_user_connections=1)
	one = bench()
	one.add_site("one.localhost", site.site_values())
	daemon = one.start()
	wait_for(lambda: planned(redis_client, "one.localhost") == 2, 30, what="planned")
	# 1. The edit and a refresh while the daemon's connections to the site are scarce.
	site.db.update_schedule("TS-000001", cron_string="0 0 2 1 *")
	assert daemon.request("create_task_schedule", "TS-000001", "one.localhost").ok
	assert daemon.request("refresh", site="one.localhost").ok
	wait_for(
		lambda: timing(redis_client, "one.localhost", "TS-000001") == "0 0 2 1 *|UTC", 20, what="edit applied"
	)
	# 2. The site's user is at its limit (its one connection held elsewhere): the edit waits ...
	conn = _root()
	with conn.cursor() as cur:
		cur.execute("SELECT id FROM information_schema.PROCESSLIST WHERE user = %s", (site.user,))
		for (thread_id,) in cur.fetchall():
			cur.execute(f"KILL {int(thread_id)}")
	conn.close()
	holder = site.connect_as_site()
	try:
		site.db.update_schedule("TS-000001", cron_string="0 0 3 1 *")
		assert daemon.request("create_task_schedule", "TS-000001", "one.localhost").ok
		wait_for(
			lambda: daemon.request("status").data["sites"]["one.localhost"]["sql_ok"] is False,
			20,
			what="the site seen down",
		)
		assert timing(redis_client, "one.localhost", "TS-000001") == "0 0 2 1 *|UTC"
	finally:
		holder.close()
	# ... and is applied once the site answers again, by itself.
	wait_for(
		lambda: timing(redis_client, "one.localhost", "TS-000001") == "0 0 3 1 *|UTC",
		60,
		what="the waiting edit applied after the site came back",
	)
