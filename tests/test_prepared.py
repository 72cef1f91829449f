"""Prepared runs (btu/scheduler_daemon/prepared.py): jobs built and stored before their fire time, made
visible at it by one server-side step. Real Redis, real rq workers (CI runs this file on rq 1.15 and on
the newest rq the requirements allow), no daemon process: the daemon's own objects driven directly."""

from __future__ import annotations

import calendar
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from rq.job import Job

from btu.scheduler_daemon import prepared
from btu.scheduler_daemon.config import DaemonConfig, SiteConfig
from btu.scheduler_daemon.consumer import Consumer
from btu.scheduler_daemon.context import DaemonContext
from btu.scheduler_daemon.jobs import job_id_for
from btu.scheduler_daemon.scheduler import Scheduler

from .services import REPO

SITE = "prep.localhost"
RECORD = "tests.run_tasks.record"


def row(name: str, cron: str, **changes) -> dict:
	values = {
		"name": name,
		"enabled": 1,
		"task": "BTU-00001",
		"queue_name": "default",
		"run_frequency": "Cron Style",
		"minute": None,
		"hour": None,
		"day_of_week": None,
		"day_of_month": None,
		"month": None,
		"cron_string": cron,
		"cron_timezone": "UTC",
		"argument_overrides": None,
		"task_found": "BTU-00001",
		"task_docstatus": 1,
		"function_string": RECORD,
		"arguments": None,
		"max_task_duration": 600,
		"task_queue_name": "default",
		"desc_short": "prepared run test",
	}
	values.update(changes)
	return values


class Env:
	"""One daemon's context, consumer, scheduler (for its lease) and preparer on the test's Redis."""

	def __init__(self, redis_url: str, bench_id: str = "prepbench", **config) -> None:
		self.config = DaemonConfig(
			sites=(SiteConfig(name=SITE, db_name="unused", db_user="root"),),
			redis_url=redis_url,
			job_mode="plain",
			bench_id=bench_id,
			lease_ttl=30,
			**config,
		)
		self.ctx = DaemonContext(self.config)
		self.consumer = Consumer(self.ctx)
		self.scheduler = Scheduler(self.ctx)
		self.runs = prepared.PreparedRuns()
		self.preparer = prepared.Preparer(self.ctx, self.runs, self.holder)
		self.client = self.ctx.store.client(SITE)
		self.keys = self.ctx.store.keys

	def holder(self) -> str | None:
		lease = self.scheduler.lease
		return lease.holder_id if lease is not None and lease.held else None

	def lead(self) -> None:
		assert self.scheduler._check_lease(), "this daemon should hold the lease"

	def upsert(self, *rows: dict) -> None:
		self.consumer._apply(SITE, [(r["name"], r) for r in rows], [], verbose=False)

	def at(self, name: str, fire_ts: int) -> None:
		"""Put a schedule's pending fire time at ``fire_ts`` (as if its rule had led there)."""
		self.client.zadd(self.keys.next_runs(SITE), {name: fire_ts})

	def fire(self, now: float | None = None) -> list[prepared.Outcome]:
		chunks = self.runs.take_due(SITE, time.time() if now is None else now)
		outcomes = prepared.make_visible(self.client, self.preparer.scripts, chunks)
		prepared.record_outcomes(self.ctx, SITE, outcomes)
		return outcomes

	def queued_ids(self, queue: str = "default") -> list[str]:
		return [i.decode() for i in self.client.lrange(f"rq:queue:{queue}", 0, -1)]


@pytest.fixture
def env(redis_url):
	made = []

	def make(**kwargs) -> Env:
		e = Env(redis_url, **kwargs)
		made.append(e)
		return e

	yield make
	for e in made:
		e.ctx.store.close()


def as_bytes(key: str | bytes) -> bytes:
	"""A Redis key as scan_iter returns it (rq 1.15's Job.key_for gives bytes, newer rq a str)."""
	return key if isinstance(key, bytes) else key.encode()


def soon(seconds: int = 2) -> int:
	return int(time.time()) + seconds


def wait_until(ts: float) -> None:
	while time.time() < ts:
		time.sleep(min(0.05, max(0.0, ts - time.time())))


def burst_worker(redis_url: str, queues: list[str], workdir: str) -> subprocess.CompletedProcess:
	"""A plain ``rq worker --burst`` of this virtualenv's rq: runs what is queued, then exits."""
	return subprocess.run(
		[sys.executable, "-m", "rq.cli", "worker", "--burst", "-u", redis_url, *queues],
		cwd=str(REPO),
		env={**os.environ, "PYTHONPATH": str(REPO)},
		capture_output=True,
		text=True,
		timeout=120,
	)


def test_prepared_runs_are_stored_unseen_then_made_visible_as_ordinary_rq_jobs(env, redis_url, workdir):
	e = env()
	e.lead()
	out = os.path.join(workdir, "runs.txt")
	names = [f"TS-{i:05d}" for i in range(prepared.CHUNK + 20)]  # two steps
	e.upsert(*(row(n, "0 0 1 1 *", argument_overrides=f'{{"path": "{out}", "label": "{n}"}}') for n in names))
	fire = soon(3)
	for n in names:
		e.at(n, fire)
	assert e.preparer.prepare_fire_time(SITE, fire) == len(names)

	# Stored ahead, unseen: status "scheduled", no enqueued_at, nothing in the queue, no marker.
	ids = [job_id_for(SITE, n, fire) for n in names]
	assert e.queued_ids() == []
	stored = Job.fetch(ids[0], connection=e.client)
	assert stored.get_status(refresh=False) == "scheduled" and stored.enqueued_at is None
	assert stored.func_name == RECORD and stored.kwargs == {"path": out, "label": names[0]}
	assert not e.client.exists(prepared.fired_key("btu", SITE, fire))
	assert e.client.hlen(prepared.prepared_key("btu", SITE)) == len(names)
	assert e.client.ttl(Job.key_for(ids[0])) == -1  # no expiry: a queued job waits as long as it must
	assert set(e.client.scan_iter(match="rq:job:*")) == {
		as_bytes(Job.key_for(i)) for i in ids
	}  # nothing else

	wait_until(fire)
	before = time.time()
	outcomes = e.fire()
	after = time.time()
	assert sum(len(o.visible) for o in outcomes) == len(names)
	assert all(o.code == 0 and not o.left for o in outcomes)
	assert sorted(e.queued_ids()) == sorted(ids)
	jobs = Job.fetch_many(ids, connection=e.client)
	for job in jobs:
		assert job.get_status(refresh=False) == "queued"
		# enqueued_at is Redis's clock (this machine's) as the step wrote: within the call, in RQ's format
		stamp = calendar.timegm(job.enqueued_at.utctimetuple()) + job.enqueued_at.microsecond / 1e6
		assert before - 0.001 <= stamp <= after + 0.001
		assert stamp >= fire
		assert job.meta == {
			"btu_site": SITE,
			"btu_schedule": job.meta["btu_schedule"],
			"btu_task": "BTU-00001",
			"btu_fire_time": fire,
			"btu_key_prefix": e.keys.prefix,
		}
	# Exactly-once markers (one hash per fire time) and the schedules moved on to the next fire time.
	marks = e.client.hgetall(prepared.fired_key("btu", SITE, fire))
	assert {k.decode(): v.decode() for k, v in marks.items()} == dict(zip(names, ids))
	assert e.client.ttl(prepared.fired_key("btu", SITE, fire)) > 3600
	scores = e.client.zmscore(e.keys.next_runs(SITE), names)
	following = prepared.ScheduleSpec.from_json(e.client.hget(e.keys.specs(SITE), names[0])).next_fire_after(
		fire
	)
	assert set(scores) == {float(following)}
	assert e.ctx.counters.runs_enqueued == len(names) == e.ctx.counters.runs_prepared
	assert e.client.sismember("rq:queues", "rq:queue:default")

	# A plain rq worker runs them: each once, with its own arguments.
	done = burst_worker(redis_url, ["default"], workdir)
	assert done.returncode == 0, done.stderr[-2000:]
	ran = Path(out).read_text().split("\n")
	assert sorted(line.split(" ", 1)[1] for line in ran if line) == sorted(names)
	assert {j.get_status() for j in Job.fetch_many(ids, connection=e.client)} == {"finished"}


def test_the_ordinary_fire_path_writes_a_fire_times_markers_as_a_hash_table_without_its_pad(env):
	e = env()
	e.lead()
	names = ["TS-1", "TS-2", "TS-3"]
	fire = int(time.time()) - 1
	at = time.gmtime(fire)  # a rule that has this fire time (the fire path runs no other)
	rule = f"{at.tm_sec} {at.tm_min} {at.tm_hour} {at.tm_mday} {at.tm_mon} *"
	e.upsert(*(row(n, rule) for n in names))
	for n in names:
		e.at(n, fire)
	assert e.scheduler.fire(SITE, [(n, fire) for n in names]) == 3
	key = prepared.fired_key("btu", SITE, fire)
	marks = {k.decode(): v.decode() for k, v in e.client.hgetall(key).items()}
	assert marks == {n: job_id_for(SITE, n, fire) for n in names}
	assert e.client.object("encoding", key) == b"hashtable"


def thirty_runs_due_in(env, seconds: int) -> tuple[Env, list[str], int]:
	"""A leading daemon's context with 30 schedules due at one fire time ``seconds`` from now."""
	e = env()
	e.lead()
	names = [f"TS-{i:03d}" for i in range(30)]
	e.upsert(*(row(n, "0 0 1 1 *") for n in names))
	fire = soon(seconds)
	for n in names:
		e.at(n, fire)
	return e, names, fire


@pytest.mark.parametrize("others", ["a full refresh runs", "an edit waits in the internal queue"])
def test_preparing_gives_way_to_the_refresh_and_edits_while_the_rest_still_fits(env, others):
	e, names, fire = thirty_runs_due_in(env, 60)
	index = prepared.prepared_key("btu", SITE)
	e.preparer.cost = 0.01  # as measured: 30 runs need 0.4 s (YIELD_SAFETY) + the 1 s margin, of 60

	def make_others_wait(waiting: bool) -> None:
		if others == "a full refresh runs":
			e.ctx.refresh_progress.running = waiting
		elif waiting:
			e.ctx.queue.put((SITE, "TS-edited"), ("sync", None), priority=True)
		else:
			e.ctx.queue.get_parts(10, 10, 10, timeout=0.1)

	make_others_wait(True)
	worker = threading.Thread(target=e.preparer.prepare_fire_time, args=(SITE, fire), daemon=True)
	worker.start()
	worker.join(0.5)
	assert worker.is_alive() and e.client.hlen(index) == 0  # paused: nothing stored yet
	make_others_wait(False)
	worker.join(20)
	assert not worker.is_alive() and e.client.hlen(index) == len(names)
	record = e.preparer.recent[-1]
	assert record["complete"] and record["runs"] == len(names) and record["gave_way_s"] > 0


def test_preparing_does_not_give_way_once_the_rest_would_not_fit_before_the_fire_time(env):
	e, names, fire = thirty_runs_due_in(env, 4)
	e.preparer.cost = 0.1  # as measured: 30 runs need 3.75 s (YIELD_SAFETY) + the 1 s margin, of 4
	e.ctx.refresh_progress.running = True
	assert e.preparer.prepare_fire_time(SITE, fire) == len(names)
	assert e.preparer.recent[-1]["gave_way_s"] == 0


def test_a_second_step_for_the_same_runs_makes_nothing_visible_again(env):
	e = env()
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"), row("TS-2", "0 0 1 1 *"))
	fire = soon(2)
	e.at("TS-1", fire)
	e.at("TS-2", fire)
	e.preparer.prepare_fire_time(SITE, fire)
	chunks = e.runs.take_due(SITE, fire)
	wait_until(fire)
	first = prepared.make_visible(e.client, e.preparer.scripts, chunks)
	assert len(first[0].visible) == 2
	markers = prepared.fired_key("btu", SITE, fire)
	assert e.client.hlen(markers) == 2  # its pad is gone
	assert e.client.object("encoding", markers) == b"hashtable"  # never a listpack to scan
	# The same packed steps again (a retry, or another daemon's copy): moved on, marked: nothing.
	again = prepared.make_visible(e.client, e.preparer.scripts, chunks)
	assert again[0].visible == [] and set(again[0].left.values()) == {prepared.NOT_DUE}
	e.at("TS-1", fire)  # even if the schedule were put back at that fire time, its marker stops it
	third = prepared.make_visible(e.client, e.preparer.scripts, chunks)
	assert third[0].left[0] == prepared.ALREADY_RAN
	assert len(e.queued_ids()) == 2


def send_packed(client, packed: bytes):
	"""Send one packed command (a PreparedChunk's step or move) on its own and read its reply."""
	pool, conn = prepared._borrow(client)
	try:
		conn.send_packed_command([packed])
		return conn.read_response()
	finally:
		pool.release(conn)


def test_an_edit_between_a_step_and_its_move_on_leaves_that_schedule_to_the_ordinary_path_and_its_new_rule(
	env,
):
	e = env()
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"), row("TS-2", "0 0 1 1 *"), row("TS-3", "0 0 1 1 *"))
	fire = soon(2)
	for name in ("TS-1", "TS-2", "TS-3"):
		e.at(name, fire)
	assert e.preparer.prepare_fire_time(SITE, fire) == 3
	wait_until(fire)
	[chunk] = e.runs.take_due(SITE, time.time())
	e.preparer.scripts.load_visible(e.client)
	assert int(send_packed(e.client, chunk.command)[3]) == 3  # all three queued and marked
	e.upsert(row("TS-2", "0 12 * * *"))  # its rule changes while its run is queued, still holding F
	e.ctx.store.remove(SITE, ["TS-3"])  # and TS-3 is disabled
	assert int(send_packed(e.client, chunk.move_on)) == 1  # only TS-1 moved on
	zset = e.keys.next_runs(SITE)
	following = dict(zip(chunk.names, chunk.followings))
	assert int(e.client.zscore(zset, "TS-1")) == following["TS-1"]
	assert e.client.zscore(zset, "TS-3") is None
	# The edit itself moved TS-2 to its new rule's next fire time (the new rule lacks F; its run,
	# already made visible under the old rule, stays: once).
	noon = fire - fire % 86400 + 12 * 3600  # "0 12 * * *" in UTC: noon of the fire time's day or the next
	noon = noon if noon > time.time() else noon + 86400
	assert int(e.client.zscore(zset, "TS-2")) == noon

	# The ordinary path has nothing of TS-2 to run or move.
	assert e.scheduler.fire(SITE, e.ctx.store.due(SITE, time.time(), 100)) == 0
	assert int(e.client.zscore(zset, "TS-2")) == noon
	assert sorted(e.queued_ids()) == sorted(chunk.job_ids)  # each run once


def test_two_daemons_preparing_the_same_fire_time_make_each_run_visible_once(env):
	a, b = env(), env()
	a.lead()
	a.upsert(*(row(f"TS-{i}", "0 0 1 1 *") for i in range(300)))
	fire = soon(3)
	for i in range(300):
		a.at(f"TS-{i}", fire)
	a.preparer.prepare_fire_time(SITE, fire)
	# b prepares too (as a daemon that held the lease a moment before would have): same ids, same jobs.
	b.scheduler.lease = a.scheduler.lease
	assert b.preparer.prepare_fire_time(SITE, fire) == 300
	wait_until(fire)
	chunks = a.runs.take_due(SITE, fire) + b.runs.take_due(SITE, fire)
	outcomes = prepared.make_visible(a.client, a.preparer.scripts, chunks)
	assert sum(len(o.visible) for o in outcomes) == 300
	ids = a.queued_ids()
	assert len(ids) == len(set(ids)) == 300


def test_a_step_whose_lease_moved_to_another_daemon_writes_nothing(env):
	e = env()
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"))
	fire = soon(2)
	e.at("TS-1", fire)
	e.preparer.prepare_fire_time(SITE, fire)
	e.client.set(e.keys.lease("prepbench"), "another-daemon", px=60000)
	wait_until(fire)
	outcomes = e.fire()
	assert outcomes[0].code == prepared.LEASE_LOST
	assert e.queued_ids() == []
	assert e.client.zscore(e.keys.next_runs(SITE), "TS-1") == fire
	assert not e.client.exists(prepared.fired_key("btu", SITE, fire))


def test_runs_whose_schedule_changed_or_was_dropped_are_left_to_the_ordinary_path(env):
	e = env()
	e.lead()
	e.upsert(*(row(f"TS-{i}", "0 0 1 1 *") for i in range(4)))
	fire = soon(2)
	for i in range(4):
		e.at(f"TS-{i}", fire)
	e.preparer.prepare_fire_time(SITE, fire)
	e.at("TS-1", fire + 3600)  # its rule changed: another fire time
	e.client.zrem(e.keys.next_runs(SITE), "TS-2")  # disabled or deleted
	prepared.drop(e.client, e.preparer.scripts, prepared.prepared_key("btu", SITE), ["TS-3"])  # edited
	assert not e.client.exists(Job.key_for(job_id_for(SITE, "TS-3", fire)))
	wait_until(fire)
	(outcome,) = e.fire()
	by_name = {outcome.chunk.names[i]: code for i, code in outcome.left.items()}
	assert by_name == {"TS-1": prepared.NOT_DUE, "TS-2": prepared.NOT_DUE, "TS-3": prepared.NOT_PREPARED}
	assert e.queued_ids() == [job_id_for(SITE, "TS-0", fire)]
	# Nothing of the dropped job came back, and the edited schedule is still due for the ordinary path.
	assert not e.client.exists(Job.key_for(job_id_for(SITE, "TS-3", fire)))
	assert e.client.zscore(e.keys.next_runs(SITE), "TS-3") == fire
	assert e.client.hkeys(prepared.fired_key("btu", SITE, fire)) == [b"TS-0"]


def test_preparing_never_overwrites_a_live_job_or_a_run_already_marked(env):
	e = env()
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"), row("TS-2", "0 0 1 1 *"))
	fire = soon(3)
	e.at("TS-1", fire)
	e.at("TS-2", fire)
	live = Job.key_for(job_id_for(SITE, "TS-1", fire))
	e.client.hset(live, mapping={"status": "started", "origin": "default"})
	e.client.hset(prepared.fired_key("btu", SITE, fire), "TS-2", "somebody-else")
	assert e.preparer.prepare_fire_time(SITE, fire) == 0
	assert e.client.hgetall(live) == {b"status": b"started", b"origin": b"default"}
	assert not e.client.exists(Job.key_for(job_id_for(SITE, "TS-2", fire)))
	assert set(e.client.scan_iter(match="rq:job:*")) == {as_bytes(live)}  # nothing written for either


def test_a_run_whose_previous_run_is_still_active_is_left_when_its_policy_is_skip(env):
	e = env()
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *", overlap_policy="Skip"), row("TS-2", "0 0 1 1 *", overlap_policy="Skip"))
	fire = soon(2)
	e.at("TS-1", fire)
	e.at("TS-2", fire)
	e.client.hset(e.keys.last_jobs(SITE), mapping={"TS-1": "old-run-1", "TS-2": "old-run-2"})
	e.client.hset(Job.key_for("old-run-1"), "status", "started")
	e.client.hset(Job.key_for("old-run-2"), "status", "finished")
	e.preparer.prepare_fire_time(SITE, fire)
	wait_until(fire)
	(outcome,) = e.fire()
	assert {outcome.chunk.names[i]: c for i, c in outcome.left.items()} == {"TS-1": prepared.PREVIOUS_ACTIVE}
	assert e.queued_ids() == [job_id_for(SITE, "TS-2", fire)]
	# The run made visible is now the one an overlapping fire time is checked against.
	assert e.client.hget(e.keys.last_jobs(SITE), "TS-2").decode() == job_id_for(SITE, "TS-2", fire)


def test_redis_losing_its_data_or_its_scripts_between_preparing_and_the_fire_time(env):
	e = env()
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"))
	fire = soon(2)
	e.at("TS-1", fire)
	e.preparer.prepare_fire_time(SITE, fire)
	chunks = e.runs.take_due(SITE, fire)
	e.client.script_flush()  # the steps' script is loaded again, and they run
	wait_until(fire)
	assert len(prepared.make_visible(e.client, e.preparer.scripts, chunks)[0].visible) == 1

	e.client.flushdb()  # everything lost: the step finds nothing to do and leaves nothing behind
	e.scheduler.lease_checked_at = 0.0
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"))
	e.at("TS-1", fire + 2)
	e.preparer.prepare_fire_time(SITE, fire + 2)
	chunks = e.runs.take_due(SITE, fire + 2)
	e.client.delete(Job.key_for(job_id_for(SITE, "TS-1", fire + 2)))  # as if its hash alone were lost
	wait_until(fire + 2)
	(outcome,) = prepared.make_visible(e.client, e.preparer.scripts, chunks)
	assert outcome.left == {0: prepared.NOT_PREPARED}
	assert not e.client.exists(Job.key_for(job_id_for(SITE, "TS-1", fire + 2)))
	assert e.client.llen("rq:queue:default") == 0


def test_a_step_beyond_misfire_grace_writes_nothing(env):
	e = env(misfire_grace=1)
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"))
	fire = soon(2)
	e.at("TS-1", fire)
	e.preparer.prepare_fire_time(SITE, fire)
	chunks = e.runs.take_due(SITE, fire)
	wait_until(fire + 2.2)
	(outcome,) = prepared.make_visible(e.client, e.preparer.scripts, chunks)
	assert outcome.code == prepared.TOO_LATE
	assert e.queued_ids() == [] and e.client.zscore(e.keys.next_runs(SITE), "TS-1") == fire


def test_the_preparer_waits_until_a_fire_time_comes_within_its_lead(env):
	e = env(prepare_ahead=5)  # a fire time 5 s away (plus twice its cost) is to be prepared now
	e.lead()
	e.upsert(row("TS-1", "0 0 1 1 *"), row("TS-2", "0 0 1 1 *"))
	far, near = soon(40), soon(4)
	e.at("TS-1", far)
	e.at("TS-2", near)
	assert e.preparer.step() == 0.0  # near is within its lead: prepared now
	assert e.runs.staged_at(SITE, "TS-2") == near and e.runs.staged_at(SITE, "TS-1") is None
	sleep = e.preparer.step()  # far is not: sleep until its lead begins
	assert 0 < sleep <= e.preparer.RESCAN and e.runs.staged_at(SITE, "TS-1") is None
	# A schedule edited after its run was prepared is prepared again from its new spec.
	e.upsert(row("TS-2", "0 0 1 1 *", argument_overrides='{"label": "new"}'))
	prepared.drop(e.client, e.preparer.scripts, prepared.prepared_key("btu", SITE), ["TS-2"])
	e.preparer.notify(SITE, ["TS-2"])
	assert e.runs.staged_at(SITE, "TS-2") is None
	assert e.preparer.step() == 0.0
	assert e.runs.staged_at(SITE, "TS-2") == near
	assert Job.fetch(job_id_for(SITE, "TS-2", near), connection=e.client).kwargs == {"label": "new"}


def test_runs_that_join_a_fire_time_after_it_was_prepared_are_prepared_too(env):
	"""A cold start's full refresh writes the schedules in chunks: a fire time whose lead began while
	it held only some of them was marked prepared, and the rest went the ordinary way at it."""
	e = env(prepare_ahead=5)
	e.lead()
	near = soon(4)
	e.upsert(row("TS-1", "0 0 1 1 *"), row("TS-2", "0 0 1 1 *"), row("TS-3", "0 0 1 1 *"))
	e.at("TS-1", near)
	assert e.preparer.step() == 0.0
	assert e.runs.staged_names(SITE, near) == {"TS-1"}
	assert e.preparer.step() > 0  # nothing else to prepare: sleep
	for name in ("TS-2", "TS-3"):  # the refresh's next chunk lands at the same fire time
		e.at(name, near)
	e.preparer.notify(SITE, earliest=near)  # as the consumer does after writing them
	assert e.preparer.step() == 0.0
	assert e.runs.staged_names(SITE, near) == {"TS-1", "TS-2", "TS-3"}
	assert [r["runs"] for r in e.preparer.recent] == [1, 2]  # only the newcomers were built
	assert e.preparer.step() > 0
	wait_until(near)
	assert sum(len(o.visible) for o in e.fire()) == 3


def test_an_edit_of_a_staged_run_rebuilds_its_whole_chunk_and_the_run_goes_to_its_new_queue(env):
	"""A re-prepared job keeps its id: a step packed before the edit must never be sent, or it would
	push the new job onto the old spec's queue."""
	e = env(prepare_ahead=5)
	e.lead()
	e.preparer.active = True  # as its thread sets it while this daemon leads
	e.ctx.prepared_changed = e.preparer.notify  # the consumer tells this preparer, as in the daemon
	near = soon(4)
	e.upsert(row("TS-1", "0 0 1 1 *"), row("TS-2", "0 0 1 1 *"))
	e.at("TS-1", near)
	e.at("TS-2", near)
	assert e.preparer.step() == 0.0
	assert e.runs.staged_names(SITE, near) == {"TS-1", "TS-2"}
	e.upsert(row("TS-2", "0 0 1 1 *", queue_name="long", argument_overrides='{"label": "new"}'))
	assert e.runs.staged_names(SITE, near) == set()  # the chunk holding TS-2 is gone whole
	e.preparer.step()  # both prepared again, alone (no scan of the fire time), and counted in
	assert e.runs.staged_names(SITE, near) == {"TS-1", "TS-2"}
	assert [r["runs"] for r in e.preparer.recent] == [2, 2]
	assert e.preparer.step() > 0 and len(e.preparer.recent) == 2  # nothing more to do
	wait_until(near)
	outcomes = e.fire()
	assert sum(len(o.visible) for o in outcomes) == 2
	assert e.queued_ids("default") == [job_id_for(SITE, "TS-1", near)]
	assert e.queued_ids("long") == [job_id_for(SITE, "TS-2", near)]
	job = Job.fetch(job_id_for(SITE, "TS-2", near), connection=e.client)
	assert job.origin == "long" and job.kwargs == {"label": "new"}


def test_a_standby_prepares_nothing_and_a_lost_lease_drops_what_was_prepared(env):
	e = env()
	e.client.set(e.keys.lease("prepbench"), "the-leader", px=60000)
	e.upsert(row("TS-1", "0 0 1 1 *"))
	e.at("TS-1", soon(2))
	assert not e.scheduler._check_lease()
	assert e.preparer.prepare_fire_time(SITE, soon(2)) == 0
	e.client.delete(e.keys.lease("prepbench"))
	e.lead()
	e.preparer.active = True
	e.preparer.prepare_fire_time(SITE, int(e.client.zscore(e.keys.next_runs(SITE), "TS-1")))
	assert e.runs.counts() == {SITE: 1}
	e.scheduler.lease.held = False
	e.preparer._inactive()
	assert e.runs.counts() == {}


def test_sweep_deletes_only_stale_prepared_jobs(env):
	e = env(misfire_grace=60)
	e.lead()
	e.upsert(row("TS-OLD", "0 0 1 1 *"), row("TS-RAN", "0 0 1 1 *"), row("TS-NEW", "0 0 1 1 *"))
	index = prepared.prepared_key("btu", SITE)
	old = int(time.time()) - 3600
	for name, status in (("TS-OLD", "scheduled"), ("TS-RAN", "finished")):
		job_id = job_id_for(SITE, name, old)
		e.client.hset(Job.key_for(job_id), "status", status)
		e.client.hset(index, name, f"{job_id} fp sha")
	new = soon(3)
	e.at("TS-NEW", new)
	e.preparer.prepare_fire_time(SITE, new)
	assert e.preparer.sweep(SITE) == 1
	assert not e.client.exists(Job.key_for(job_id_for(SITE, "TS-OLD", old)))
	assert e.client.hget(Job.key_for(job_id_for(SITE, "TS-RAN", old)), "status") == b"finished"
	assert set(e.client.hkeys(index)) == {b"TS-NEW"}


@pytest.mark.parametrize(
	"stamp",
	[0, 951782400, 951868799.5, 1709208000.25, 1735689599.999999, 4102444800, 1796163912.000001],
)
def test_the_step_writes_enqueued_at_in_rqs_format(redis_client, stamp):
	"""The step's Lua turns Redis's clock into RQ's '%Y-%m-%dT%H:%M:%S.%fZ' (no os.date in Redis)."""
	script = prepared.ISO_FN + "return rq_time(tonumber(ARGV[1]), tonumber(ARGV[2]))"
	sec = int(stamp)
	usec = round((stamp - sec) * 1e6)
	got = redis_client.eval(script, 0, sec, usec).decode()
	want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{usec:06d}Z"
	assert got == want


@contextmanager
def sites_due_at(redis_url: str, bench_id: str, sites: list[str], names: list[str], fire: int):
	"""A leading daemon's context (plain jobs, no database) whose sites each hold ``names`` due at
	``fire``: (ctx, scheduler, bench Redis client)."""
	config = DaemonConfig(
		sites=tuple(SiteConfig(name=site, db_name="unused", db_user="root") for site in sites),
		redis_url=redis_url,
		job_mode="plain",
		bench_id=bench_id,
		lease_ttl=30,
		prepare_ahead=1,
	)
	ctx = DaemonContext(config)
	try:
		consumer, scheduler = Consumer(ctx), Scheduler(ctx)
		client = ctx.store.bench_client()
		assert scheduler._check_lease()
		for site in sites:
			consumer._apply(site, [(n, row(n, "0 0 1 1 *")) for n in names], [], verbose=False)
			client.zadd(ctx.store.keys.next_runs(site), {n: fire for n in names})
		yield ctx, scheduler, client
	finally:
		ctx.store.close()


def test_a_fire_time_spread_over_many_sites_is_prepared_by_its_whole_cost_and_made_visible_in_one_send(
	redis_url, monkeypatch
):
	"""Issue 20: a fire time of 200 sites of 5 runs each. Its lead comes from all 1,000 runs (here 11 s
	at the cost set below), not from one site's 5 (1.05 s, which would leave every site to start a
	second ahead, one after the other): one step of the preparer prepares every site's runs, and
	at the fire time the steps of every site sharing the Redis go in one send."""
	sites = [f"s{i:03d}.localhost" for i in range(200)]
	names = [f"TS-{i}" for i in range(5)]
	fire = soon(6)
	with sites_due_at(redis_url, "manybench", sites, names, fire) as (ctx, scheduler, client):
		preparer = scheduler.preparer
		preparer.cost = 0.004  # s a run, as if measured: 1,000 runs need 1 + 2.5 x 4 s; 5 runs 1.05 s
		assert preparer.step() == 0.0  # the fire time's start has come: every site's runs at once
		assert scheduler.prepared.counts() == {site: len(names) for site in sites}
		for site in sites:
			assert client.hlen(prepared.prepared_key("btu", site)) == len(names)
		record = preparer.recent[-1]
		assert (
			record["sites"] == len(sites) and record["runs"] == len(sites) * len(names) and record["complete"]
		)
		assert preparer.step() > 0  # nothing left to prepare
		sends = []
		real = prepared.make_visible

		def counted(client, scripts, chunks):
			sends.append(len(chunks))
			return real(client, scripts, chunks)

		monkeypatch.setattr("btu.scheduler_daemon.scheduler.make_visible", counted)
		wait_until(fire)
		scheduler.check_due = False  # (the check against SQL at start has no database here)
		scheduler.step()
		assert sends == [len(sites)]  # one send for the 200 sites' steps (and their moves)
		assert ctx.counters.runs_prepared == ctx.counters.runs_enqueued == len(sites) * len(names)
		queued = [i.decode() for i in client.lrange("rq:queue:default", 0, -1)]
		assert sorted(queued) == sorted(job_id_for(site, n, fire) for site in sites for n in names)
		for site in sites:
			assert client.hlen(prepared.fired_key("btu", site, fire)) == len(names)
			assert min(client.zmscore(ctx.store.keys.next_runs(site), names)) > fire  # moved on


def test_a_group_of_sites_where_one_is_already_staged_prepares_the_others(redis_url):
	"""A site whose runs of the fire time were all staged already (a step before, or joined runs)
	beside another site of the same Redis: the group prepares the other site's runs and lets the
	first be (it once raised KeyError for it, which stopped the preparer thread)."""
	sites = ["a.localhost", "b.localhost"]
	names = [f"TS-{i}" for i in range(3)]
	fire = soon(30)
	with sites_due_at(redis_url, "groupbench", sites, names, fire) as (ctx, scheduler, client):
		preparer = scheduler.preparer
		holder = preparer.holder()
		assert preparer.prepare_chunk(sites[0], fire, names, holder) == (len(names), 0)
		assert preparer.prepare_across(fire, [(site, len(names)) for site in sites]) == len(names)
		assert scheduler.prepared.counts() == {site: len(names) for site in sites}
