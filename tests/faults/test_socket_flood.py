"""Socket floods (issue 14, items 6-7): 2,000 silent connections held, then reopened as fast as the
daemon closes them; 20,000 names pushed while the schedule table is write-locked. Throughout, every
ping is answered within the client's timeout, every edit reaches Redis, runs stay exactly once and
the log stays a few lines. Latencies are printed (the benchmark bench/socket_flood.py reports them),
never asserted."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from btu.contracts import protocol
from btu.contracts.redis_keys import KEYS

from ..socket_attacker import Attacker
from .harness import SITE, STATS, add_every_second, check_runs, queued_runs, scale, wait_caught_up, wait_for

pytestmark = pytest.mark.faults
SOCKET_EVENTS = (
	"event=socket_request_rejected",
	"event=socket_requests_rejected",
	"event=socket_clients_shed",
)


def p(values: list[float], pct: float) -> str:
	if not values:
		return "-"
	ordered = sorted(values)
	return f"{ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]:.1f}"


class Pinger(threading.Thread):
	"""Pings every 0.1 s with a 2 s client timeout; keeps every reply."""

	def __init__(self, path: str) -> None:
		super().__init__(daemon=True)
		self.path = path
		self.replies: list[protocol.DaemonReply] = []
		self.halt = threading.Event()

	def run(self) -> None:
		while not self.halt.is_set():
			self.replies.append(protocol.ping(self.path, timeout=2.0))
			self.halt.wait(0.1)

	def finish(self) -> list[protocol.DaemonReply]:
		self.halt.set()
		self.join(10)
		return self.replies


def edit_and_wait(site_db, client, path: str, name: str, label: str) -> float:
	"""Change the schedule's arguments in SQL, tell the daemon; ms until Redis has the new spec."""
	site_db.update_schedule(name, argument_overrides=f'{{"label": "{label}"}}')
	started = time.monotonic()
	reply = protocol.create_task_schedule(path, name, SITE, timeout=2.0)
	assert reply.ok, reply.message
	wait_for(
		lambda: label.encode() in (client.hget(KEYS.specs(SITE), name) or b""),
		30,
		0.005,
		what=f"edit {label} in Redis",
	)
	return (time.monotonic() - started) * 1000


def socket_lines(log: str) -> list[str]:
	return [line for line in log.splitlines() if any(e in line for e in SOCKET_EVENTS)]


def test_pings_and_edits_are_answered_while_2000_silent_connections_are_held(bench):
	crons = add_every_second(bench.site_db, 4)
	bench.site_db.add_schedule("TS-EDIT", "BTU-F0001", "0 0 1 1 *")
	daemon = bench.daemon("d")
	client = bench.client()
	wait_for(lambda: client.zcard(KEYS.next_runs(SITE)) == len(crons) + 1, 20, what="schedules in Redis")
	start = max(client.zmscore(KEYS.next_runs(SITE), list(crons)))
	refused = 0
	phases = (
		# (name, connections, processes, mode): 2,000 silent connections held by 64 processes; 2,000
		# reopened by one process as soon as the daemon answers them (after 5 s); 10,000 reopened by 64
		# processes, more than the daemon holds (8,192): the newest of the biggest holders are refused.
		("held", 2000, 64, "hold", scale(8, 30)),
		("reconnecting", 2000, 1, "reconnect", scale(8, 60)),
		("beyond the caps", 10_000, 64, "reconnect", scale(8, 60)),
	)
	for phase, connections, processes, mode, seconds in phases:
		attacker = Attacker(daemon.socket_path, connections, processes=processes, mode=mode, seconds=600)
		STATS.add(bench.test_name, faults_injected=1)
		pinger = Pinger(daemon.socket_path)
		pinger.start()
		edits: list[float] = []
		try:
			ends = time.monotonic() + seconds
			k = 0
			while time.monotonic() < ends:
				edits.append(
					edit_and_wait(bench.site_db, client, daemon.socket_path, "TS-EDIT", f"{phase}{k}")
				)
				k += 1
				time.sleep(0.5)
			assert protocol.status(daemon.socket_path, timeout=2.0).ok
			assert attacker.running()  # all of the above ran under attack
			result = attacker.finish(now=True)
		finally:
			replies = pinger.finish()
			attacker.stop()
		STATS.add(bench.test_name, edits=len(edits), bad_inputs_sent=result.get("opened", 0))
		failed = [r.message for r in replies if not r.ok]
		assert replies and not failed, f"{phase}: {len(failed)} of {len(replies)} pings failed: {failed[:5]}"
		assert result["opened"] >= connections, result
		assert not result.get("other") and not result.get("children_failed"), result
		refused += result.get("busy", 0) + result.get("timeout", 0)
		print(
			f"[faults] {phase}: {result}; ping p50 {p([r.elapsed_ms for r in replies], 50)} "
			f"p99 {p([r.elapsed_ms for r in replies], 99)} ms ({len(replies)} pings); "
			f"edit->Redis p50 {p(edits, 50)} p99 {p(edits, 99)} ms ({len(edits)} edits)"
		)
	assert daemon.request("ping").ok
	lines = socket_lines(daemon.log())
	print(f"[faults] {refused} connections refused or shed, {len(lines)} socket log lines")
	assert refused > 4000 and len(lines) < refused / 50, lines[-20:]
	end = time.time() + 1
	wait_caught_up(client, crons, end, 30)
	verdict = check_runs(queued_runs(client, crons), crons, start, end)
	STATS.verdict(bench.test_name, verdict)
	assert verdict.ok, verdict.summary()


def test_20000_names_pushed_while_the_table_is_locked_drain_and_an_edit_overtakes_them(bench):
	site_db = bench.site_db
	crons = add_every_second(site_db, 4)
	existing = [f"TS-B{i:05d}" for i in range(10_000)]
	conn = site_db.connect()
	with conn.cursor() as cur:
		cur.executemany(
			"INSERT INTO `tabBTU Task Schedule` (name, creation, modified, owner, modified_by, task, enabled,"
			" queue_name, run_frequency, cron_string, cron_timezone) VALUES (%s, NOW(6), NOW(6), 'a', 'a',"
			" 'BTU-F0001', 1, 'default', 'Cron Style', '0 0 1 1 *', 'UTC')",
			[(n,) for n in [*existing, "TS-EDIT"]],
		)
	conn.close()
	daemon = bench.daemon("d")
	client = bench.client()
	total = len(crons) + len(existing) + 1
	wait_for(lambda: client.zcard(KEYS.next_runs(SITE)) == total, 60, what="schedules in Redis")
	start = max(client.zmscore(KEYS.next_runs(SITE), list(crons)))
	backlog = existing + [f"TS-GONE-{i:05d}" for i in range(10_000)]  # 20,000: half of them deleted
	hold = scale(4.0, 35.0)  # LONG: past the daemon's 30 s read timeout (it retries what it could not read)
	for round_ in range(scale(1, 3)):
		synced_before = daemon.request("status").data["counters"]["schedules_synced"]
		locker = site_db.connect()
		locked, pushed = threading.Event(), threading.Event()
		label = f"after-lock-{round_}"
		unlocked_at: list[float] = []

		def hold_lock() -> None:
			with locker.cursor() as cur:
				cur.execute("LOCK TABLES `tabBTU Task Schedule` WRITE")
				cur.execute(
					"UPDATE `tabBTU Task Schedule` SET argument_overrides = %s WHERE name = 'TS-EDIT'",
					(f'{{"label": "{label}"}}',),
				)
				locked.set()
				until = time.monotonic() + hold
				while time.monotonic() < until or not pushed.is_set():
					time.sleep(0.05)
				cur.execute("UNLOCK TABLES")
				unlocked_at.append(time.monotonic())

		holder = threading.Thread(target=hold_lock)
		holder.start()
		STATS.add(bench.test_name, faults_injected=1, row_locks=1)
		pinger = Pinger(daemon.socket_path)
		pinger.start()
		try:
			assert locked.wait(10)
			with ThreadPoolExecutor(8) as pool:
				replies = list(
					pool.map(
						lambda n: protocol.create_task_schedule(daemon.socket_path, n, SITE, 5.0), backlog
					)
				)
			refused = [r.message for r in replies if not r.ok]
			assert not refused, f"{len(refused)} of the pushed names refused: {refused[:3]}"
			assert daemon.request("create_task_schedule", "TS-EDIT", SITE).ok  # the edit, last of all
			STATS.add(bench.test_name, edits=1)
		finally:
			pushed.set()
			holder.join(hold + 60)
			locker.close()
		wait_for(
			lambda: label.encode() in (client.hget(KEYS.specs(SITE), "TS-EDIT") or b""),
			90,
			0.005,
			what="the edit in Redis",
		)
		edit_ms = (time.monotonic() - unlocked_at[0]) * 1000

		def drained() -> bool:
			status = daemon.request("status").data
			queue = status["internal_queue"]
			return queue["priority"] + queue["bulk"] == 0 and (
				status["counters"]["schedules_synced"] >= synced_before + len(existing) + 1
			)

		wait_for(drained, 120, 0.05, what="the 20,000 names to drain")
		drain_ms = (time.monotonic() - unlocked_at[0]) * 1000
		pings = pinger.finish()
		failed = [r.message for r in pings if not r.ok]
		assert pings and not failed, f"{len(failed)} of {len(pings)} pings failed: {failed[:5]}"
		assert client.zcard(KEYS.next_runs(SITE)) == total
		# The edit was applied before most of the backlog pushed before it.
		lines = [
			line
			for line in daemon.log().splitlines()
			if "event=schedule_synced " in line or "event=schedule_removed " in line
		]
		last_edit = max(i for i, line in enumerate(lines) if "schedule=TS-EDIT " in line)
		assert len(lines) - last_edit - 1 >= len(backlog) // 2, len(lines) - last_edit - 1
		print(
			f"[faults] 20,000 names pushed during a {hold:g} s table lock: edit in Redis {edit_ms:.0f} ms "
			f"after the unlock, all drained after {drain_ms:.0f} ms; ping p50 "
			f"{p([r.elapsed_ms for r in pings], 50)} p99 {p([r.elapsed_ms for r in pings], 99)} ms"
		)
	if hold > 30:
		assert "event=sql_unavailable" in daemon.log() and "event=sql_recovered" in daemon.log()
	end = time.time() + 1
	wait_caught_up(client, crons, end, 30)
	verdict = check_runs(queued_runs(client, crons), crons, start, end)
	STATS.verdict(bench.test_name, verdict)
	assert verdict.ok, verdict.summary()
