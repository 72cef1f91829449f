"""Socket floods against a real BTU daemon: are pings and Desk edits still answered, and how fast?

    .venv/bin/python bench/socket_flood.py            # every scenario, 30 s of attack each (~6 min)
    .venv/bin/python bench/socket_flood.py --quick    # 5 s each, 2,000 names (smoke run, ~1.5 min)
    .venv/bin/python bench/socket_flood.py --seconds 60 --names 20000 --rounds 5

One daemon (``python -m btu.scheduler_daemon run``) on its own private redis-server and a MariaDB
database made with ``btu-scheduler init-db`` (dropped at the end), holding ``--names`` schedules.
Scenarios, one after the other (issue 14, items 6-7):

  a. no attack;
  b. 2,000 silent connections held (one process; then spread over 64 processes);
  c. a reconnecting attacker: 2,000 targets reopened as soon as the daemon closes them (one
     process), then 10,000 targets over 64 processes (more than the daemon holds);
  d. ``--names`` existing schedules pushed over the socket while the schedule table is write-locked
     (``--lock`` s), then one edit; e. the same with unknown names, then one cancel.

Measured: ping round trips (a ping every 0.1 s, 2 s client timeout: p50/p99/max, failures, the
longest time without an answered ping); edit -> Redis (a: one edit a second, SQL row changed then
``create_task_schedule``, until Redis has the new spec; d/e: from the table's unlock until Redis has
the edit / no longer has the cancelled schedule) and the time until the pushed names all drained;
and the lines the daemon logged during each scenario. Prints one Markdown table; writes it with the
raw figures under bench/results/ (socket-flood-<time>.md/.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import pymysql  # noqa: E402
import redis  # noqa: E402

from btu.contracts import protocol  # noqa: E402
from btu.contracts.redis_keys import KEYS  # noqa: E402
from tests.services import MARIADB, DaemonProcess, RedisServer, write_toml  # noqa: E402
from tests.socket_attacker import Attacker  # noqa: E402

SITE = "flood.localhost"
TASK = "BTU-FLOOD"


def log(message: str) -> None:
	print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float | None:
	if not values:
		return None
	ordered = sorted(values)
	return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def fmt(value: float | None, digits: int = 1) -> str:
	if value is None:
		return "-"
	return f"{value:,.{digits}f}"


# --- the world -----------------------------------------------------------------------------------


class Database:
	"""A database made by ``btu-scheduler init-db`` (only this one is dropped)."""

	def __init__(self) -> None:
		self.name = f"btu_flood_{uuid.uuid4().hex[:10]}"
		self.args = dict(MARIADB)
		out = subprocess.run(
			[
				sys.executable,
				"-m",
				"btu.scheduler_daemon",
				"init-db",
				"--db-name",
				self.name,
				"--db-host",
				self.args["host"],
				"--db-port",
				str(self.args["port"]),
				"--db-user",
				self.args["user"],
			],
			cwd=str(REPO),
			env={**os.environ, "BTU_DB_PASSWORD": self.args["password"]},
			capture_output=True,
			text=True,
		)
		if out.returncode:
			raise RuntimeError(f"btu-scheduler init-db failed: {out.stderr or out.stdout}")
		self.conn = self.connect()

	def connect(self) -> pymysql.connections.Connection:
		return pymysql.connect(**self.args, database=self.name, autocommit=True)

	def fill(self, names: list[str]) -> None:
		with self.conn.cursor() as cur:
			cur.execute(
				"INSERT INTO `tabBTU Task` (name, creation, modified, owner, modified_by, docstatus, desc_short,"
				" function_string, arguments, max_task_duration, queue_name) VALUES (%s, NOW(6), NOW(6),"
				" 'Administrator', 'Administrator', 1, 'flood no-op', 'bench_noop.noop', NULL, 600, 'default')",
				(TASK,),
			)
			for start in range(0, len(names), 10_000):
				cur.executemany(
					"INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task,"
					" enabled, queue_name, run_frequency, cron_string, cron_timezone) VALUES (%s, NOW(6),"
					" NOW(6), 'Administrator', 'Administrator', %s, 1, 'default', 'Cron Style', '0 0 1 1 *', 'UTC')",
					[(n, TASK) for n in names[start : start + 10_000]],
				)

	def set_label(self, name: str, label: str, cur=None) -> None:
		sql = "UPDATE `tabBTU Task Schedule` SET argument_overrides = %s, modified = NOW(6) WHERE name = %s"
		if cur is not None:
			cur.execute(sql, (json.dumps({"label": label}), name))
			return
		with self.conn.cursor() as own:
			own.execute(sql, (json.dumps({"label": label}), name))

	def drop(self) -> None:
		try:
			self.conn.close()
		except Exception:  # noqa: BLE001
			pass
		conn = pymysql.connect(**self.args, autocommit=True)
		try:
			with conn.cursor() as cur:
				cur.execute(f"DROP DATABASE IF EXISTS `{self.name}`")
		finally:
			conn.close()


class Pinger(threading.Thread):
	"""A ping every 0.1 s with the client's usual 2 s timeout."""

	def __init__(self, path: str) -> None:
		super().__init__(daemon=True)
		self.path = path
		self.results: list[tuple[float, bool, float]] = []  # (sent at, answered, ms)
		self.halt = threading.Event()
		self.started = time.monotonic()

	def run(self) -> None:
		while not self.halt.is_set():
			sent = time.monotonic()
			reply = protocol.ping(self.path, timeout=2.0)
			self.results.append((sent, reply.ok, reply.elapsed_ms))
			self.halt.wait(0.1)

	def finish(self) -> dict[str, Any]:
		self.halt.set()
		self.join(10)
		answered = [ms for _, ok, ms in self.results if ok]
		# The longest time without an answered ping: between two answers, from the scenario's start to
		# the first one, from the last one to the end.
		gap, last = 0.0, self.started
		for sent, ok, ms in self.results:
			if ok:
				done = sent + ms / 1000
				gap = max(gap, done - last)
				last = done
		gap = max(gap, time.monotonic() - last)
		return {
			"pings": len(self.results),
			"ping_failed": len(self.results) - len(answered),
			"ping_p50_ms": percentile(answered, 50),
			"ping_p99_ms": percentile(answered, 99),
			"ping_max_ms": max(answered) if answered else None,
			"longest_gap_s": round(gap, 2),
			# (seconds into the scenario, ms) of each ping slower than 500 ms or unanswered
			"slow_pings": [
				(round(t - self.started, 1), ms if ok else None)
				for t, ok, ms in self.results
				if not ok or ms > 500
			],
		}


class World:
	def __init__(self, args: argparse.Namespace) -> None:
		self.args = args
		self.workdir = tempfile.mkdtemp(prefix="btu-flood-", dir="/tmp")
		self.redis = RedisServer(self.workdir)
		self.db: Database | None = None
		self.daemon: DaemonProcess | None = None
		self.client: redis.Redis | None = None

	def start(self) -> None:
		self.redis.start()
		self.client = redis.Redis.from_url(self.redis.url(0))
		self.db = Database()
		self.names = [f"TS-{i:07d}" for i in range(self.args.names)]
		self.db.fill([*self.names, "TS-EDIT", "TS-CANCEL"])
		sock = os.path.join(self.workdir, "btu.sock")
		config = write_toml(
			os.path.join(self.workdir, "btu.toml"),
			{
				"job_mode": "plain",
				"redis_url": self.redis.url(0),
				"socket_path": sock,
				"bench_id": "flood",
				"queue_prefix": "",
				"full_refresh_interval": 7 * 24 * 3600,
				"misfire_grace": 3600,
				"lease_ttl": 10,
				"log_level": "INFO",
			},
			{
				SITE: {
					"db_name": self.db.name,
					"db_user": self.db.args["user"],
					"db_password": self.db.args["password"],
					"db_host": self.db.args["host"],
					"db_port": self.db.args["port"],
				}
			},
		)
		self.daemon = DaemonProcess(self.workdir, config, sock, name="daemon")
		self.daemon.start()
		total = len(self.names) + 2
		deadline = time.time() + 600
		while self.client.zcard(KEYS.next_runs(SITE)) < total:
			if time.time() > deadline or not self.daemon.process.alive():
				raise RuntimeError(f"daemon did not load {total} schedules: {self.daemon.output()[-2000:]}")
			time.sleep(0.05)
		self.watch = psutil.Process(self.daemon.process.pid)

	@property
	def sock(self) -> str:
		return self.daemon.socket_path

	def log_lines(self) -> int:
		with open(self.daemon.process.log_path, "rb") as handle:
			return sum(1 for _ in handle)

	def cpu(self) -> float:
		times = self.watch.cpu_times()
		return times.user + times.system

	def close(self) -> None:
		if self.daemon is not None:
			self.daemon.stop()
		if self.db is not None:
			self.db.drop()
		self.redis.stop()
		if self.args.keep_logs:
			log(f"logs kept in {self.workdir}")
		else:
			shutil.rmtree(self.workdir, ignore_errors=True)


# --- scenarios -----------------------------------------------------------------------------------


def spec_of(world: World, name: str) -> bytes:
	return world.client.hget(KEYS.specs(SITE), name) or b""


def edit_once(world: World, label: str, timeout: float = 30.0) -> float | None:
	"""SQL row changed, then the socket message; ms until Redis has the new spec (None: never)."""
	world.db.set_label("TS-EDIT", label)
	started = time.perf_counter()
	reply = protocol.create_task_schedule(world.sock, "TS-EDIT", SITE, timeout=2.0)
	if not reply.ok:
		return None
	wanted = label.encode()
	while wanted not in spec_of(world, "TS-EDIT"):
		if time.perf_counter() - started > timeout:
			return None
		time.sleep(0.001)
	return (time.perf_counter() - started) * 1000


def attack_scenario(
	world: World, label: str, connections: int = 0, processes: int = 1, mode: str = "hold"
) -> dict[str, Any]:
	seconds = world.args.seconds
	log(f"{label}: {seconds:g} s")
	lines, cpu = world.log_lines(), world.cpu()
	attacker = Attacker(world.sock, connections, processes, mode, seconds=3600) if connections else None
	pinger = Pinger(world.sock)
	pinger.start()
	edits: list[float] = []
	lost = 0
	try:
		ends = time.monotonic() + seconds
		k = 0
		while time.monotonic() < ends:
			ms = edit_once(world, f"{label[:1]}-{k}-{uuid.uuid4().hex[:6]}")
			if ms is None:
				lost += 1
			else:
				edits.append(ms)
			k += 1
			time.sleep(max(0.0, 1.0 - (ms or 0) / 1000))
		result = attacker.finish(now=True) if attacker else {}
	finally:
		pings = pinger.finish()
		if attacker:
			attacker.stop()
	row = {
		"scenario": label,
		**pings,
		"edits": len(edits),
		"edits_lost": lost,
		"edit_p50_ms": percentile(edits, 50),
		"edit_p99_ms": percentile(edits, 99),
		"log_lines": world.log_lines() - lines,
		"daemon_cpu_s": round(world.cpu() - cpu, 1),
		"attacker": result,
	}
	settle(world)
	return row


def settle(world: World) -> None:
	"""Let the held connections time out and the log quiet down before the next scenario."""
	time.sleep(6)


def backlog_scenario(world: World, label: str, unknown: bool) -> dict[str, Any]:
	"""Names pushed while the table is write-locked, then one edit (or cancel); after the unlock."""
	args = world.args
	n = args.names
	names = [f"TS-NONE-{i:07d}" for i in range(n)] if unknown else world.names
	rounds = []
	lines, cpu = world.log_lines(), world.cpu()
	pinger = Pinger(world.sock)
	pinger.start()
	try:
		for round_ in range(args.rounds):
			log(f"{label}: round {round_ + 1}/{args.rounds}, {n:,} names, table locked {args.lock:g} s")
			status = protocol.status(world.sock, timeout=5.0).data
			synced_before = status["counters"]["schedules_synced"]
			tag = f"lock-{round_}-{uuid.uuid4().hex[:6]}"
			if unknown:  # the cancelled schedule must be in Redis first
				world.db.set_label("TS-CANCEL", tag)
				protocol.create_task_schedule(world.sock, "TS-CANCEL", SITE, timeout=2.0)
				while tag.encode() not in spec_of(world, "TS-CANCEL"):
					time.sleep(0.01)
			locker = world.db.connect()
			locked, pushed = threading.Event(), threading.Event()
			unlocked: list[float] = []

			def hold() -> None:
				with locker.cursor() as cur:
					cur.execute("LOCK TABLES `tabBTU Task Schedule` WRITE")
					if not unknown:
						world.db.set_label("TS-EDIT", tag, cur)
					locked.set()
					until = time.monotonic() + args.lock
					while time.monotonic() < until or not pushed.is_set():
						time.sleep(0.01)
					cur.execute("UNLOCK TABLES")
					unlocked.append(time.perf_counter())

			holder = threading.Thread(target=hold)
			holder.start()
			locked.wait(10)
			push_started = time.perf_counter()
			with ThreadPoolExecutor(8) as pool:
				replies = list(
					pool.map(lambda name: protocol.create_task_schedule(world.sock, name, SITE, 5.0), names)
				)
			push_s = time.perf_counter() - push_started
			refused = sum(1 for r in replies if not r.ok)
			if unknown:
				protocol.cancel_task_schedule(world.sock, "TS-CANCEL", SITE, timeout=2.0)
			else:
				protocol.create_task_schedule(world.sock, "TS-EDIT", SITE, timeout=2.0)
			pushed.set()
			holder.join(args.lock + 120)
			locker.close()
			applied = None
			while time.perf_counter() - unlocked[0] < 120:
				spec = spec_of(world, "TS-CANCEL" if unknown else "TS-EDIT")
				if (unknown and not spec) or (not unknown and tag.encode() in spec):
					applied = (time.perf_counter() - unlocked[0]) * 1000
					break
				time.sleep(0.001)
			drained = None
			while time.perf_counter() - unlocked[0] < 300:
				status = protocol.status(world.sock, timeout=5.0)
				if status.ok:
					queue = status.data["internal_queue"]
					synced = status.data["counters"]["schedules_synced"]
					if queue["priority"] + queue["bulk"] == 0 and (unknown or synced >= synced_before + n):
						drained = time.perf_counter() - unlocked[0]
						break
				time.sleep(0.05)
			rounds.append({"applied_ms": applied, "drained_s": drained, "push_s": push_s, "refused": refused})
			if unknown:  # put it back for the next round
				protocol.create_task_schedule(world.sock, "TS-CANCEL", SITE, timeout=2.0)
	finally:
		pings = pinger.finish()
	applied = [r["applied_ms"] for r in rounds if r["applied_ms"] is not None]
	drained = [r["drained_s"] for r in rounds if r["drained_s"] is not None]
	row = {
		"scenario": label,
		**pings,
		"edits": len(applied),
		"edits_lost": len(rounds) - len(applied),
		"edit_p50_ms": percentile(applied, 50),
		"edit_p99_ms": percentile(applied, 99),
		"drain_p50_s": percentile(drained, 50),
		"drain_max_s": max(drained) if drained else None,
		"push_s": round(sum(r["push_s"] for r in rounds) / len(rounds), 2),
		"pushes_refused": sum(r["refused"] for r in rounds),
		"log_lines": world.log_lines() - lines,
		"daemon_cpu_s": round(world.cpu() - cpu, 1),
		"rounds": rounds,
	}
	settle(world)
	return row


# --- output --------------------------------------------------------------------------------------


def render(data: dict[str, Any]) -> str:
	out = [
		f"Socket flood benchmark, {data['started_at']}; {data['machine']}; {data['names']:,} schedules; "
		f"{data['seconds']:g} s per attack; table lock {data['lock']:g} s, {data['rounds']} rounds.",
		"",
		"| scenario | ping p50 / p99 / max ms | pings failed | longest gap s "
		"| edit->Redis p50 / p99 ms | edits | drained s | daemon log lines | daemon CPU s |",
		"|---|---|---|---|---|---|---|---|---|",
	]
	for row in data["results"]:
		if "error" in row:
			out.append(f"| {row['scenario']} | {row['error']} | | | | | | | |")
			continue
		drained = (
			f"{fmt(row.get('drain_p50_s'), 2)} (max {fmt(row.get('drain_max_s'), 2)})"
			if "drain_p50_s" in row
			else "-"
		)
		edits = f"{row['edits']}" + (f" ({row['edits_lost']} lost)" if row["edits_lost"] else "")
		out.append(
			f"| {row['scenario']} | {fmt(row['ping_p50_ms'])} / {fmt(row['ping_p99_ms'])} / "
			f"{fmt(row['ping_max_ms'])} | {row['ping_failed']} of {row['pings']} | {row['longest_gap_s']:g} "
			f"| {fmt(row['edit_p50_ms'])} / {fmt(row['edit_p99_ms'])} | {edits} | {drained} "
			f"| {row['log_lines']:,} | {row['daemon_cpu_s']:g} |"
		)
	out += [
		"",
		"d/e: edit->Redis is measured from the table's unlock (the database answering again) to the edit "
		"(or the cancel) in Redis; drained: from the unlock until the internal queue is empty and every "
		"pushed name was synced. The log lines of d/e include one `schedule_sync_requested` and one "
		"`schedule_synced`/`schedule_removed` line per pushed name.",
	]
	attackers = [(r["scenario"], r["attacker"]) for r in data["results"] if r.get("attacker")]
	if attackers:
		out += [
			"",
			"What the attackers were answered: " + "; ".join(f"{s}: {json.dumps(a)}" for s, a in attackers),
		]
	return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
	parser = argparse.ArgumentParser(
		description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
	)
	parser.add_argument("--quick", action="store_true", help="5 s per attack, 2,000 names, 2 rounds")
	parser.add_argument("--seconds", type=float, help="attack length per scenario (default 30)")
	parser.add_argument("--names", type=int, help="schedules, and names pushed in d/e (default 20,000)")
	parser.add_argument("--rounds", type=int, help="rounds of d and e (default 5)")
	parser.add_argument("--lock", type=float, default=3.0, help="seconds the schedule table is locked in d/e")
	parser.add_argument("--only", help="comma-separated scenario letters (default: a,b,c,d,e)")
	parser.add_argument("--out", default=str(BENCH_DIR / "results"), help="folder for the JSON and Markdown")
	parser.add_argument("--keep-logs", action="store_true", help="keep the daemon's log (path printed)")
	args = parser.parse_args(argv)
	args.seconds = args.seconds or (5.0 if args.quick else 30.0)
	args.names = args.names or (2000 if args.quick else 20_000)
	args.rounds = args.rounds or (2 if args.quick else 5)
	only = set((args.only or "a,b,c,d,e").replace(" ", "").split(","))
	world = World(args)
	data: dict[str, Any] = {
		"started_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
		"machine": f"{psutil.cpu_count()} cores, {round(psutil.virtual_memory().total / 2**30)} GiB, "
		f"Python {platform.python_version()}",
		"names": args.names,
		"seconds": args.seconds,
		"lock": args.lock,
		"rounds": args.rounds,
		"results": [],
	}
	scenarios = [
		("a", lambda: attack_scenario(world, "a. no attack")),
		("b", lambda: attack_scenario(world, "b. 2,000 silent connections held (1 process)", 2000)),
		("b", lambda: attack_scenario(world, "b. 2,000 silent connections held (64 processes)", 2000, 64)),
		(
			"c",
			lambda: attack_scenario(
				world, "c. reconnecting attacker, 2,000 targets (1 process)", 2000, 1, "reconnect"
			),
		),
		(
			"c",
			lambda: attack_scenario(
				world, "c. reconnecting attacker, 10,000 targets (64 processes)", 10_000, 64, "reconnect"
			),
		),
		(
			"d",
			lambda: backlog_scenario(
				world, f"d. {args.names:,} names pushed, table locked, then an edit", False
			),
		),
		(
			"e",
			lambda: backlog_scenario(
				world, f"e. {args.names:,} unknown names pushed, table locked, then a cancel", True
			),
		),
	]
	try:
		world.start()
		for letter, run in scenarios:
			if letter not in only:
				continue
			try:
				data["results"].append(run())
			except Exception as exc:  # noqa: BLE001 - report the row, go on
				log(f"scenario failed: {type(exc).__name__}: {exc}")
				data["results"].append({"scenario": letter, "error": f"failed: {type(exc).__name__}: {exc}"})
	except KeyboardInterrupt:
		log("interrupted")
		return 130
	finally:
		world.close()
	text = render(data)
	out = Path(args.out)
	out.mkdir(parents=True, exist_ok=True)
	stamp = time.strftime("%Y%m%d-%H%M%S")
	(out / f"socket-flood-{stamp}.json").write_text(json.dumps(data, indent=2, default=str))
	(out / f"socket-flood-{stamp}.md").write_text(text + "\n")
	print(text)
	return 0


if __name__ == "__main__":
	sys.exit(main())
