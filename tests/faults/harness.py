"""Helpers of the fault-injection suite: private servers we can break, the run ledger and its checks.

Everything here drives real processes (redis-server, mariadbd, the daemon, rq workers) and
stops only what it started, by pid. No mocks: the daemon is exercised as it runs in production.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

import psutil
import redis

from btu.contracts import jitter, protocol
from btu.contracts.fire_times import FireTimes
from btu.contracts.redis_keys import KEYS
from btu.contracts.schedule_rules import next_fire_times
from btu.scheduler_daemon.jobs import job_id_for

from ..services import REPO, DaemonProcess, Process, free_port, wait_for, write_toml

LONG = os.environ.get("BTU_FAULTS_LONG", "").strip().lower() in ("1", "true", "yes", "on")
SITE = "faults.localhost"
RECORD = "btu.scheduler_daemon.demo_tasks.record_run"
RECORD_JOB = "tests.faults.tasks.record_job"
EVERY_SECOND = "* * * * * *"
# Log lines that mean something inside the daemon broke (as opposed to a fault we injected).
CRASH_PATTERNS = (
	"event=activity_crashed",
	"Traceback (most recent call last)",
	"Exception in thread",
	"--- Logging error ---",
	"Fatal Python error",
)


def scale(short, long):
	"""The SHORT value by default, the LONG one with BTU_FAULTS_LONG=1."""
	return long if LONG else short


def sleep_until_fraction(fraction: float) -> None:
	"""Sleep until the wall clock's fractional second is ``fraction`` (runs fire on whole seconds)."""
	now = time.time()
	target = int(now) + fraction
	if target <= now + 0.02:
		target += 1
	time.sleep(target - now)


# --- servers we can break -------------------------------------------------------------------------


class FaultRedis:
	"""A private redis-server on a fixed port: restartable (empty again: no persistence), pausable."""

	def __init__(
		self,
		workdir: str,
		extra_args: Iterable[str] = (),
		port: int | None = None,
		password: str | None = None,
		username: str | None = None,
	) -> None:
		self.workdir = workdir
		self.port = port or free_port()
		self.extra_args = list(extra_args)
		self.password = password
		self.username = username
		self.process: Process | None = None
		self.restarts = 0

	def start(self) -> "FaultRedis":
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
				*self.extra_args,
			],
			os.path.join(self.workdir, f"redis-{self.port}.log"),
		)
		wait_for(self.ping, 15, what=f"redis-server on port {self.port}")
		return self

	def client(self, **kwargs) -> redis.Redis:
		return redis.Redis(port=self.port, username=self.username, password=self.password, **kwargs)

	def ping(self) -> bool:
		try:
			return bool(self.client(socket_connect_timeout=0.5, socket_timeout=1).ping())
		except redis.RedisError:
			return False

	def url(self, db: int = 0) -> str:
		return f"redis://127.0.0.1:{self.port}/{db}"

	def kill(self) -> None:
		"""SIGKILL: everything in memory is lost."""
		if self.process:
			self.process.stop(signal.SIGKILL)

	def stop(self) -> None:
		if self.process:
			if self.process.alive():
				try:
					os.kill(self.process.pid, signal.SIGCONT)  # a paused server cannot handle SIGTERM
				except ProcessLookupError:
					pass
			self.process.stop()

	def restart(self, down_seconds: float = 0.0) -> None:
		self.kill()
		if down_seconds:
			time.sleep(down_seconds)
		self.restarts += 1
		# The port was ours a moment ago; retry briefly if the kernel has not released it yet.
		deadline = time.monotonic() + 10
		while True:
			try:
				self.start()
				return
			except AssertionError:
				if time.monotonic() > deadline:
					raise
				if self.process:
					self.process.stop(signal.SIGKILL)

	def pause(self) -> None:
		os.kill(self.process.pid, signal.SIGSTOP)

	def resume(self) -> None:
		os.kill(self.process.pid, signal.SIGCONT)


# --- the daemon -----------------------------------------------------------------------------------


def daemon_values(redis_url: str, socket_path: str, **changes) -> dict:
	values = {
		"job_mode": "plain",
		"redis_url": redis_url,
		"socket_path": socket_path,
		"bench_id": "faultbench",
		"full_refresh_interval": 300,
		"misfire_grace": 3600,
		"lease_ttl": 2,
		"log_level": "INFO",
		"queue_prefix": "",
	}
	values.update({k: v for k, v in changes.items() if v is not None})
	for key in [k for k, v in changes.items() if v is None]:
		values.pop(key, None)
	return values


def site_values(site_db) -> dict:
	return {
		"db_name": site_db.name,
		"db_user": site_db.args["user"],
		"db_password": site_db.args["password"],
		"db_host": site_db.args["host"],
		"db_port": site_db.args["port"],
	}


def write_config(workdir: str, name: str, redis_url: str, site_db, **changes) -> tuple[str, str]:
	"""Write ``<name>.toml``; returns (config path, socket path)."""
	socket_path = changes.pop("socket_path", None) or os.path.join(workdir, f"{name}.sock")
	path = os.path.join(workdir, f"{name}.toml")
	write_toml(path, daemon_values(redis_url, socket_path, **changes), {SITE: site_values(site_db)})
	os.chmod(path, 0o600)
	return path, socket_path


class Daemon(DaemonProcess):
	"""The real daemon (``python -m btu.scheduler_daemon run``); one log file across restarts."""

	def __init__(self, workdir: str, config_path: str, socket_path: str, name: str = "daemon") -> None:
		super().__init__(workdir, config_path, socket_path, name)
		self.lives: list[Process] = []
		self.expected_exits: set[int] = set()

	def start(self, wait: bool = True) -> "Daemon":
		super().start(wait)
		self.lives.append(self.process)
		return self

	def sigkill(self) -> None:
		if self.process and self.process.alive():
			self.expected_exits.add(self.process.pid)
			self.process.stop(signal.SIGKILL)

	def stop(self, sig: int = signal.SIGTERM) -> int | None:
		if self.process and self.process.alive():
			self.expected_exits.add(self.process.pid)
		return super().stop(sig)

	def rss(self) -> int:
		return psutil.Process(self.process.pid).memory_info().rss

	def threads(self) -> int:
		return psutil.Process(self.process.pid).num_threads()

	def log(self) -> str:
		try:
			with open(
				os.path.join(self.workdir, f"{self.name}.log"), encoding="utf-8", errors="replace"
			) as handle:
				return handle.read()
		except FileNotFoundError:
			return ""

	def crashes(self) -> list[str]:
		"""Crash evidence: unexpected exits of any life, and crash lines in the log."""
		found = []
		for life in self.lives:
			code = life.proc.poll()
			if code is not None and life.pid not in self.expected_exits:
				found.append(f"pid {life.pid} exited by itself with code {code}")
		for line in self.log().splitlines():
			if any(p in line for p in CRASH_PATTERNS):
				found.append(line[:400])
		return found

	def events(self, event: str) -> list[dict[str, str]]:
		return [parse_logfmt(line) for line in self.log().splitlines() if f"event={event}" in line]


_LOGFMT = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line: str) -> dict[str, str]:
	fields = {}
	for key, value in _LOGFMT.findall(line):
		if value.startswith('"'):
			value = value[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
		fields[key] = value
	parts = line.split(" ", 1)
	fields["_time"] = parts[0]
	return fields


def log_time(fields: dict[str, str]) -> float:
	return (
		datetime.strptime(fields["_time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
	)


class SimpleWorker:
	"""A real ``rq worker`` (SimpleWorker class: no fork per job, kind to a 2-core machine)."""

	def __init__(self, workdir: str, redis_url: str, queues: list[str], name: str = "worker") -> None:
		self.process = Process(
			[
				sys.executable,
				"-m",
				"rq.cli",
				"worker",
				"-u",
				redis_url,
				"-w",
				"rq.worker.SimpleWorker",
				"--name",
				f"{name}-{os.getpid()}-{time.monotonic_ns() % 10**6}",
				*queues,
			],
			os.path.join(workdir, f"{name}.log"),
			env={**os.environ, "PYTHONPATH": str(REPO)},
			cwd=str(REPO),
		)

	def stop(self) -> None:
		self.process.stop()


# --- the ledger: which runs exist, and the exactly-once check ------------------------------------


@dataclass(frozen=True)
class Run:
	schedule: str
	fire_ts: int
	enqueued_at: float | None  # when the daemon enqueued it (RQ's enqueued_at)
	source: str = "queue"


def _parse_rq_time(value: bytes | str | None) -> float | None:
	if not value:
		return None
	text = value.decode() if isinstance(value, bytes) else value
	for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
		try:
			return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
		except ValueError:
			continue
	return None


def queued_runs(client: redis.Redis, schedules: Iterable[str], queue: str = "default") -> list[Run]:
	"""Every BTU job id in an RQ queue list (no worker consumes it), once per occurrence.

	The same id twice in the list is the same run enqueued twice: RQ would execute it twice.
	"""
	by_prefix = {}
	for name in schedules:
		sample = job_id_for(SITE, name, 0)
		prefix, digest = sample.rsplit("-", 2)[0], sample.rsplit("-", 1)[1]
		by_prefix[(prefix, digest)] = name
	ids = [i.decode() for i in client.lrange(f"rq:queue:{queue}", 0, -1)]
	pipe = client.pipeline(transaction=False)
	for job_id in ids:
		pipe.hget(f"rq:job:{job_id}", "enqueued_at")
	stamps = pipe.execute() if ids else []
	runs = []
	for job_id, stamp in zip(ids, stamps):
		try:
			prefix, ts, digest = job_id.rsplit("-", 2)
			name = by_prefix.get((prefix, digest))
		except ValueError:
			name = None
		if name is None:
			continue
		runs.append(Run(name, int(ts), _parse_rq_time(stamp)))
	return runs


def recorded_runs(path: str) -> list[Run]:
	"""Runs executed by workers through tests.faults.tasks.record_job (one JSON line each)."""
	runs = []
	if not os.path.exists(path):
		return runs
	with open(path, encoding="utf-8") as handle:
		for line in handle:
			try:
				data = json.loads(line)
			except json.JSONDecodeError:
				continue
			runs.append(Run(data["schedule"], int(data["fire_ts"]), data.get("enqueued_at"), "worker"))
	return runs


def markers(client: redis.Redis, schedule: str) -> set[int]:
	"""The fire times whose markers hash (one per fire time) holds a marker of this schedule."""
	found = set()
	for key in client.scan_iter(match=KEYS.fired_pattern(SITE), count=1000):
		if client.hexists(key, schedule):
			found.add(int(key.decode().rsplit(":", 1)[1]))
	return found


@dataclass
class Outage:
	"""A span in which the daemon could not enqueue on time (a fault we injected)."""

	start: float
	end: float

	def covers(self, ts: float, slack: float = 1.0) -> bool:
		return self.start - slack <= ts <= self.end + slack


@dataclass
class Verdict:
	fire_times: int = 0
	exact: int = 0
	collapsed: int = 0
	missing: list[tuple[str, int]] = field(default_factory=list)
	doubled: list[tuple[str, int, int]] = field(default_factory=list)
	unexpected: list[tuple[str, int]] = field(default_factory=list)

	def merge(self, other: "Verdict") -> "Verdict":
		self.fire_times += other.fire_times
		self.exact += other.exact
		self.collapsed += other.collapsed
		self.missing += other.missing
		self.doubled += other.doubled
		self.unexpected += other.unexpected
		return self

	def summary(self) -> str:
		return (
			f"{self.fire_times} fire times: {self.exact} run exactly once, {self.collapsed} collapsed into a "
			f"late catch-up run, {len(self.missing)} missing {self.missing[:10]}, {len(self.doubled)} doubled "
			f"{self.doubled[:10]}, {len(self.unexpected)} unexpected {self.unexpected[:10]}"
		)

	@property
	def ok(self) -> bool:
		return not self.missing and not self.doubled and not self.unexpected


# A schedule's rule in the ledger: a cron string, or its fire times with jitter (add_jittered).
Rule = str | FireTimes


def add_jittered(site_db, crons: dict[str, Rule], task: str = "BTU-F0001") -> None:
	"""Schedules with jitter beside the others: their runs must be exactly once at the delayed times."""
	for name, cron, seconds in (("TS-J5", "*/5 * * * * *", 4), ("TS-J3", "1/3 * * * * *", 2)):
		site_db.add_schedule(name, task, cron, jitter_seconds=seconds)
		crons[name] = FireTimes(cron, "UTC", jitter=seconds, key=jitter.identity(SITE, name))


def expected_fire_times(cron: Rule, start: float, end: float, tz: str = "UTC") -> list[int]:
	"""Fire times t with start <= t <= end."""
	if isinstance(cron, FireTimes):
		found, after = [], start - 1
		while (following := cron.next_after(after)) is not None and following <= end:
			found.append(following)
			after = following
		return found
	out = []
	after = start - 1
	while True:
		batch = next_fire_times(cron, tz, after, 500)
		for instant in batch:
			ts = int(instant.timestamp())
			if ts > end:
				return out
			out.append(ts)
		if len(batch) < 500:
			return out
		after = out[-1]


def check_runs(
	runs: Iterable[Run], crons: dict[str, Rule], start: float, end: float, outages: list[Outage] | None = None
) -> Verdict:
	"""Exactly one run per (schedule, fire time) in [start, end].

	A fire time that passed while the daemon could not enqueue (an injected outage) is covered by
	the one late catch-up run of that outage: docs/architecture.md "Many missed fires of one schedule
	collapse into one run". It counts as collapsed only when the run before it was enqueued after
	it (so it really was late) and it lies within an outage; otherwise it is missing.
	"""
	outages = outages or []
	verdict = Verdict()
	by_schedule: dict[str, Counter] = defaultdict(Counter)
	enqueued_at: dict[tuple[str, int], float | None] = {}
	for run in runs:
		by_schedule[run.schedule][run.fire_ts] += 1
		enqueued_at.setdefault((run.schedule, run.fire_ts), run.enqueued_at)
	for name, cron in crons.items():
		counts = by_schedule.get(name, Counter())
		expected = expected_fire_times(cron, start, end)
		expected_set = set(expected)
		verdict.fire_times += len(expected)
		runs_sorted = sorted(counts)
		for ts in expected:
			n = counts.get(ts, 0)
			if n == 1:
				verdict.exact += 1
			elif n > 1:
				verdict.doubled.append((name, ts, n))
			else:
				earlier = [t for t in runs_sorted if t < ts]
				previous_run = earlier[-1] if earlier else None
				late_at = enqueued_at.get((name, previous_run)) if previous_run is not None else None
				if late_at is not None and late_at >= ts and any(o.covers(ts) for o in outages):
					verdict.collapsed += 1
				else:
					verdict.missing.append((name, ts))
		for ts, n in counts.items():
			if start <= ts <= end and ts not in expected_set:
				verdict.unexpected.append((name, ts))
			elif ts < start or ts > end:
				if n > 1:
					verdict.doubled.append((name, ts, n))
	return verdict


def wait_caught_up(client: redis.Redis, names: Iterable[str], horizon: float, timeout: float = 30.0) -> None:
	"""Wait until every schedule's next fire time in Redis is after ``horizon`` (all before it handled)."""
	names = list(names)

	def done() -> bool:
		scores = client.zmscore(KEYS.next_runs(SITE), names)
		return all(s is not None and s > horizon for s in scores)

	wait_for(done, timeout, 0.1, what=f"the daemon to handle every fire time up to {horizon:.0f}")


def add_every_second(
	site_db, count: int, prefix: str = "TS-F", task: str = "BTU-F0001", cron: str = EVERY_SECOND
) -> dict[str, str]:
	"""``count`` schedules of one plain task (no worker needed: the queue is the ledger)."""
	site_db.add_task(task, RECORD, {"path": "/dev/null", "label": "fault"})
	crons = {}
	for i in range(count):
		name = f"{prefix}{i:04d}"
		site_db.add_schedule(name, task, cron)
		crons[name] = cron
	return crons


def raw_request(
	path: str, payload: bytes, timeout: float = 15.0, half_close: bool = True, hold_open: float = 0.0
) -> dict | None:
	"""Send raw bytes on the daemon's socket and read its one-line JSON reply (None: no reply)."""
	with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
		sock.settimeout(timeout)
		sock.connect(path)
		try:
			sock.sendall(payload)
			if half_close:
				sock.shutdown(socket.SHUT_WR)
		except (BrokenPipeError, ConnectionResetError):
			pass
		if hold_open:
			time.sleep(hold_open)
		try:
			data = protocol.read_reply_line(sock)
		except (ConnectionResetError, socket.timeout):
			data = b""
	if not data.strip():
		return None
	try:
		return json.loads(data.split(b"\n")[0])
	except ValueError:
		return {"unparseable": data[:200].decode(errors="replace")}


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
	return subprocess.run(
		[sys.executable, "-m", "btu.scheduler_daemon", *args],
		capture_output=True,
		text=True,
		cwd=str(REPO),
		env={**os.environ, **(env or {})},
		timeout=timeout,
	)


# --- figures of a run (printed at the end; BTU_FAULTS_REPORT=path writes them as JSON) ------------


class Stats:
	KEYS = (
		"faults_injected",
		"daemon_sigkills",
		"redis_restarts",
		"redis_pauses",
		"mariadb_restarts",
		"row_locks",
		"leader_takeovers",
		"edits",
		"fire_times_checked",
		"runs_exactly_once",
		"fire_times_collapsed",
		"runs_missing",
		"runs_doubled",
		"runs_unexpected",
		"chained_runs",
		"chained_doubled",
		"bad_inputs_sent",
		"crashes",
	)

	def __init__(self) -> None:
		self.tests: dict[str, dict[str, int]] = {}
		self.started = time.time()

	def begin(self, test: str) -> None:
		self.tests.setdefault(test, {key: 0 for key in self.KEYS})

	def add(self, test: str, **amounts: int) -> None:
		self.begin(test)
		for key, amount in amounts.items():
			self.tests[test][key] += amount

	def verdict(self, test: str, verdict: "Verdict") -> None:
		self.add(
			test,
			fire_times_checked=verdict.fire_times,
			runs_exactly_once=verdict.exact,
			fire_times_collapsed=verdict.collapsed,
			runs_missing=len(verdict.missing),
			runs_doubled=len(verdict.doubled),
			runs_unexpected=len(verdict.unexpected),
		)

	def figures(self) -> dict:
		totals = {key: sum(t[key] for t in self.tests.values()) for key in self.KEYS}
		return {
			"mode": "LONG" if LONG else "SHORT",
			"tests": len(self.tests),
			"seconds": round(time.time() - self.started, 1),
			**totals,
			"per_test": self.tests,
		}


STATS = Stats()
