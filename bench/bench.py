"""Benchmark the BTU scheduler daemon beside rq-scheduler and RQ's CronScheduler (``rq cron``).

Run through ``bench/run`` (it builds the virtualenvs and passes their paths). Every system gets the
same workload, one after the other, on one private redis-server: N schedules on one cron rule
(``* * * * *`` in the full run), observed over two consecutive fire times F1 and F2 without any
worker. For each run we read RQ's ``enqueued_at`` and compare it with the fire time it belongs to.

Where the fire time of a run comes from:
  * BTU puts it in the job (``job.meta["btu_fire_time"]``): exact.
  * The peers do not; a run is given the latest fire time at or before its ``enqueued_at``.
    A run more than one period late therefore counts for the next fire time, and its own fire
    time shows it as missing (the count of runs per fire time stays exact either way).

rq-scheduler re-enqueues the same job id at every fire (the job hash is overwritten), so its runs are
recorded while they happen by a light poller of the queue list; BTU's and rq cron's jobs have one id
per run and are read from Redis after the window.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import pymysql  # noqa: E402
import redis  # noqa: E402

from btu import __version__ as BTU_VERSION  # noqa: E402
from btu.contracts import protocol  # noqa: E402
from btu.scheduler_daemon.schema import init_database  # noqa: E402
from tests.services import MARIADB, DaemonProcess, Process, RedisServer, write_toml  # noqa: E402

sys.path.insert(0, str(BENCH_DIR))
import limit_probe  # noqa: E402

SITE = "bench.localhost"
BENCH_ID = "bench"
QUEUE = "default"
QUEUE_KEY = f"rq:queue:{QUEUE}"
NEXT_RUNS = f"btu:{SITE}:next_runs"
TIMINGS = f"btu:{SITE}:timings"
LEASE_KEY = f"btu:{BENCH_ID}:lease"

BTU = "BTU daemon"
RQCRON = "rq cron"
RQSCHED = "rq-scheduler"
PROBE = "limit probe"
PROBE_REPEAT = 3


@dataclass
class Mode:
	name: str
	sizes: list[int]
	period: int  # seconds between two fire times
	btu_cron: str  # BTU: 5 fields, or 6 with seconds first
	rqcron_cron: str  # croniter (rq cron): 6 fields put the seconds last
	rqsched_cron: str  # crontab (rq-scheduler): 7 fields, seconds first, year last
	edits: int  # edits measured alone (and again during a refresh)
	margin: float  # a system must be ready this long before its first fire time
	load_budget: float  # a peer that needs longer to load N schedules is reported, not run
	rss_budget_mb: float  # a peer above this RSS is stopped and reported
	sched_intervals: list[float] = field(default_factory=lambda: [60.0, 1.0])


FULL = Mode(
	"full",
	[1000, 10000, 100000],
	60,
	"* * * * *",
	"* * * * *",
	"* * * * *",
	edits=1000,
	margin=3.0,
	load_budget=300.0,
	rss_budget_mb=4096,
)
QUICK = Mode(
	"quick",
	[10, 40],
	2,
	"*/2 * * * * *",
	"* * * * * */2",
	"*/2 * * * * * *",
	edits=20,
	margin=0.4,
	load_budget=30.0,
	rss_budget_mb=1024,
)


def log(message: str) -> None:
	print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sleep_until(ts: float) -> None:
	while True:
		left = ts - time.time()
		if left <= 0:
			return
		time.sleep(min(left, 0.5))


def wait_until(predicate: Callable[[], Any], deadline: float, interval: float = 0.05) -> float | None:
	"""Poll until predicate() is true (returns the time) or the wall-clock deadline passes (None)."""
	while True:
		if predicate():
			return time.time()
		if time.time() >= deadline:
			return None
		time.sleep(interval)


def percentile(values: list[float], pct: float) -> float | None:
	if not values:
		return None
	ordered = sorted(values)
	rank = max(1, math.ceil(pct / 100 * len(ordered)))
	return ordered[rank - 1]


def parse_rq_time(raw: bytes | str | None) -> float | None:
	if not raw:
		return None
	text = raw.decode() if isinstance(raw, bytes) else raw
	text = text.rstrip("Z")
	stamp = datetime.fromisoformat(text)
	if stamp.tzinfo is None:
		stamp = stamp.replace(tzinfo=timezone.utc)
	return stamp.timestamp()


# --- processes -------------------------------------------------------------------------------


class ProcWatch:
	"""CPU seconds and peak RSS of one process (psutil; peak = the kernel's VmHWM)."""

	def __init__(self, pid: int) -> None:
		self.pid = pid
		self.proc = psutil.Process(pid)
		self.max_rss = 0.0

	def cpu(self) -> float:
		times = self.proc.cpu_times()
		return times.user + times.system

	def rss_mb(self) -> float:
		rss = self.proc.memory_info().rss / 2**20
		self.max_rss = max(self.max_rss, rss)
		return rss

	def peak_rss_mb(self) -> float:
		try:
			for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
				if line.startswith("VmHWM:"):
					return max(self.max_rss, int(line.split()[1]) / 1024)
		except OSError:
			pass
		return self.max_rss


class RssGuard(threading.Thread):
	"""Samples RSS twice a second; flags (and SIGKILLs) a process that exceeds the budget."""

	def __init__(self, watch: ProcWatch, budget_mb: float) -> None:
		super().__init__(daemon=True)
		self.watch = watch
		self.budget_mb = budget_mb
		self.exceeded = False
		self.stop_event = threading.Event()

	def run(self) -> None:
		while not self.stop_event.wait(0.5):
			try:
				if self.watch.rss_mb() > self.budget_mb:
					self.exceeded = True
					os.kill(self.watch.pid, signal.SIGKILL)
					return
			except (psutil.Error, OSError):
				return

	def stop(self) -> None:
		self.stop_event.set()


class QueueCollector(threading.Thread):
	"""Records (job id, enqueued_at) of every id pushed on the queue list, while it happens."""

	def __init__(self, url: str, interval: float = 0.2) -> None:
		super().__init__(daemon=True)
		self.client = redis.Redis.from_url(url)
		self.interval = interval
		self.records: list[tuple[str, float | None]] = []
		self.position = self.client.llen(QUEUE_KEY)
		self.stop_event = threading.Event()

	def poll(self) -> None:
		end = self.client.llen(QUEUE_KEY)
		if end <= self.position:
			return
		ids = self.client.lrange(QUEUE_KEY, self.position, end - 1)
		self.position = end
		for start in range(0, len(ids), 5000):
			chunk = ids[start : start + 5000]
			pipe = self.client.pipeline(transaction=False)
			for job_id in chunk:
				pipe.hget(b"rq:job:" + job_id, "enqueued_at")
			for job_id, raw in zip(chunk, pipe.execute()):
				self.records.append((job_id.decode(), parse_rq_time(raw)))

	def run(self) -> None:
		while not self.stop_event.wait(self.interval):
			self.poll()

	def finish(self) -> list[tuple[str, float | None]]:
		self.stop_event.set()
		self.join(5)
		self.poll()
		return self.records


class VisibilityWatch(threading.Thread):
	"""When the queue list first holds all runs of each fire time: LLEN polled every millisecond from
	just before a fire time for 2 s, then every 10 ms (independent of the jobs' enqueued_at)."""

	def __init__(self, url: str, base: int, n: int, fires: list[int]) -> None:
		super().__init__(daemon=True)
		self.client = redis.Redis.from_url(url)
		self.base, self.n, self.fires = base, n, fires
		self.reached: list[float | None] = [None] * len(fires)
		self.stop_event = threading.Event()

	def run(self) -> None:
		k = 0
		while k < len(self.fires) and not self.stop_event.is_set():
			fire = self.fires[k]
			now = time.time()
			if now < fire - 0.05:
				self.stop_event.wait(min(0.5, fire - 0.05 - now))
				continue
			length = self.client.llen(QUEUE_KEY)
			seen = time.time()
			while k < len(self.fires) and length >= self.base + (k + 1) * self.n:
				self.reached[k] = seen
				k += 1
			if k < len(self.fires):
				self.stop_event.wait(0.001 if seen - self.fires[k] < 2 else 0.01)

	def finish(self) -> list[float | None]:
		self.stop_event.set()
		self.join(5)
		length, seen = self.client.llen(QUEUE_KEY), time.time()  # reached between two polls
		for k, fire in enumerate(self.fires):
			if self.reached[k] is None and length >= self.base + (k + 1) * self.n:
				self.reached[k] = seen
		return [None if t is None else round(t - f, 4) for t, f in zip(self.reached, self.fires)]


# --- runs and their statistics ----------------------------------------------------------------

Run = tuple[str, float, float | None]  # (schedule key, enqueued_at, fire time if the job says it)


def read_queue_runs(client: redis.Redis, kind: str) -> list[Run]:
	"""Every job on the queue list (repeats kept), with its schedule key and fire time."""
	from rq.serializers import resolve_serializer

	serializer = resolve_serializer()
	ids = client.lrange(QUEUE_KEY, 0, -1)
	runs: list[Run] = []
	field_name = "meta" if kind == BTU else "description"
	for start in range(0, len(ids), 2000):
		chunk = ids[start : start + 2000]
		pipe = client.pipeline(transaction=False)
		for job_id in chunk:
			pipe.hmget(b"rq:job:" + job_id, "enqueued_at", field_name)
		for job_id, (enqueued, extra) in zip(chunk, pipe.execute()):
			at = parse_rq_time(enqueued)
			if at is None:
				continue
			if kind == BTU:
				meta = serializer.loads(extra) if extra else {}
				runs.append((meta.get("btu_schedule", job_id.decode()), at, meta.get("btu_fire_time")))
			else:
				found = re.search(r"i=(\d+)", (extra or b"").decode())
				runs.append((found.group(1) if found else job_id.decode(), at, None))
	return runs


def analyse(runs: list[Run], n: int, fires: list[int], period: int) -> dict[str, Any]:
	first = fires[0]
	per_fire: dict[int, dict[str, list[float]]] = {f: {} for f in fires}
	for key, enqueued, fire in runs:
		if fire is None:
			fire = first + math.floor((enqueued - first) / period) * period
		bucket = per_fire.get(int(fire))
		if bucket is not None:
			bucket.setdefault(key, []).append(enqueued)
	lateness: list[float] = []
	fire_stats = []
	for fire in fires:
		bucket = per_fire[fire]
		times = [t for ts in bucket.values() for t in ts]
		late = [(t - fire) * 1000 for t in times]
		lateness.extend(late)
		fire_stats.append(
			{
				"fire_time": fire,
				"fire_time_iso": datetime.fromtimestamp(fire, timezone.utc).isoformat(),
				"runs": len(times),
				"schedules": len(bucket),
				"missing": n - len(bucket),
				"duplicates": len(times) - len(bucket),
				"first_enqueued_s": round(min(times) - fire, 4) if times else None,
				"last_enqueued_s": round(max(times) - fire, 4) if times else None,
				"lateness_p50_ms": percentile(late, 50),
				"lateness_p99_ms": percentile(late, 99),
				"lateness_max_ms": max(late) if late else None,
			}
		)
	complete = [
		f["last_enqueued_s"] for f in fire_stats if f["missing"] == 0 and f["last_enqueued_s"] is not None
	]
	return {
		"fires": fire_stats,
		"runs_per_fire": [f["runs"] for f in fire_stats],
		"missing": sum(f["missing"] for f in fire_stats),
		"duplicates": sum(f["duplicates"] for f in fire_stats),
		"lateness_p50_ms": percentile(lateness, 50),
		"lateness_p99_ms": percentile(lateness, 99),
		"lateness_max_ms": max(lateness) if lateness else None,
		"all_enqueued_after_s": max(complete) if len(complete) == len(fire_stats) else None,
		"last_enqueued_after_s": max(
			(f["last_enqueued_s"] for f in fire_stats if f["last_enqueued_s"] is not None), default=None
		),
	}


# --- the common observation window --------------------------------------------------------------


def observe(
	mode: Mode,
	client: redis.Redis,
	watch: ProcWatch,
	n: int,
	ready_at: float,
	alive: Callable[[], bool],
	url: str,
	busy_from: Callable[[int], float | None] | None = None,
	margin: float | None = None,
) -> dict[str, Any]:
	"""Wait for the first fire time after ready_at, watch it and the next one; CPU and RSS meanwhile.

	``busy_from(fire)``: when the system began working towards that fire time (BTU prepares its runs
	ahead): the idle window ends 0.25 s before it (else 1.5 s before the next fire time)."""
	period = mode.period
	f1 = math.ceil((ready_at + (mode.margin if margin is None else margin)) / period) * period
	f2, f3 = f1 + period, f1 + 2 * period
	lead = min(1.0, period / 4)
	log(
		f"  fire times {datetime.fromtimestamp(f1, timezone.utc):%H:%M:%S} and "
		f"{datetime.fromtimestamp(f2, timezone.utc):%H:%M:%S} UTC"
	)
	sleep_until(f1 - lead)
	base = client.llen(QUEUE_KEY)
	visibility = VisibilityWatch(url, base, n, [f1, f2])
	visibility.start()
	t0, c0 = time.time(), watch.cpu()
	drained1 = wait_until(lambda: client.llen(QUEUE_KEY) >= base + n or not alive(), f2 - lead)
	samples: list[tuple[float, float]] = []
	if drained1 is not None and alive():
		start, end = drained1 + min(1.0, period / 10), f2 - min(1.5, period / 5)
		if end - start >= min(3.0, period / 4):
			sleep_until(start)
			while alive():
				samples.append((time.time(), watch.cpu()))
				if time.time() >= end:
					break
				time.sleep(min(0.25, max(0.0, end - time.time())))
	sleep_until(f2 - lead)
	t1, c1 = time.time(), watch.cpu() if alive() else None
	drained2 = wait_until(lambda: client.llen(QUEUE_KEY) >= base + 2 * n or not alive(), f3 - lead)
	busy_cpu = None if c1 is None else (c1 - c0) / (t1 - t0) * 60
	visible = visibility.finish()
	return {
		"fires": [f1, f2],
		"window_end": time.time(),
		"complete_in_window": drained2 is not None and alive(),
		"idle": idle_figures(samples, busy_from(f2) if busy_from and samples else None, min(3.0, period / 4)),
		"visible_after_s": visible,
		"cpu_s_per_min_enqueuing": None if busy_cpu is None else round(busy_cpu, 3),
		"cpu_window_s": round(t1 - t0, 2),
		"peak_rss_mb": round(watch.peak_rss_mb(), 1),
	}


def idle_figures(samples: list[tuple[float, float]], busy: float | None, shortest: float) -> dict | None:
	"""CPU over the sampled idle window, cut 0.25 s before the system got busy again (if it did)."""
	if busy is not None:
		samples = [x for x in samples if x[0] <= busy - 0.25]
	if len(samples) < 2 or samples[-1][0] - samples[0][0] < shortest:
		return None
	(s0, i0), (s1, i1) = samples[0], samples[-1]
	return {
		"seconds": round(s1 - s0, 2),
		"cpu_s": round(i1 - i0, 4),
		"cpu_pct": round(100 * (i1 - i0) / (s1 - s0), 3),
		"ends_before_preparing": busy is not None,
	}


# --- BTU ---------------------------------------------------------------------------------------


class SiteDatabase:
	"""A MariaDB database created for the bench (and only that one is dropped)."""

	def __init__(self) -> None:
		self.name = f"btu_bench_{uuid.uuid4().hex[:10]}"
		self.args = dict(MARIADB)
		init_database(self.args, self.name)
		self.conn = pymysql.connect(**self.args, database=self.name, autocommit=True)

	def fill(self, n: int, cron: str) -> float:
		started = time.perf_counter()
		with self.conn.cursor() as cur:
			cur.execute(
				"INSERT INTO `tabBTU Task` (name, creation, modified, owner, modified_by, docstatus, desc_short,"
				" function_string, arguments, max_task_duration, queue_name) VALUES ('BTU-00001', NOW(6), NOW(6),"
				" 'Administrator', 'Administrator', 1, 'bench no-op', 'bench_noop.noop', NULL, 600, %s)",
				(QUEUE,),
			)
			sql = (
				"INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task, enabled,"
				" queue_name, run_frequency, cron_string, cron_timezone) VALUES"
				" (%s, NOW(6), NOW(6), 'Administrator', 'Administrator', 'BTU-00001', 1, %s, 'Cron Style', %s,"
				" 'UTC')"
			)
			for start in range(0, n, 10000):
				cur.executemany(
					sql, [(schedule_name(i), QUEUE, cron) for i in range(start, min(n, start + 10000))]
				)
		return time.perf_counter() - started

	def set_cron(self, name: str, cron: str) -> None:
		with self.conn.cursor() as cur:
			cur.execute(
				"UPDATE `tabBTU Task Schedule` SET cron_string = %s, modified = NOW(6) WHERE name = %s",
				(cron, name),
			)

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


def schedule_name(i: int) -> str:
	return f"TS-{i:07d}"


def btu_status(sock: str) -> dict[str, Any]:
	reply = protocol.status(sock, timeout=5.0)
	if not reply.ok:
		raise RuntimeError(f"daemon status failed: {reply.message}")
	return reply.data


def run_refresh(sock: str, n: int, timeout: float) -> tuple[float, float]:
	"""Ask for a full refresh; return (start, end) once all N schedules were written back."""
	before = btu_status(sock)["counters"]
	started = time.time()
	reply = protocol.refresh(sock, timeout=5.0)
	if not reply.ok:
		raise RuntimeError(f"refresh request failed: {reply.message}")

	def done() -> bool:
		status = btu_status(sock)
		counters, queue = status["counters"], status["internal_queue"]
		return (
			counters["refreshes"] > before["refreshes"]
			and queue["priority"] + queue["bulk"] == 0
			and counters["schedules_synced"] >= before["schedules_synced"] + n
		)

	ended = wait_until(done, started + timeout, 0.02)
	if ended is None:
		raise RuntimeError(f"full refresh of {n} schedules did not finish within {timeout} s")
	return started, ended


def edit_cron(i: int) -> str:
	"""A yearly rule per edit, so the edited schedule's next fire time visibly moves."""
	return f"{i % 60} {(i // 60) % 24} 1 1 *"


def measure_edits(
	sock: str, db: SiteDatabase, client: redis.Redis, names: list[str], offset: int
) -> list[tuple[float, float, float]]:
	"""(start, end, ms) per edit: SQL row changed, then socket message -> the new rule in Redis (its
	timing, written with the new next fire time in one script; a due fire time is kept across a change
	of rule, and nothing fires while the bench holds the lease, so the score alone can stay put)."""
	out = []
	for k, name in enumerate(names):
		cron = edit_cron(offset + k)
		db.set_cron(name, cron)
		want = f"{cron}|UTC".encode()
		started = time.perf_counter()
		wall = time.time()
		reply = protocol.create_task_schedule(sock, name, SITE, timeout=5.0)
		if not reply.ok:
			raise RuntimeError(f"create_task_schedule failed: {reply.message}")
		while client.hget(TIMINGS, name) != want:
			if time.perf_counter() - started > 10:
				raise RuntimeError(f"edit of {name} not visible in Redis after 10 s")
			time.sleep(0.0002)
		elapsed = time.perf_counter() - started
		out.append((wall, wall + elapsed, elapsed * 1000))
	return out


class RefreshLoop(threading.Thread):
	"""Keeps a full refresh running back to back; records each one's (start, end)."""

	def __init__(self, sock: str, n: int) -> None:
		super().__init__(daemon=True)
		self.sock, self.n = sock, n
		self.intervals: list[tuple[float, float]] = []
		self.stop_event = threading.Event()
		self.error: str | None = None

	def run(self) -> None:
		while not self.stop_event.is_set():
			try:
				self.intervals.append(run_refresh(self.sock, self.n, 300))
			except RuntimeError as exc:
				self.error = str(exc)
				return


def start_profiler(ctx: "Bench", pid: int, name: str) -> Process | None:
	"""--profile: py-spy (from the btu venv) samples the daemon; folded stacks per thread."""
	if not ctx.args.profile:
		return None
	spy = Path(sys.executable).parent / "py-spy"
	out = Path(ctx.args.profile)
	out.mkdir(parents=True, exist_ok=True)
	log(f"  profiling pid {pid} into {out / (name + '.folded')}")
	return Process(
		[
			str(spy),
			"record",
			"--pid",
			str(pid),
			"--format",
			"raw",
			"--threads",
			"--nonblocking",
			"--rate",
			"250",
			"-o",
			str(out / f"{name}.folded"),
		],
		str(out / f"{name}.py-spy.log"),
	)


def run_btu(ctx: "Bench", n: int, with_refresh_edits: bool) -> dict[str, Any]:
	mode = ctx.mode
	result: dict[str, Any] = {"system": BTU, "n": n, "version": BTU_VERSION}
	ctx.flush()
	db = SiteDatabase()
	ctx.databases.append(db)
	daemon = profiler = None
	try:
		result["sql_insert_s"] = round(db.fill(n, mode.btu_cron), 2)
		workdir = ctx.workdir
		sock = os.path.join(workdir, "btu.sock")
		config = write_toml(
			os.path.join(workdir, "btu.toml"),
			{
				"job_mode": "plain",
				"redis_url": ctx.redis.url(0),
				"socket_path": sock,
				"bench_id": BENCH_ID,
				"queue_prefix": "",
				"full_refresh_interval": 7 * 24 * 3600,
				"misfire_grace": 3600,
				"lease_ttl": 10,
				"log_level": "INFO",
			},
			{
				SITE: {
					"db_name": db.name,
					"db_user": db.args["user"],
					"db_password": db.args["password"],
					"db_host": db.args["host"],
					"db_port": db.args["port"],
				}
			},
		)
		client = ctx.client
		started = time.time()
		daemon = DaemonProcess(workdir, config, sock, name=f"btu-{n}")
		daemon.start(wait=False)
		ctx.processes.append(daemon.process)
		watch = ProcWatch(daemon.process.pid)
		profiler = start_profiler(ctx, daemon.process.pid, f"btu-{n}")
		loaded = wait_until(
			lambda: client.zcard(NEXT_RUNS) >= n or not daemon.process.alive(), started + 600, 0.01
		)
		if loaded is None or not daemon.process.alive():
			raise RuntimeError(f"daemon did not load {n} schedules: {daemon.output()[-2000:]}")
		result["cold_refresh_s"] = round(loaded - started, 3)
		wait_until(lambda: protocol.ping(sock, 0.5).ok, time.time() + 20)
		start, end = run_refresh(sock, n, 300)
		result["periodic_refresh_s"] = round(end - start, 3)
		log(
			f"  BTU N={n}: cold start+load {result['cold_refresh_s']} s, refresh {result['periodic_refresh_s']} s"
		)
		base = client.llen(QUEUE_KEY)

		def preparing_since(fire: int) -> float | None:
			"""When the daemon began preparing the runs of ``fire`` (status: prepare.recent)."""
			try:
				recent = btu_status(sock).get("prepare", {}).get("recent", [])
			except (RuntimeError, OSError):
				return None
			starts = [r["started_at"] for r in recent if r.get("fire_time") == fire]
			return min(starts) if starts else None

		# Steady state: the first fire time observed leaves the daemon time to prepare its runs (about
		# 100-300 us a run here); one closer to a cold start is partly enqueued the ordinary way.
		window = observe(
			mode,
			client,
			watch,
			n,
			time.time(),
			daemon.process.alive,
			ctx.redis.url(0),
			preparing_since,
			margin=max(mode.margin, 2.0 + n * 300e-6),
		)
		# Runs carry their fire time: give late ones a little longer before reading (counts stay exact).
		wait_until(lambda: client.llen(QUEUE_KEY) >= base + 2 * n, time.time() + max(10, mode.period))
		# Hold the enqueuing lease ourselves: the daemon stops firing (its fire transactions abort),
		# so the edit measurements below are not disturbed by the next fire times.
		client.set(LEASE_KEY, "bench-pause", px=3_600_000)
		runs = read_queue_runs(client, BTU)
		result.update(window)
		result.update(analyse(runs, n, window["fires"], mode.period))
		names = [schedule_name(i) for i in range(n)]
		count = min(mode.edits, max(1, n // 2))
		alone = measure_edits(sock, db, client, names[:count], 0)
		result["edits"] = len(alone)
		result["edit_p50_ms"] = percentile([e[2] for e in alone], 50)
		result["edit_p99_ms"] = percentile([e[2] for e in alone], 99)
		if with_refresh_edits:
			loop = RefreshLoop(sock, n)
			loop.start()
			wait_until(
				lambda: btu_status(sock)["internal_queue"]["bulk"] > 0 or loop.intervals,
				time.time() + 30,
				0.01,
			)
			during = measure_edits(sock, db, client, names[count : 2 * count], count)
			loop.stop_event.set()
			loop.join(300)
			inside = [e[2] for e in during if any(s <= e[0] and e[1] <= t for s, t in loop.intervals)]
			result["edits_during_refresh"] = len(inside)
			result["refreshes_during_edits"] = len(loop.intervals)
			result["edit_during_refresh_p50_ms"] = percentile(inside, 50)
			result["edit_during_refresh_p99_ms"] = percentile(inside, 99)
			result["refresh_under_edits_s"] = [round(t - s, 3) for s, t in loop.intervals]
			if loop.error:
				result["refresh_loop_error"] = loop.error
		result["peak_rss_mb"] = round(watch.peak_rss_mb(), 1)
		counters = btu_status(sock)["counters"]
		result["daemon_counters"] = counters
		result["runs_prepared"] = counters.get("runs_prepared")
		result["prepare"] = btu_status(sock).get("prepare")
		log(
			f"  BTU N={n}: runs/fire {result['runs_per_fire']} missing {result['missing']} dup "
			f"{result['duplicates']} p99 {fmt(result['lateness_p99_ms'])} ms, all after "
			f"{fmt(result['all_enqueued_after_s'], 2)} s, edit p99 {fmt(result['edit_p99_ms'])} ms, "
			f"RSS {result['peak_rss_mb']} MB"
		)
	finally:
		if daemon is not None:
			if profiler is not None:
				profiler.proc.send_signal(signal.SIGINT)
				profiler.proc.wait(60)
			daemon.stop()
		db.drop()
		ctx.databases.remove(db)
	return result


# --- peers -------------------------------------------------------------------------------------


def wait_log(process: Process, needle: str, deadline: float) -> float | None:
	"""Wait for a line in a process's log, reading only what was added since the last look."""
	state = {"offset": 0, "tail": ""}

	def seen() -> bool:
		with open(process.log_path, "rb") as handle:
			handle.seek(state["offset"])
			chunk = handle.read()
		state["offset"] += len(chunk)
		text = state["tail"] + chunk.decode(errors="replace")
		state["tail"] = text[-len(needle) :]
		return needle in text or not process.alive()

	return wait_until(seen, deadline, 0.05)


def run_peer_window(
	ctx: "Bench",
	result: dict[str, Any],
	process: Process,
	n: int,
	ready: float,
	collector: QueueCollector | None,
) -> None:
	watch = ProcWatch(process.pid)
	guard = RssGuard(watch, ctx.mode.rss_budget_mb)
	guard.start()
	window = observe(ctx.mode, ctx.client, watch, n, ready, process.alive, ctx.redis.url(0))
	guard.stop()
	result.update(window)
	if collector is not None:
		runs = [(job_id.split("-")[-1], at, None) for job_id, at in collector.finish() if at is not None]
	else:
		runs = read_queue_runs(ctx.client, RQCRON)
	result.update(analyse(runs, n, window["fires"], ctx.mode.period))
	result["peak_rss_mb"] = round(watch.peak_rss_mb(), 1)
	if guard.exceeded:
		result["budget"] = f"stopped: RSS above {ctx.mode.rss_budget_mb:.0f} MB"
	elif not process.alive():
		result["budget"] = "process died: " + process.output()[-300:]
	log(
		f"  {result['system']} N={n}: runs/fire {result['runs_per_fire']} missing {result['missing']} dup "
		f"{result['duplicates']} p99 {fmt(result['lateness_p99_ms'])} ms, RSS {result['peak_rss_mb']} MB"
	)


def run_rqcron(ctx: "Bench", n: int) -> dict[str, Any]:
	mode = ctx.mode
	result: dict[str, Any] = {"system": RQCRON, "n": n, "version": ctx.versions.get("rqcron")}
	ctx.flush()
	venv = ctx.args.rqcron_venv
	env = {
		**os.environ,
		"BENCH_N": str(n),
		"BENCH_CRON": mode.rqcron_cron,
		"BENCH_QUEUE": QUEUE,
		"PYTHONUNBUFFERED": "1",
	}
	started = time.time()
	process = Process(
		[
			os.path.join(venv, "bin", "rq"),
			"cron",
			"-u",
			ctx.redis.url(0),
			"-P",
			str(BENCH_DIR / "peers"),
			str(BENCH_DIR / "peers" / "rqcron_config.py"),
		],
		os.path.join(ctx.workdir, f"rqcron-{n}.log"),
		env=env,
		cwd=str(BENCH_DIR / "peers"),
	)
	ctx.processes.append(process)
	try:
		ready = wait_log(process, "registering birth", started + mode.load_budget)
		if ready is None or not process.alive():
			result["budget"] = (
				f"not run: loading {n} cron jobs took over {mode.load_budget:.0f} s"
				if ready is None
				else "process died: " + process.output()[-300:]
			)
			return result
		result["load_s"] = round(ready - started, 3)
		log(f"  rq cron N={n}: loaded in {result['load_s']} s")
		run_peer_window(ctx, result, process, n, ready, None)
	finally:
		process.stop()
	return result


def run_probe(ctx: "Bench", n: int) -> list[dict[str, Any]]:
	"""The limit probe on the bench's Redis (bench/limit_probe.py), both marker layouts."""
	ctx.flush()
	results = []
	for layout in limit_probe.LAYOUTS:
		found = limit_probe.probe(ctx.client, n, layout, PROBE_REPEAT)
		results.append({"system": PROBE, **found})
		log(
			f"  limit probe N={n} ({layout} markers): {found['server_s'] * 1000:.1f} ms on the server, "
			f"{found['call_s'] * 1000:.1f} ms the call"
		)
	ctx.flush()
	return results


def reset_scheduled(client: redis.Redis, period: int) -> None:
	key = "rq:scheduler:scheduled_jobs"
	members = client.zrange(key, 0, -1)
	upcoming = math.ceil((time.time() + 0.5) / period) * period
	for start in range(0, len(members), 10000):
		client.zadd(key, {m: upcoming for m in members[start : start + 10000]})


def run_rqsched(ctx: "Bench", n: int) -> list[dict[str, Any]]:
	mode = ctx.mode
	venv = ctx.args.rqsched_venv
	ctx.flush()
	results = []
	load = subprocess.run(
		[
			os.path.join(venv, "bin", "python"),
			str(BENCH_DIR / "peers" / "rqsched_load.py"),
			ctx.redis.url(0),
			str(n),
			mode.rqsched_cron,
			QUEUE,
		],
		capture_output=True,
		text=True,
		timeout=mode.load_budget * 3,
	)
	if load.returncode != 0:
		raise RuntimeError(f"rq-scheduler load failed: {load.stderr[-2000:]}")
	loaded = json.loads(load.stdout.strip().splitlines()[-1])
	log(f"  rq-scheduler N={n}: {loaded['jobs']} cron jobs registered in {loaded['seconds']} s")
	for interval in mode.sched_intervals:
		result: dict[str, Any] = {
			"system": RQSCHED,
			"n": n,
			"interval": interval,
			"version": ctx.versions.get("rqsched"),
			"load_s": loaded["seconds"],
		}
		if loaded["seconds"] > mode.load_budget:
			result["budget"] = f"not run: registering {n} cron jobs took {loaded['seconds']:.0f} s"
			results.append(result)
			continue
		# The registered jobs stay; the queue list restarts empty and every job's next run is set back
		# to the next fire time, as after registration (a previous run may have left them overdue).
		ctx.client.delete(QUEUE_KEY, "rq:scheduler_lock", "rq:scheduler")
		reset_scheduled(ctx.client, mode.period)
		collector = QueueCollector(ctx.redis.url(0))
		collector.start()
		process = Process(
			[
				os.path.join(venv, "bin", "rqscheduler"),
				"--url",
				ctx.redis.url(0),
				"--interval",
				str(interval),
				"--path",
				str(BENCH_DIR / "peers"),
			],
			os.path.join(ctx.workdir, f"rqsched-{n}-{interval:g}.log"),
			env={**os.environ, "PYTHONUNBUFFERED": "1"},
			cwd=str(BENCH_DIR / "peers"),
		)
		ctx.processes.append(process)
		try:
			ready = time.time() + 0.5
			time.sleep(0.5)
			run_peer_window(ctx, result, process, n, ready, collector)
		finally:
			collector.stop_event.set()
			process.stop()
		results.append(result)
	return results


# --- the table ---------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1) -> str:
	if value is None:
		return "—"
	if isinstance(value, float):
		if abs(value) >= 1000:
			return f"{value:,.0f}"
		if abs(value) >= 100:
			return f"{value:.0f}"
		return f"{value:.{digits}f}"
	if isinstance(value, int):
		return f"{value:,}"
	return str(value)


def ratio(ours: float | None, theirs: float | None) -> str:
	if ours is None or theirs is None or theirs == 0:
		return "—"
	value = ours / theirs
	return f"{value:.2g}×" if value < 10 else f"{value:.0f}×"


def label(result: dict[str, Any]) -> str:
	if result["system"] == BTU:
		return f"**BTU daemon** {result.get('version') or ''}".strip()
	if result["system"] == RQCRON:
		return f"rq cron (CronScheduler, rq {result.get('version')})"
	if result["system"] == PROBE:
		what = "a marker key a run" if result.get("layout") == "key" else "markers in a hash a fire time"
		return f"*limit probe*: one Lua step, {what}"
	return f"rq-scheduler {result.get('version')} (interval {result['interval']:g} s)"


def last_visible_ms(result: dict[str, Any]) -> float | None:
	"""When the queue held every run of both fire times (LLEN), in ms after the later fire time's."""
	found = result.get("visible_after_s") or []
	if not found or any(v is None for v in found) or result.get("missing"):
		return None
	return max(found) * 1000


def probes(results: list[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
	return {(r["n"], r["layout"]): r for r in results if r["system"] == PROBE and "server_s" in r}


def render(bench: dict[str, Any]) -> str:
	mode = bench["mode"]
	results = bench["results"]
	ours = {r["n"]: r for r in results if r["system"] == BTU}
	limits = probes(results)
	period_text = "every minute (`* * * * *`)" if mode["period"] == 60 else f"every {mode['period']} s"
	lines = [
		f"BTU scheduler benchmark ({mode['name']}): N enabled schedules firing {period_text}, job_mode plain, "
		f"no workers; two consecutive fire times each; {bench['machine']}; {bench['started_at']}"
		+ (f"; load average at start {bench['load_at_start']}" if bench.get("load_at_start") else "")
		+ ".",
		"",
		"| scheduler | N | runs per fire (F1 / F2) | missing / dup | lateness p50 / p99 / max (ms) "
		"| last run enqueued / visible (ms after fire) | load N (s) | full refresh (s) | edit→Redis p50 / p99 (ms) "
		"| edit during refresh p50 / p99 (ms) | peak RSS (MB) | idle CPU (% core) | CPU s/min enqueuing "
		"| ours/theirs: p99 · RSS · CPU; BTU: last visible ÷ limit probe (key · hash markers) |",
		"|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
	]
	for r in results:
		if r["system"] == PROBE:
			if "server_s" not in r:
				lines.append(
					f"| {label(r)} | {r['n']:,} | " + " | ".join(["—"] * 11) + f" | {r.get('error')} |"
				)
				continue
			lines.append(
				f"| {label(r)} | {r['n']:,} | — | — | — | — / {fmt(r['server_s'] * 1000)} | — | — | — | — | — | — | — "
				f"| server time of the step (median of {r['repeat']}; the call {fmt(r['call_s'] * 1000)} ms): "
				f"{fmt(r['server_us_per_run'], 2)} µs a run |"
			)
			continue
		if "runs_per_fire" not in r:
			lines.append(
				f"| {label(r)} | {r['n']:,} | "
				+ " | ".join(["—"] * 11)
				+ f" | {r.get('budget') or r.get('error') or 'not run'} |"
			)
			continue
		runs = " / ".join(f"{x:,}" for x in r["runs_per_fire"])
		late = " / ".join(fmt(r.get(k)) for k in ("lateness_p50_ms", "lateness_p99_ms", "lateness_max_ms"))
		enq = r.get("all_enqueued_after_s")
		if enq is None:
			last = r.get("last_enqueued_after_s")
			after = "no run" if last is None else f"incomplete (last run +{fmt(last * 1000)})"
		else:
			after = f"{fmt(enq * 1000)} / {fmt(last_visible_ms(r))}"
		if r["system"] == BTU:
			load = fmt(r.get("cold_refresh_s"), 2)
			refresh = fmt(r.get("periodic_refresh_s"), 2)
			edit = f"{fmt(r.get('edit_p50_ms'))} / {fmt(r.get('edit_p99_ms'))}"
			during = (
				f"{fmt(r.get('edit_during_refresh_p50_ms'))} / {fmt(r.get('edit_during_refresh_p99_ms'))}"
				if r.get("edits_during_refresh")
				else "—"
			)
			visible = last_visible_ms(r)
			key, hashed = limits.get((r["n"], "key")), limits.get((r["n"], "hash"))
			versus = (
				"last visible ÷ probe: "
				+ ratio(visible, key["server_s"] * 1000 if key else None)
				+ " · "
				+ ratio(visible, hashed["server_s"] * 1000 if hashed else None)
			)
		else:
			load, refresh, edit, during = fmt(r.get("load_s"), 2), "n/a", "n/a", "n/a"
			mine = ours.get(r["n"], {})
			versus = " · ".join(
				[
					ratio(mine.get("lateness_p99_ms"), r.get("lateness_p99_ms")),
					ratio(mine.get("peak_rss_mb"), r.get("peak_rss_mb")),
					ratio(mine.get("cpu_s_per_min_enqueuing"), r.get("cpu_s_per_min_enqueuing")),
				]
			)
			if r.get("budget"):
				versus += f" ({r['budget']})"
		idle = fmt(r["idle"]["cpu_pct"], 2) if r.get("idle") else "never idle"
		lines.append(
			f"| {label(r)} | {r['n']:,} | {runs} | {r['missing']:,} / {r['duplicates']:,} | {late} | {after} "
			f"| {load} | {refresh} | {edit} | {during} | {fmt(r.get('peak_rss_mb'))} | {idle} "
			f"| {fmt(r.get('cpu_s_per_min_enqueuing'), 2)} | {versus} |"
		)
	lines += [
		"",
		"Lateness = RQ `enqueued_at` − fire time, over every run of both fire times. BTU jobs carry their fire "
		"time; the peers' runs are given the latest fire time at or before their `enqueued_at` (a run more than "
		"one period late counts for the next fire time and its own shows as missing). Last run enqueued = the "
		"latest `enqueued_at`; visible = when the queue list first held every run of the fire time (LLEN polled "
		"every millisecond by the bench), the later of the two fire times. Limit probe (bench/limit_probe.py) = "
		"the server time of one Lua step making N already-stored RQ job hashes visible (status, `enqueued_at`, "
		"one marker each, RPUSH), on the same Redis just before BTU's run; BTU's figure is from the fire time "
		"to the last run visible, as seen by a client. Load N: BTU = daemon process start until all N next "
		"fire times are in Redis (cold full refresh from MariaDB); rq cron = process start until its config of "
		"N `cron.register` calls is loaded; rq-scheduler = N `Scheduler.cron()` calls from a client. Full "
		"refresh = a later refresh asked over the socket, until all N schedules were re-read and written. "
		"Edits: SQL row changed, then `create_task_schedule` on the socket, until the new rule is in "
		"Redis (during refresh: refreshes of all N run back to back; largest N only). CPU s/min enqueuing = CPU "
		"seconds over the minute holding one fire time (for BTU it holds one preparation and one fire time); "
		"idle CPU = between the first fire's last run and the next fire time (for BTU, until 0.25 s before it "
		"began preparing that fire time's runs). Ratios < 1× favour BTU.",
	]
	return "\n".join(lines)


def render_targets(bench: dict[str, Any]) -> str:
	if bench["mode"]["name"] != "full":
		return ""
	results = bench["results"]
	ours = {r["n"]: r for r in results if r["system"] == BTU and "runs_per_fire" in r}
	cron = {r["n"]: r for r in results if r["system"] == RQCRON and "runs_per_fire" in r}
	limits = probes(results)
	checks = []

	def check(text: str, value: Any, ok: bool | None) -> None:
		checks.append(
			f"- {'PASS' if ok else ('FAIL' if ok is not None else 'n/a')}: {text} (measured {value})"
		)

	def against_probe(n: int) -> None:
		r = ours.get(n, {})
		visible = last_visible_ms(r) if r else None
		key, hashed = limits.get((n, "key")), limits.get((n, "hash"))
		limit = key["server_s"] * 1000 if key else None
		extra = f"; probe with markers in one hash: {fmt(hashed['server_s'] * 1000)} ms" if hashed else ""
		check(
			f"last of N = {n:,} runs of a fire time visible within the limit probe's time for {n:,}",
			f"{fmt(visible)} ms, probe {fmt(limit)} ms{extra}",
			None if visible is None or limit is None else visible <= limit,
		)

	against_probe(10000)
	against_probe(100000)
	for n in (1000, 10000):
		mine, theirs = ours.get(n, {}).get("lateness_p99_ms"), cron.get(n, {}).get("lateness_p99_ms")
		check(
			f"lateness p99 ≤ 0.02× rq cron's at N = {n:,}",
			f"{fmt(mine)} ms vs {fmt(theirs)} ms = {ratio(mine, theirs)}",
			None if mine is None or theirs is None else mine <= 0.02 * theirs,
		)
	bad = {n: (r["missing"], r["duplicates"]) for n, r in ours.items()}
	check(
		"no run missing or doubled",
		", ".join(f"N={n:,}: {m}/{d}" for n, (m, d) in bad.items()) or "—",
		None if not bad else all(m == 0 and d == 0 for m, d in bad.values()),
	)
	r = ours.get(100000, {})
	v = r.get("periodic_refresh_s")
	c = r.get("cold_refresh_s")
	check(
		"full refresh of 100,000 schedules ≤ 10 s",
		f"periodic {fmt(v, 2)} s, cold {fmt(c, 2)} s",
		None if v is None else max(v, c or 0) <= 10,
	)
	worst_edit = max([x.get("edit_p99_ms") or 0 for x in ours.values()], default=None)
	check("edit to effect p99 ≤ 20 ms", f"worst {fmt(worst_edit)} ms", None if not ours else worst_edit <= 20)
	v = r.get("edit_during_refresh_p99_ms")
	check(
		"edit to effect p99 ≤ 50 ms during a 100,000 refresh", f"{fmt(v)} ms", None if v is None else v <= 50
	)
	v = r.get("peak_rss_mb")
	check("peak RSS ≤ 150 MB at 100,000", f"{fmt(v)} MB", None if v is None else v <= 150)
	idles = [x["idle"]["cpu_pct"] for x in ours.values() if x.get("idle")]
	check(
		"idle CPU < 1% of one core",
		f"worst {fmt(max(idles), 2) if idles else '—'} %",
		None if not idles else max(idles) < 1,
	)
	return "Targets (BTU daemon, ratios within this run):\n" + "\n".join(checks)


# --- driver ------------------------------------------------------------------------------------


class Bench:
	def __init__(self, args: argparse.Namespace, mode: Mode) -> None:
		self.args, self.mode = args, mode
		self.workdir = tempfile_dir()
		self.redis = RedisServer(self.workdir)
		self.client: redis.Redis = None  # type: ignore[assignment]
		self.processes: list[Process] = []
		self.databases: list[SiteDatabase] = []
		self.versions: dict[str, str] = {}

	def start(self) -> None:
		self.redis.start()
		self.client = redis.Redis.from_url(self.redis.url(0))
		for name, venv in (("rqcron", self.args.rqcron_venv), ("rqsched", self.args.rqsched_venv)):
			if venv:
				code = (
					"import importlib.metadata as m; print(m.version('rq-scheduler'))"
					if name == "rqsched"
					else "import rq; print(rq.__version__)"
				)
				out = subprocess.run(
					[os.path.join(venv, "bin", "python"), "-c", code], capture_output=True, text=True
				)
				self.versions[name] = out.stdout.strip() or "?"

	def flush(self) -> None:
		self.client.flushall()

	def close(self) -> None:
		for process in self.processes:
			try:
				process.stop()
			except Exception:  # noqa: BLE001
				pass
		for db in list(self.databases):
			try:
				db.drop()
			except Exception:  # noqa: BLE001
				pass
		self.redis.stop()
		if not self.args.keep_logs:
			shutil.rmtree(self.workdir, ignore_errors=True)
		else:
			log(f"logs kept in {self.workdir}")


def tempfile_dir() -> str:
	import tempfile

	return tempfile.mkdtemp(prefix="btu-bench-", dir="/tmp")


def main(argv: list[str] | None = None) -> int:
	parser = argparse.ArgumentParser(
		description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
	)
	parser.add_argument("--quick", action="store_true", help="tiny sizes on a 2-second cron rule (smoke run)")
	parser.add_argument("--sizes", help="comma-separated N values (default: mode's)")
	parser.add_argument(
		"--systems", default="probe,btu,rqcron,rqsched", help="which of probe,btu,rqcron,rqsched to run"
	)
	parser.add_argument("--edits", type=int, help="edits to measure (default: 1000; quick: 20)")
	parser.add_argument("--out", default=str(BENCH_DIR / "results"), help="folder for the JSON and Markdown")
	parser.add_argument("--rqsched-venv", default=str(BENCH_DIR / ".venvs" / "rqsched"))
	parser.add_argument("--rqcron-venv", default=str(BENCH_DIR / ".venvs" / "rqcron"))
	parser.add_argument(
		"--profile",
		metavar="DIR",
		help="sample the daemon with py-spy (pip install py-spy into bench/.venvs/btu) into DIR",
	)
	parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (path printed)")
	parser.add_argument("--no-latest", action="store_true", help="full run: do not rewrite bench/latest.md")
	args = parser.parse_args(argv)

	mode = QUICK if args.quick else FULL
	if args.sizes:
		mode.sizes = [int(x.replace("_", "")) for x in args.sizes.split(",") if x.strip()]
	if args.edits is not None:
		mode.edits = args.edits
	systems = {s.strip() for s in args.systems.split(",")}
	started = time.time()
	ctx = Bench(args, mode)
	data: dict[str, Any] = {
		"mode": {
			"name": mode.name,
			"sizes": mode.sizes,
			"period": mode.period,
			"btu_cron": mode.btu_cron,
			"rqcron_cron": mode.rqcron_cron,
			"rqsched_cron": mode.rqsched_cron,
			"edits": mode.edits,
			"rqsched_intervals": mode.sched_intervals,
		},
		"started_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
		"load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
		"machine": f"{psutil.cpu_count()} cores, {round(psutil.virtual_memory().total / 2**30)} GiB, "
		f"Python {platform.python_version()}",
		"results": [],
	}
	stopping = {"flag": False}

	def on_signal(signum: int, _frame: Any) -> None:
		stopping["flag"] = True
		raise KeyboardInterrupt

	signal.signal(signal.SIGTERM, on_signal)
	try:
		ctx.start()
		data["versions"] = {
			"btu": BTU_VERSION,
			"rq": __import__("rq").__version__,
			"redis_py": redis.__version__,
			**ctx.versions,
			"redis_server": ctx.client.info("server").get("redis_version"),
		}
		largest = max(mode.sizes)
		for n in mode.sizes:
			log(f"N = {n:,}")
			if "probe" in systems:
				found = guarded(lambda: run_probe(ctx, n), PROBE, n)
				data["results"].extend(found if isinstance(found, list) else [found])
			if "btu" in systems:
				data["results"].append(guarded(lambda: run_btu(ctx, n, n == largest), BTU, n))
			if "rqcron" in systems:
				data["results"].append(guarded(lambda: run_rqcron(ctx, n), RQCRON, n))
			if "rqsched" in systems:
				found = guarded(lambda: run_rqsched(ctx, n), RQSCHED, n)
				data["results"].extend(
					found
					if isinstance(found, list)
					else [{**found, "interval": i} for i in mode.sched_intervals]
				)
	except KeyboardInterrupt:
		log("interrupted")
		return 130
	finally:
		ctx.close()
	data["duration_s"] = round(time.time() - started, 1)
	table = render(data)
	targets = render_targets(data)
	out = Path(args.out)
	out.mkdir(parents=True, exist_ok=True)
	stamp = time.strftime("%Y%m%d-%H%M%S")
	text = (
		table + (f"\n\n{targets}" if targets else "") + f"\n\nTotal run time: {data['duration_s']:.0f} s.\n"
	)
	(out / f"bench-{mode.name}-{stamp}.json").write_text(json.dumps(data, indent=2, default=str))
	(out / f"bench-{mode.name}-{stamp}.md").write_text(text)
	(out / f"latest-{mode.name}.json").write_text(json.dumps(data, indent=2, default=str))
	(out / f"latest-{mode.name}.md").write_text(text)
	if (
		mode.name == "full"
		and not args.no_latest
		and not args.sizes
		and not args.edits
		and systems == {"probe", "btu", "rqcron", "rqsched"}
	):
		(BENCH_DIR / "latest.md").write_text(text)
	print(text)
	return 0


def guarded(run: Callable[[], Any], system: str, n: int) -> Any:
	"""One system at one N; a failure is reported in its row and the bench goes on. Each row keeps the
	machine's load average as it started (these machines are shared)."""
	load = [round(x, 2) for x in os.getloadavg()]
	try:
		found = run()
		for row in found if isinstance(found, list) else [found]:
			row.setdefault("load_avg_at_start", load)
		return found
	except KeyboardInterrupt:
		raise
	except Exception as exc:  # noqa: BLE001
		log(f"  {system} N={n} failed: {type(exc).__name__}: {exc}")
		return {"system": system, "n": n, "error": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}


if __name__ == "__main__":
	sys.exit(main())
