"""Scheduler: sleep until the earliest fire time (or a change), enqueue each due run exactly once.

Runs prepared ahead (prepared.py: the preparer thread this scheduler owns) are made visible first, at
their fire time, by one server-side step per chunk. Whatever is still due after that (not prepared,
or left by a step's checks) goes the ordinary way: each batch is one Redis transaction guarded by
WATCH on the lease (on the runs' markers hashes where the lease lives in another Redis) with the
markers read inside it: the markers, the RQ jobs and the moves to the next fire times are written
together or not at all, so a crash, a restart or a second daemon never doubles a run.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from redis.exceptions import RedisError, WatchError
from rq.job import Job

from btu.contracts.runs import ACTIVE_JOB_STATUSES, OVERLAP_SKIP

from .backoff import Backoff
from .context import DaemonContext
from .fire_plan import Decision, PlannedRun, plan_batch
from .jobs import enqueue_in_transaction
from .lease import Lease
from .logutil import log_event, utc_iso
from .pause import apply_site_settings
from .prepared import LEASE_LOST, PreparedRuns, Preparer, make_visible, record_outcomes
from .redis_store import misfire_record, overlap_record
from .specs import ScheduleSpec
from .sql import SqlUnavailable

log = logging.getLogger("btu.scheduler")
BATCH = 1000
MAX_SLEEP = 60.0
MARKER_TTL_EXTRA = 24 * 3600
EPOCH_CHECK_SECONDS = 0.5
# Woken this much later than planned, the process was stopped (SIGSTOP, a frozen VM) or starved: edits
# made meanwhile may still wait in the socket or be unread, so the due runs are checked against SQL
# before they fire (as at start).
STALL_SECONDS = 5.0
DUE_CHECK_LIMIT = 200_000  # due runs per site checked against SQL after a start or a stall
DUE_CHECK_BUDGET = 5.0  # s for that check across sites; the sites left fire by the rules Redis holds


class Scheduler:
	def __init__(self, ctx: DaemonContext) -> None:
		self.ctx = ctx
		self.wake = threading.Event()
		self.planned_wake = 0.0
		self.lease: Lease | None = None
		self.lease_checked_at = 0.0
		self.backoff = Backoff()
		self.epochs: dict[str, str] = {}  # site -> token of the Redis data we last saw
		self.epoch_checked_at = 0.0
		self.acquire_not_before = 0.0
		self.prepared = PreparedRuns()
		self.preparer = Preparer(ctx, self.prepared, self.holder)
		# At start and after a stall: the due runs are checked against SQL before they fire, if this
		# daemon leads at that pass (otherwise another daemon fired meanwhile, and this one's full
		# refresh at start reads every row before it can take the lease over).
		self.check_due = True
		ctx.wake_scheduler = self.notify
		ctx.prepared_changed = self.preparer.notify

	def holder(self) -> str | None:
		"""The lease holder id while this daemon holds the lease (the preparer works only then)."""
		lease = self.lease
		return lease.holder_id if lease is not None and lease.held else None

	def notify(self, fire_ts: float) -> None:
		"""Wake the scheduler when a fire time earlier than its planned wake appears."""
		if fire_ts < self.planned_wake:
			self.wake.set()

	def run(self) -> None:
		ctx = self.ctx
		while not ctx.stop.is_set():
			try:
				timeout = self.step()
				if self.backoff.succeed():
					ctx.health.redis_up()
					log_event(log, logging.INFO, "redis_recovered")
					ctx.request_refresh()
			except RedisError as exc:
				ctx.health.redis_down(exc)
				timeout = self.backoff.fail()
				log_event(log, logging.WARNING, "redis_unavailable", error=str(exc), retry_in_s=timeout)
			if timeout <= 0:
				continue
			self.planned_wake = time.time() + timeout
			expected = time.monotonic() + timeout
			self.wake.wait(timeout)
			self.wake.clear()
			late = time.monotonic() - expected
			if late > STALL_SECONDS:
				self.check_due = True
				log_event(
					log,
					logging.WARNING,
					"scheduler_stalled",
					late_s=round(late, 1),
					action="due runs are checked against SQL before they fire",
				)
		self.release_lease()

	def release_lease(self) -> None:
		if self.lease and self.lease.held:
			try:
				self.lease.release()
				log_event(log, logging.INFO, "lease_released", holder=self.lease.holder_id)
			except RedisError:
				pass
		self.ctx.is_leader = False

	def _check_lease(self) -> bool:
		if self.lease is None:
			self.lease = Lease(self.ctx.store, self.ctx.config.lease_ttl)
		now = time.monotonic()
		if not self.lease.held and now < self.acquire_not_before:
			return False  # Redis just lost its data: give the leader (and its memory) time to take the lease back
		if now - self.lease_checked_at >= self.lease.renew_interval or not self.lease.held:
			was = self.lease.held
			held = self.lease.acquire_or_renew()
			self.lease_checked_at = now
			self.ctx.is_leader = held
			if held:
				self.ctx.lease_confirmed_at = now  # taken before the call: never later than Redis's own
			if held != was:
				log_event(
					log,
					logging.INFO,
					"lease_acquired" if held else "lease_lost",
					holder=self.lease.holder_id,
					current_holder=None if held else self.lease.holder(),
				)
				self._leadership_changed(held)
		return self.lease.held

	def _leadership_changed(self, held: bool) -> None:
		"""The fire times remembered for catch-ups (leader_memory.py) are only right while this
		daemon is the one enqueueing: forget them on every change of leadership; a new leader
		starts from what Redis holds at the moment it takes over (no one else enqueues then)."""
		ctx = self.ctx
		ctx.memory.clear()
		self.prepared.clear()  # a new leader prepares from what Redis holds; a standby prepares nothing
		self.preparer.wake.set()
		if not held:
			return
		for site in ctx.databases:
			client = ctx.store.client(site)
			scores = client.zrange(ctx.store.keys.next_runs(site), 0, -1, withscores=True)
			timings = client.hgetall(ctx.store.keys.timings(site))
			ctx.memory.load(
				site,
				[
					(name.decode(), timings[name].decode(), int(score))
					for name, score in scores
					if name in timings
				],
			)

	def _check_data_lost(self) -> None:
		"""Notice when Redis lost our keys (restarted without persistence, flushed), even when no
		command failed (redis-py reconnects silently): then resync every schedule from SQL, with
		the fire times the leader remembers (leader_memory.py) so that missed runs are caught up."""
		now = time.monotonic()
		if now - self.epoch_checked_at < EPOCH_CHECK_SECONDS:
			return
		store = self.ctx.store
		tokens: dict[str, bytes | None] = {}
		for client, sites in store.by_client(self.ctx.databases):
			pipe = client.pipeline(transaction=False)
			for site in sites:
				pipe.get(store.keys.epoch(site))
			tokens.update(zip(sites, pipe.execute()))
		for site, token in tokens.items():
			if token is None:
				client = store.client(site)
				key = store.keys.epoch(site)
				client.set(key, uuid.uuid4().hex, nx=True)
				token = client.get(key)
			token = token.decode() if token else ""
			seen = self.epochs.get(site)
			self.epochs[site] = token
			if seen is not None and token != seen:
				log_event(
					log,
					logging.WARNING,
					"redis_data_lost",
					site=site,
					action="resync every schedule from SQL and catch up missed runs",
				)
				self.ctx.request_refresh(site)
				self.prepared.clear(site)  # their jobs went with the data
				if self.lease and self.lease.held:
					self.lease_checked_at = 0.0  # the lease went with the data: take it back now
				else:
					self.acquire_not_before = now + self.ctx.config.lease_ttl
		self.epoch_checked_at = now  # only after a check that got through: first thing once Redis is back

	def step(self) -> float:
		"""One pass: fire what is due; return how long to sleep (0 = go again now)."""
		ctx = self.ctx
		# Prepared runs first, at their fire time, before any other round trip (a step checks the
		# lease itself where it lives in the site's Redis; elsewhere the markers keep runs single).
		if self.lease is not None and self.lease.held and not self.check_due:
			due = self.prepared.take_all_due(time.time())
			# A paused site's chunks are dropped: its runs stay due (on resume misfire_grace decides).
			due = {
				site: chunks
				for site, chunks in due.items()
				if site in ctx.databases and not ctx.pause.paused(site)
			}
			if due:
				self.fire_prepared(due)
		elif self.check_due:
			self.prepared.clear()  # after a stall: what was packed may be an old rule's (the ordinary path checks)
		self._check_data_lost()
		if not self._check_lease():
			self.check_due = False  # another daemon leads: it fires
			return self.lease.renew_interval
		fired_any = False
		# A paused site's due runs stay in Redis; when it resumes, the misfire rule decides.
		active = [site for site in ctx.databases if not ctx.pause.paused(site)]
		if self.check_due:
			self.check_due = False
			deadline = time.monotonic() + DUE_CHECK_BUDGET
			for site in active:
				self._check_due_against_sql(site, deadline)
		# (Every site's due runs and earliest fire time read with one pipelined send per Redis.)
		for site, due in ctx.store.due_many(active, time.time(), BATCH).items():
			self.fire(site, due)
			fired_any = True
		if fired_any:
			return 0.0
		earliest = list(ctx.store.earliest_many(active).values())
		until_lease = self.lease.renew_interval - (time.monotonic() - self.lease_checked_at)
		sleep = min([MAX_SLEEP, max(0.0, until_lease)] + [max(0.0, t - time.time()) for t in earliest])
		return max(sleep, 0.001)

	def _check_due_against_sql(self, site: str, deadline: float) -> None:
		"""Read the rows of the site's due runs from SQL and apply them (as the consumer does) before
		they fire: an edit made while this daemon was stopped or stalled, its socket message unread,
		replaces an old rule's fire time first (it never runs). A site whose database is down
		(sql_gate.py), or any site once ``deadline`` (time.monotonic()) has passed, is left to the
		rules Redis holds (runs are enqueued from Redis while MariaDB is down)."""
		ctx = self.ctx
		due = ctx.store.due(site, time.time(), DUE_CHECK_LIMIT)
		database = ctx.databases.get(site)
		if not due or site in ctx.sites_without_btu:
			return
		names = [name for name, _score in due]
		why = None
		if database is None or ctx.sql_gate.blocked(site):
			why = "its database is down"
		elif time.monotonic() > deadline:
			why = f"the check of due runs took its {DUE_CHECK_BUDGET:g} s"
		else:
			try:
				apply_site_settings(ctx, site)  # the site's zone and pause as they are now
				read_at = time.monotonic()
				rows = database.fetch_schedules(names)
			except SqlUnavailable as exc:
				ctx.sql_gate.failed(site, exc)
				why = str(exc)
		if why is not None:
			log_event(
				log,
				logging.WARNING,
				"due_runs_unchecked",
				site=site,
				runs=len(names),
				error=why,
				action="fired by the rules Redis holds",
			)
			return
		ctx.apply_rows(site, rows, read_at)
		log_event(log, logging.INFO, "due_runs_checked", site=site, runs=len(names))

	def fire_prepared(self, due: dict[str, list]) -> int:
		"""Make prepared runs visible: site -> its due chunks. The steps of every site sharing a Redis
		go in one send (one server-side step per chunk, then their moves), so that the last site's
		runs wait for no round trip of the sites before it; the runs a step left stay due for the
		ordinary path. Returns how many were made visible."""
		ctx = self.ctx
		by_client: dict[int, tuple] = {}
		for site, chunks in due.items():
			client = ctx.store.client(site)
			by_client.setdefault(id(client), (client, []))[1].extend(chunks)
		outcomes: dict[str, list] = {site: [] for site in due}
		failure: RedisError | None = None
		for client, chunks in by_client.values():
			try:
				for outcome in make_visible(client, self.preparer.scripts, chunks):
					outcomes[outcome.chunk.site].append(outcome)
			except RedisError as exc:  # this Redis's chunks are left to the ordinary path; others go on
				failure = failure or exc
		visible = 0
		for site, found in outcomes.items():
			summary = record_outcomes(ctx, site, found)
			visible += summary["visible"]
			if LEASE_LOST in summary["codes"]:
				# The lease key is not ours (another daemon took it, or Redis lost its data): look
				# again now; _check_lease decides (keeping the fire times remembered when the key just
				# vanished).
				self.lease_checked_at = 0.0
				self.prepared.clear(site)
			for outcome in found:
				if outcome.error is not None:
					log_event(log, logging.ERROR, "prepared_step_failed", site=site, error=str(outcome.error))
			self.preparer.notify(site, earliest=summary["earliest_following"], joined=summary["moved_on"])
		if failure is not None:
			raise failure
		return visible

	def _run_times(
		self, site: str, due: list[tuple[str, int]], specs: list[ScheduleSpec | None]
	) -> list[int]:
		"""The fire time each due entry runs for: its score in Redis, or an earlier fire time this
		leader remembers as not yet enqueued (same rule, within the grace). That happens when Redis
		lost its data while the leader stalled and a standby's resync wrote the next fire time
		before the leader's own catch-up was applied: the missed run is caught up, not lost."""
		oldest = time.time() - self.ctx.config.misfire_grace
		run_times = []
		for (name, score), spec in zip(due, specs):
			known = None if spec is None else self.ctx.memory.fire_time(site, name, spec.timing)
			# Only a time of the current rule (a remembered time is checked before it runs).
			usable = known is not None and oldest <= known < score and spec.fires_at(known)
			run_times.append(known if usable else score)
		return run_times

	def fire(self, site: str, due: list[tuple[str, int]]) -> int:
		"""Enqueue one batch of due runs of one site atomically; returns how many were enqueued.

		Read (specs, remembered fire times, active previous runs; markers inside the transaction), plan
		(fire_plan.plan_batch, no Redis), write the plan in one transaction, then record it."""
		if not due:
			return 0
		ctx = self.ctx
		store = ctx.store
		client = store.client(site)
		names = [name for name, _ in due]
		grace = ctx.config.misfire_grace
		lease_shared = client is store.bench_client()
		try:
			with client.pipeline(transaction=True) as pipe:
				# The specs are read under a WATCH of the site's rule edits: a rule or zone that
				# changes before EXEC aborts the batch (retried at once with the new rule), so no run
				# is enqueued, and no schedule moved on, by a rule just replaced.
				pipe.watch(store.keys.rule_edits(site), *([self.lease.key] if lease_shared else []))
				raw_specs = pipe.hmget(store.keys.specs(site), names)
				specs = [None if raw is None else ScheduleSpec.from_json(raw) for raw in raw_specs]
				run_times = self._run_times(site, due, specs)
				# A run's marker: its field in its fire time's markers hash.
				markers = [(store.keys.fired(site, ts), name) for (name, _), ts in zip(due, run_times)]
				marker_hashes = list(dict.fromkeys(key for key, _name in markers))
				# Watching the lease is enough where it lives in this Redis: only its holder writes
				# markers, and a change of holder aborts this transaction. Elsewhere the markers
				# themselves are watched (a WATCH costs Redis ~5 us a key).
				if not lease_shared:
					pipe.watch(*marker_hashes)
				running = self._previous_runs_active(site, client, due, specs)
				if lease_shared:
					holder = pipe.get(self.lease.key)
					if holder is None or holder.decode() != self.lease.holder_id:
						self.lease.held = False
						ctx.is_leader = False
						log_event(log, logging.WARNING, "lease_lost", holder=self.lease.holder_id)
						self._leadership_changed(False)
						return 0
				already = self._read_markers(pipe, markers, marker_hashes)
				now = time.time()
				plan = plan_batch(
					due, run_times, specs, [m is not None for m in already], running, now, grace
				)
				pipe.multi()
				enqueued = self._write_plan(site, client, pipe, plan, markers, now)
				pipe.execute()
		except WatchError:
			log_event(log, logging.DEBUG, "fire_batch_retry", site=site, runs=len(due))
			return 0
		self._record(site, plan, enqueued)
		return len(enqueued)

	def _write_plan(
		self, site: str, client, pipe, plan: list[PlannedRun], markers: list[tuple[str, str]], now: float
	) -> list[tuple[PlannedRun, str]]:
		"""Queue the plan's writes on the transaction: the jobs, their markers and the moves to the next
		fire times (one script call), one SADD per queue, the per-minute count, the Skip policy's last
		jobs and the skip records. Returns (run, job id) per run enqueued."""
		ctx = self.ctx
		store = ctx.store
		grace = ctx.config.misfire_grace
		enqueued: list[tuple[PlannedRun, str]] = []
		last_jobs: dict[str, str] = {}
		marker_sets: list = []  # (index of its hash in the script's KEYS, schedule, job id) triples
		written: dict[str, int] = {}
		moves: list = []
		queues: dict[str, object] = {}
		for run, (hash_key, _name) in zip(plan, markers):
			if run.decision is Decision.ENQUEUE:
				queue, job = ctx.jobs.build(client, run.spec, run.fire_ts)
				marker_sets += (written.setdefault(hash_key, len(written) + 2), run.name, job.id)
				queues[queue.key] = queue
				# Written whole: a job prepared ahead for this run (status scheduled) is replaced.
				pipe.delete(job.key)
				enqueue_in_transaction(queue, job, pipe, register_queue=False)
				enqueued.append((run, job.id))
				if run.spec.overlap == OVERLAP_SKIP:
					last_jobs[run.name] = job.id
			moves += (run.name, run.score, "" if run.next_fire is None else run.next_fire)
		for queue in queues.values():
			pipe.sadd(queue.redis_queues_keys, queue.key)
		store.fire_batch_script(site)(
			keys=[store.keys.next_runs(site), *written],
			args=[grace + MARKER_TTL_EXTRA, len(marker_sets) // 3, *marker_sets, *moves],
			client=pipe,
		)
		if enqueued:
			pipe.hincrby(store.keys.enqueued(site), str(int(now // 60)), len(enqueued))
		if last_jobs:
			pipe.hset(store.keys.last_jobs(site), mapping=last_jobs)
		skip_records = [
			(run.name, misfire_record(run.fire_ts, now, grace))
			if run.decision is Decision.MISFIRE
			else (run.name, overlap_record(run.fire_ts, now, *run.previous))
			for run in plan
			if run.decision in (Decision.MISFIRE, Decision.OVERLAP)
		]
		if skip_records:
			store.record_skips(site, skip_records, client=pipe)
		return enqueued

	def _record(self, site: str, plan: list[PlannedRun], enqueued: list[tuple[PlannedRun, str]]) -> None:
		"""After the transaction: the leader's memory, the preparer, counters, metrics, log lines."""
		ctx = self.ctx
		ctx.memory.advanced(site, [(run.name, run.next_fire) for run in plan])
		following = [run for run in plan if run.next_fire]
		if following:
			self.preparer.notify(
				site,
				earliest=min(run.next_fire for run in following),
				joined=[run.name for run in following],
			)
		skipped = [run for run in plan if run.decision is Decision.MISFIRE]
		overlapped = [run for run in plan if run.decision is Decision.OVERLAP]
		ctx.count("runs_already_enqueued", sum(run.decision is Decision.ALREADY_ENQUEUED for run in plan))
		ctx.count("runs_enqueued", len(enqueued))
		ctx.count("runs_skipped_misfire", len(skipped))
		ctx.count("runs_skipped_overlap", len(overlapped))
		if ctx.metrics is not None:
			for run, _job_id in enqueued:
				ctx.metrics.observe_lateness(run.lateness)
		if enqueued and log.isEnabledFor(logging.INFO):
			stamps: dict[int, str] = {}
			log_event(
				log,
				logging.INFO,
				"run_enqueued",
				site=site,
				each=[
					{
						"schedule": run.name,
						"fire_time": stamps.get(run.fire_ts)
						or stamps.setdefault(run.fire_ts, utc_iso(run.fire_ts)),
						"job_id": job_id,
						"late_ms": round(run.lateness * 1000, 1),
						"missed_fire_times_collapsed": run.collapsed or None,
					}
					for run, job_id in enqueued
				],
			)
		for run in skipped:
			log_event(
				log,
				logging.WARNING,
				"run_skipped_misfire",
				site=site,
				schedule=run.name,
				fire_time=utc_iso(run.fire_ts),
				late_s=round(run.lateness, 1),
				misfire_grace_s=ctx.config.misfire_grace,
			)
		for run in plan:
			if run.decision is Decision.NOT_IN_RULE:
				log_event(
					log,
					logging.WARNING,
					"run_dropped_not_in_rule",
					site=site,
					schedule=run.name,
					fire_time=utc_iso(run.fire_ts),
					rule=run.spec.rule,
					time_zone=run.spec.timezone,
					next_run=utc_iso(run.next_fire) if run.next_fire else None,
				)
		for run in overlapped:
			log_event(
				log,
				logging.WARNING,
				"run_skipped_overlap",
				site=site,
				schedule=run.name,
				fire_time=utc_iso(run.fire_ts),
				previous_job=run.previous[0],
				previous_status=run.previous[1],
				overlap_policy=OVERLAP_SKIP,
			)

	@staticmethod
	def _read_markers(pipe, markers: list[tuple[str, str]], hashes: list[str]) -> list[bytes | None]:
		"""The job id each run's marker holds (None: not enqueued yet), one HMGET per markers hash."""
		by_hash: dict[str, list[str]] = {key: [] for key in hashes}
		for key, name in markers:
			by_hash[key].append(name)
		found: dict[tuple[str, str], bytes | None] = {}
		for key, names in by_hash.items():
			for name, value in zip(names, pipe.hmget(key, names)):
				found[(key, name)] = value
		return [found[marker] for marker in markers]

	def _previous_runs_active(
		self, site: str, client, due: list[tuple[str, int]], specs: list[ScheduleSpec | None]
	) -> dict[str, tuple[str, str]]:
		"""Schedules with overlap policy Skip whose previous run is still queued or running:
		name -> (its job id, RQ status). Two reads, only when such a schedule is due. (A status can
		only move on, from queued to started to finished: a run read as active at its fire time
		is skipped even if it ends before the transaction commits.)"""
		names = [
			name
			for (name, _score), spec in zip(due, specs)
			if spec is not None and spec.overlap == OVERLAP_SKIP
		]
		if not names:
			return {}
		job_ids = client.hmget(self.ctx.store.keys.last_jobs(site), names)
		known = [(name, raw.decode()) for name, raw in zip(names, job_ids) if raw]
		if not known:
			return {}
		pipe = client.pipeline(transaction=False)
		for _name, job_id in known:
			pipe.hget(Job.key_for(job_id), "status")
		active = {}
		for (name, job_id), status in zip(known, pipe.execute()):
			text = status.decode() if isinstance(status, bytes) else status
			if text in ACTIVE_JOB_STATUSES:
				active[name] = (job_id, text)
		return active
