"""Benchmark the daemon on a bench of many sites (issue 20).

    .venv/bin/python bench/sites.py --sites 10,100,300,1000          # every size, then the broken sites
    .venv/bin/python bench/sites.py --sites 100 --no-scenarios       # one size only

Starts its OWN MariaDB server (a datadir under /tmp, a free port, the server's default
``max_connections``) and its OWN redis-server, makes a bench folder with N sites, each its own
database, its own database user and 20 schedules firing every minute (tables from the DocType JSON,
``scheduler_daemon/schema.py``), runs the real daemon (plain job mode, no workers) and prints, per N:

* load: seconds from the daemon's start until the first site, and every site, has its 20 schedules
  planned in Redis;
* DB connections the server counts for the sites' users (``information_schema.PROCESSLIST``, sampled
  every 50 ms): steady (after the load) and peak, beside ``max_connections`` and ``max_db_connections``;
* peak RSS and CPU seconds of the daemon;
* last run visible: seconds from a fire time until the last of its N x 20 runs is in the RQ queue; and,
  in the same invocation, the same number of runs of ONE site (a bench with one site of N x 20
  schedules) as the peer figure;
* missing / doubled runs of that fire time (job ids are deterministic: a doubled run is a repeated id);
* edit p50 / p99: an edit (row updated, then ``create_task_schedule``) until its new rule is in Redis,
  while a full refresh of every site runs;
* stop: seconds from SIGTERM to the daemon's exit.

Then the broken-site scenarios (N = the smallest size): a wrong password, a hung host (accepts, never
answers), a site without BTU's tables, a broken ``site_config.json``: the other sites' edit latency.
Everything it starts is stopped by its pid; its folders are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import pymysql  # noqa: E402
import redis  # noqa: E402

from btu.contracts import protocol  # noqa: E402
from btu.scheduler_daemon.schema import load_doctypes, schema_statements, single_defaults  # noqa: E402
from tests.services import Process, RedisServer, free_port, wait_for, write_toml  # noqa: E402

SCHEDULES = 20
TASK = "btu.scheduler_daemon.demo_tasks.say_hello"
QUEUE_KEY = "rq:queue:default"
USER_PREFIX = "bu_"


class OwnMariaDB:
	"""A private mariadbd: own datadir and port, default max_connections; durability off (a benchmark)."""

	def __init__(self, workdir: str) -> None:
		self.workdir = workdir
		self.datadir = os.path.join(workdir, "data")
		self.port = free_port()
		self.process: Process | None = None

	def start(self) -> OwnMariaDB:
		import subprocess

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
		self.process = Process(
			[
				"mariadbd",
				"--no-defaults",
				f"--datadir={self.datadir}",
				f"--port={self.port}",
				"--bind-address=127.0.0.1",
				f"--socket={os.path.join(self.workdir, 'mysqld.sock')}",
				"--user=root",
				"--innodb-buffer-pool-size=128M",
				"--innodb-flush-log-at-trx-commit=0",
				"--innodb-doublewrite=0",
				"--sync-frm=0",
				"--skip-log-bin",
				f"--pid-file={os.path.join(self.workdir, 'mysqld.pid')}",
			],
			os.path.join(self.workdir, "mariadbd.log"),
		)
		wait_for(self.ping, 60, 0.2, what="mariadbd")
		return self

	def args(self) -> dict[str, Any]:
		return dict(host="127.0.0.1", port=self.port, user="root", password="")

	def ping(self) -> bool:
		try:
			pymysql.connect(**self.args(), connect_timeout=1).close()
			return True
		except pymysql.MySQLError:
			return False

	def query(self, sql: str, args: tuple = ()) -> list[tuple]:
		conn = pymysql.connect(**self.args(), autocommit=True)
		try:
			with conn.cursor() as cur:
				cur.execute(sql, args)
				return list(cur.fetchall())
		finally:
			conn.close()

	def stop(self) -> None:
		if self.process:
			self.process.stop(timeout=60)


class HungServer:
	"""Accepts TCP connections and never answers (a hung database host)."""

	def __init__(self) -> None:
		self.sock = socket.socket()
		self.sock.bind(("127.0.0.1", 0))
		self.sock.listen(64)
		self.port = self.sock.getsockname()[1]
		self.accepted: list[socket.socket] = []
		threading.Thread(target=self._run, daemon=True).start()

	def _run(self) -> None:
		while True:
			try:
				self.accepted.append(self.sock.accept()[0])
			except OSError:
				return

	def close(self) -> None:
		self.sock.close()
		for conn in self.accepted:
			conn.close()


class SiteMaker:
	"""Databases with BTU's tables, each with its own user, 20 schedules on a rule."""

	def __init__(self, server: OwnMariaDB) -> None:
		self.server = server
		doctypes = load_doctypes()
		self.statements = list(schema_statements(doctypes))
		self.singles = list(single_defaults(doctypes))
		self.conn = pymysql.connect(**server.args(), autocommit=False)

	def make(self, name: str, schedules: int, cron: str = "* * * * *", tables: bool = True) -> dict[str, Any]:
		user = f"{USER_PREFIX}{name}"[:32]
		password = uuid.uuid4().hex[:16]
		with self.conn.cursor() as cur:
			cur.execute(f"CREATE DATABASE `{name}`")
			cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY %s", (password,))
			cur.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'127.0.0.1'")
			if tables:
				cur.execute(f"USE `{name}`")
				for statement in self.statements:
					cur.execute(statement)
				cur.executemany(
					"INSERT INTO `tabSingles` (doctype, field, value) VALUES (%s, %s, %s)", self.singles
				)
				cur.execute(
					"INSERT INTO `tabBTU Task` (name, creation, modified, owner, modified_by, docstatus,"
					" desc_short, function_string, max_task_duration, queue_name) VALUES ('BTU-00001', NOW(6),"
					" NOW(6), 'Administrator', 'Administrator', 1, 'bench', %s, 600, 'default')",
					(TASK,),
				)
				rows = [(f"TS-{i:06d}", cron) for i in range(1, schedules + 1)]
				for start in range(0, len(rows), 5000):
					cur.executemany(
						"INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task,"
						" enabled, queue_name, run_frequency, cron_string, cron_timezone) VALUES (%s, NOW(6),"
						" NOW(6), 'Administrator', 'Administrator', 'BTU-00001', 1, 'default', 'Cron Style',"
						" %s, 'UTC')",
						rows[start : start + 5000],
					)
			self.conn.commit()
		return {
			"db_name": name,
			"db_user": user,
			"db_password": password,
			"db_host": "127.0.0.1",
			"db_port": self.server.port,
		}

	def close(self) -> None:
		self.conn.close()


class Sampler:
	"""Every 50 ms: connections of the sites' users on the server, the daemon's RSS."""

	def __init__(self, server: OwnMariaDB, pid: int) -> None:
		self.server = server
		self.proc = psutil.Process(pid)
		self.samples: list[tuple[float, int]] = []
		self.peak_rss = 0
		self._stop = threading.Event()
		self._conn = pymysql.connect(**server.args(), autocommit=True)
		self._thread = threading.Thread(target=self._run, daemon=True)
		self._thread.start()

	def _run(self) -> None:
		while not self._stop.wait(0.05):
			try:
				with self._conn.cursor() as cur:
					cur.execute(
						"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE user LIKE %s",
						(USER_PREFIX + "%",),
					)
					self.samples.append((time.monotonic(), int(cur.fetchone()[0])))
				self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
			except (pymysql.MySQLError, psutil.Error):
				pass

	def peak(self) -> int:
		return max((n for _t, n in self.samples), default=0)

	def since(self, start: float) -> list[int]:
		return [n for t, n in self.samples if t >= start]

	def stop(self) -> None:
		self._stop.set()
		self._thread.join(5)
		self._conn.close()


def bench_folder(workdir: str, redis_url: str, sites: dict[str, Any]) -> str:
	path = os.path.join(workdir, "bench")
	os.makedirs(os.path.join(path, "apps"), exist_ok=True)
	for name, values in sites.items():
		os.makedirs(os.path.join(path, "sites", name), exist_ok=True)
		text = values if isinstance(values, str) else json.dumps(values)
		Path(path, "sites", name, "site_config.json").write_text(text)
	Path(path, "sites", "common_site_config.json").write_text(json.dumps({"redis_queue": redis_url}))
	return path


def start_daemon(workdir: str, bench: str, cap: int, refresh_every: int = 3600) -> tuple[Process, str, float]:
	socket_path = os.path.join(workdir, "btu.sock")
	toml = write_toml(
		os.path.join(workdir, "btu.toml"),
		{
			"job_mode": "plain",
			"queue_prefix": "",
			"socket_path": socket_path,
			"full_refresh_interval": refresh_every,
			"max_db_connections": cap,
			"log_level": "INFO",
			"misfire_grace": 3600,
		},
		{},
	)
	started = time.monotonic()
	process = Process(
		[sys.executable, "-m", "btu.scheduler_daemon", "run", "--config", toml],
		os.path.join(workdir, "daemon.log"),
		env={**os.environ, "BTU_BENCH_PATH": bench, "PYTHONUNBUFFERED": "1"},
		cwd=str(REPO),
	)
	_DAEMONS.append(process)
	return process, socket_path, started


def planned_counts(client: redis.Redis, sites: list[str]) -> list[int]:
	pipe = client.pipeline(transaction=False)
	for site in sites:
		pipe.zcard(f"btu:{site}:next_runs")
	return [int(n) for n in pipe.execute()]


def wait_loaded(client: redis.Redis, sites: list[str], per_site: int, started: float, limit: float) -> tuple:
	first = None
	while time.monotonic() - started < limit:
		counts = planned_counts(client, sites)
		if first is None and any(n >= per_site for n in counts):
			first = time.monotonic() - started
		if all(n >= per_site for n in counts):
			return first, time.monotonic() - started
		time.sleep(0.05)
	return first, None


def watch_fire(client: redis.Redis, expected: int, limit: float = 120.0) -> dict[str, Any]:
	"""The next minute's fire time F (at least 8 s ahead): seconds from F until the last of its
	``expected`` runs is in the RQ queue (the queue is read as it grows, every 20 ms; runs of other
	fire times are told apart by their deterministic job ids); then missing and doubled runs of F."""
	now = time.time()
	fire = (int(now) // 60 + 1) * 60
	if fire - now < 8:
		fire += 60
	tag = f"-{fire}-".encode()
	time.sleep(max(0.0, fire - time.time() - 1.0))
	index = client.llen(QUEUE_KEY)
	ids: list[bytes] = []
	visible = None
	while time.time() < fire + limit:
		new = client.lrange(QUEUE_KEY, index, index + 50_000)
		index += len(new)
		ids += [job for job in new if tag in job]
		if len(set(ids)) >= expected:
			visible = time.time() - fire
			break
		time.sleep(0.02)
	time.sleep(2)
	ids += [job for job in client.lrange(QUEUE_KEY, index, -1) if tag in job]
	return {
		"fire": fire,
		"visible_s": visible,
		"missing": expected - len(set(ids)),
		"doubled": len(ids) - len(set(ids)),
	}


def edit_latencies(
	maker_args: dict[str, Any],
	socket_path: str,
	client: redis.Redis,
	sites: dict[str, Any],
	count: int,
	refresh: bool,
) -> list[float]:
	"""``count`` edits of random sites (one after the other), each timed until its rule is in Redis."""
	names = [n for n, v in sites.items() if isinstance(v, dict)]
	rng = random.Random(7)
	latencies = []
	if refresh:
		protocol.refresh(socket_path, timeout=5.0)
	for number in range(count):
		site = rng.choice(names)
		db = sites[site]["db_name"]
		cron = f"{number % 60} {number % 24} * * *"
		conn = pymysql.connect(**maker_args, database=db, autocommit=True)
		with conn.cursor() as cur:
			cur.execute(
				"UPDATE `tabBTU Task Schedule` SET cron_string = %s, modified = NOW(6) WHERE name = 'TS-000001'",
				(cron,),
			)
		conn.close()
		started = time.monotonic()
		protocol.create_task_schedule(socket_path, "TS-000001", site, timeout=5.0)
		while time.monotonic() - started < 60:
			value = client.hget(f"btu:{site}:timings", "TS-000001")
			if value and value.decode().startswith(cron + "|"):
				break
			time.sleep(0.002)
		latencies.append(time.monotonic() - started)
		# The edited rule back to every minute: the next fire time counts all runs again.
		conn = pymysql.connect(**maker_args, database=db, autocommit=True)
		with conn.cursor() as cur:
			cur.execute(
				"UPDATE `tabBTU Task Schedule` SET cron_string = '* * * * *', modified = NOW(6) WHERE name = 'TS-000001'"
			)
		conn.close()
		protocol.create_task_schedule(socket_path, "TS-000001", site, timeout=5.0)
	return latencies


def p(values: list[float], q: float) -> float:
	if not values:
		return float("nan")
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def stop_daemon(process: Process) -> float:
	started = time.monotonic()
	os.kill(process.pid, signal.SIGTERM)
	process.proc.wait(30)
	took = time.monotonic() - started
	process.stop()
	return took


def run_size(server: OwnMariaDB, redis_server: RedisServer, n: int, cap: int, edits: int) -> dict[str, Any]:
	workdir = tempfile_dir(f"btu-sites{n}-")
	client = redis.Redis(port=redis_server.port)
	client.flushall()
	maker = SiteMaker(server)
	made = time.monotonic()
	sites = {f"s{i:04d}.localhost": maker.make(f"n{n}_s{i:04d}", SCHEDULES) for i in range(n)}
	maker.close()
	setup_s = time.monotonic() - made
	bench = bench_folder(workdir, redis_server.url(0), sites)
	process, socket_path, started = start_daemon(workdir, bench, cap)
	sampler = Sampler(server, process.pid)
	names = sorted(sites)
	first, all_loaded = wait_loaded(client, names, SCHEDULES, started, 600)
	loaded_at = time.monotonic()
	spy = None
	if PROFILE:
		import subprocess

		spy = subprocess.Popen(
			[
				os.path.join(os.path.dirname(sys.executable), "py-spy"),
				"record",
				"-p",
				str(process.pid),
				"-r",
				"200",
				"-f",
				"raw",
				"-o",
				os.path.join(PROFILE, f"fire-{n}.txt"),
				"-d",
				"75",
				"--threads",
			],
			stdout=subprocess.DEVNULL,
			stderr=subprocess.DEVNULL,
		)
	fire = watch_fire(client, n * SCHEDULES)
	if spy is not None:
		spy.wait()
	latencies = edit_latencies(server.args(), socket_path, client, sites, edits, refresh=True)
	steady = sampler.since(loaded_at)
	cpu = psutil.Process(process.pid).cpu_times()
	status = protocol.status(socket_path, timeout=10.0)
	stop_s = stop_daemon(process)
	sampler.stop()
	result = {
		"sites": n,
		"setup_s": round(setup_s, 1),
		"first_site_s": first,
		"all_sites_s": all_loaded,
		"conn_steady": statistics.median(steady) if steady else None,
		"conn_peak": sampler.peak(),
		"max_connections": int(server.query("SELECT @@max_connections")[0][0]),
		"cap": cap,
		"rss_mb": round(sampler.peak_rss / 1e6, 1),
		"cpu_s": round(cpu.user + cpu.system, 1),
		"visible_s": fire["visible_s"],
		"missing": fire["missing"],
		"doubled": fire["doubled"],
		"edit_p50_ms": round(p(latencies, 0.5) * 1000, 1),
		"edit_p99_ms": round(p(latencies, 0.99) * 1000, 1),
		"stop_s": round(stop_s, 2),
		"status_bytes": len(json.dumps(status.data)) if status.ok else None,
	}
	# The peer figure, same invocation: the same number of runs, all of ONE site.
	client.flushall()
	maker = SiteMaker(server)
	one = {"one.localhost": maker.make(f"n{n}_one", n * SCHEDULES)}
	maker.close()
	bench = bench_folder(tempfile_dir(f"btu-one{n}-"), redis_server.url(0), one)
	process, socket_path, started = start_daemon(os.path.dirname(bench), bench, cap)
	wait_loaded(client, ["one.localhost"], n * SCHEDULES, started, 600)
	peer = watch_fire(client, n * SCHEDULES)
	stop_daemon(process)
	result["one_site_visible_s"] = peer["visible_s"]
	result["one_site_missing"] = peer["missing"]
	result["one_site_doubled"] = peer["doubled"]
	return result


def run_broken(
	server: OwnMariaDB, redis_server: RedisServer, n: int, cap: int, edits: int
) -> list[dict[str, Any]]:
	"""N good sites plus one broken site of each kind at once; the good sites' edit latency."""
	client = redis.Redis(port=redis_server.port)
	rows = []
	hung = HungServer()
	try:
		for scenario in ("none", "wrong password", "hung host", "missing tables", "broken site_config.json"):
			client.flushall()
			workdir = tempfile_dir("btu-broken-")
			maker = SiteMaker(server)
			tag = uuid.uuid4().hex[:4]
			sites: dict[str, Any] = {
				f"g{i:04d}.localhost": maker.make(f"b{tag}_g{i:04d}", SCHEDULES) for i in range(n)
			}
			if scenario == "wrong password":
				sites["bad.localhost"] = {**maker.make(f"b{tag}_bad", SCHEDULES), "db_password": "wrong"}
			elif scenario == "hung host":
				sites["bad.localhost"] = {**maker.make(f"b{tag}_bad", SCHEDULES), "db_port": hung.port}
			elif scenario == "missing tables":
				sites["bad.localhost"] = maker.make(f"b{tag}_bad", SCHEDULES, tables=False)
			elif scenario == "broken site_config.json":
				sites["bad.localhost"] = "{oops"
			maker.close()
			bench = bench_folder(workdir, redis_server.url(0), sites)
			process, socket_path, started = start_daemon(workdir, bench, cap, refresh_every=10)
			good = sorted(s for s in sites if s.startswith("g"))
			_first, loaded = wait_loaded(client, good, SCHEDULES, started, 300)
			if "bad.localhost" in sites:
				for _ in range(3):  # edits waiting for the broken site
					protocol.create_task_schedule(socket_path, "TS-000001", "bad.localhost", timeout=5.0)
			good_sites = {s: sites[s] for s in good}
			latencies = edit_latencies(server.args(), socket_path, client, good_sites, edits, refresh=True)
			stop_daemon(process)
			log = Path(workdir, "daemon.log").read_text(errors="replace")
			rows.append(
				{
					"scenario": scenario,
					"sites": n,
					"good_loaded_s": loaded,
					"edit_p50_ms": round(p(latencies, 0.5) * 1000, 1),
					"edit_p99_ms": round(p(latencies, 0.99) * 1000, 1),
					"edit_max_ms": round(max(latencies) * 1000, 1),
					"log_lines_bad": sum(1 for line in log.splitlines() if "bad.localhost" in line),
				}
			)
			print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
	finally:
		hung.close()
	return rows


_DIRS: list[str] = []
PROFILE = os.environ.get("BENCH_PROFILE")  # a folder: py-spy records the daemon around the fire time
_DAEMONS: list[Process] = []


def tempfile_dir(prefix: str) -> str:
	import tempfile

	path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
	_DIRS.append(path)
	return path


def fmt(value: Any, digits: int = 2) -> str:
	if value is None:
		return "never"
	if isinstance(value, float):
		return f"{value:.{digits}f}"
	return str(value)


def main() -> None:
	parser = argparse.ArgumentParser(
		description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
	)
	parser.add_argument("--sites", default="10,100,300", help="comma-separated numbers of sites")
	parser.add_argument("--cap", type=int, default=8, help="max_db_connections")
	parser.add_argument("--edits", type=int, default=50, help="edits timed per size")
	parser.add_argument("--no-scenarios", action="store_true", help="skip the broken-site scenarios")
	parser.add_argument(
		"--scenario-sites", type=int, default=0, help="good sites in the scenarios (default: smallest size)"
	)
	options = parser.parse_args()
	sizes = [int(n) for n in options.sites.split(",")]
	workdir = tempfile_dir("btu-sitesbench-")
	server = OwnMariaDB(workdir).start()
	redis_server = RedisServer(workdir).start()
	results = []
	broken: list[dict[str, Any]] = []
	try:
		for n in sizes:
			results.append(run_size(server, redis_server, n, options.cap, options.edits))
			print(json.dumps(results[-1]), file=sys.stderr, flush=True)
		if not options.no_scenarios:
			broken = run_broken(
				server, redis_server, options.scenario_sites or min(sizes), options.cap, options.edits
			)
	finally:
		for process in _DAEMONS:
			if process.alive():
				process.stop()
		redis_server.stop()
		server.stop()
		for path in _DIRS:
			shutil.rmtree(path, ignore_errors=True)
	print(
		"| sites | setup | first site | all sites | DB conns steady / peak (cap, max_connections) | peak RSS | CPU |"
		" last run visible | one site, same runs | missing / doubled | edit p50 / p99 during refresh | stop | status reply |"
	)
	print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for r in results:
		print(
			f"| {r['sites']} | {r['setup_s']} s | {fmt(r['first_site_s'])} s | {fmt(r['all_sites_s'])} s |"
			f" {fmt(r['conn_steady'], 0)} / {r['conn_peak']} ({r['cap']}, {r['max_connections']}) |"
			f" {r['rss_mb']} MB | {r['cpu_s']} s | {fmt(r['visible_s'], 3)} s | {fmt(r['one_site_visible_s'], 3)} s |"
			f" {r['missing']} / {r['doubled']} (one site {r['one_site_missing']} / {r['one_site_doubled']}) |"
			f" {r['edit_p50_ms']} / {r['edit_p99_ms']} ms | {r['stop_s']} s | {r['status_bytes']} B |"
		)
	if broken:
		print()
		print(
			"| broken site (besides N good ones) | N | good sites loaded | other sites' edit p50 / p99 / max | log lines naming it |"
		)
		print("|---|--:|--:|--:|--:|")
		for r in broken:
			print(
				f"| {r['scenario']} | {r['sites']} | {fmt(r['good_loaded_s'])} s |"
				f" {r['edit_p50_ms']} / {r['edit_p99_ms']} / {r['edit_max_ms']} ms | {r['log_lines_bad']} |"
			)


if __name__ == "__main__":
	main()
