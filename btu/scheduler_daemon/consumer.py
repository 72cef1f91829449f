"""Consumer: pop schedule ids from the internal queue, read SQL, write next fire times to Redis."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from .backoff import Backoff
from .context import Action, DaemonContext
from .fire_plan import missed_fire_time
from .logutil import log_event, utc_iso
from .pause import apply_site_settings
from .redis_store import misfire_record
from .refiller import ROW_READ_AT
from .specs import ScheduleInvalid, ScheduleSpec, spec_from_row
from .sql import SqlUnavailable
from .unique_queue import QueueClosed

log = logging.getLogger("btu.consumer")
BATCH = 200  # rows a refresh hands over at once; an edit never waits for more than one such batch
# Socket requests (priority lane) per turn: the newest few first, applied on their own (an edit pushed
# behind a backlog waits for one small read), then a large share of the oldest (a bulk push of
# 20,000 names drains in seconds). Their rows are read from SQL SQL_CHUNK names per query.
NEWEST = 50
BACKLOG = 2000
SQL_CHUNK = 500
ONE_SHOT_DONE = 4  # upsert's code for a one-shot whose run was already enqueued
DUE_RULE_CHANGED = 5  # upsert's code: the rule changed after the pending run fell due
CATCH_UP_APPLIED = 3  # upsert's code: a catch-up's earlier fire time replaced the pending one


@dataclass
class SyncPlan:
	"""What a batch of rows of one site becomes before anything is written."""

	# (name, spec JSON, timing, fire time) of each schedule to upsert
	entries: list[tuple[str, str, str, int]] = field(default_factory=list)
	catch_up: set[str] = field(default_factory=set)  # fire time in the past, from the leader's memory
	once: set[str] = field(default_factory=set)  # one-shots (kept unless their run was enqueued)
	calendars: set[str] = field(default_factory=set)  # follow a holiday list (redis_store.upsert)
	expired: list[tuple[str, int, dict]] = field(default_factory=list)  # one-shots beyond the grace
	removals: list[str] = field(default_factory=list)  # cancelled, disabled or deleted
	deleted: list[str] = field(default_factory=list)  # rows gone: their skips and last job go too
	errors: dict[str, str] = field(default_factory=dict)  # name -> why it cannot run
	now: float = 0.0  # when it was planned


@dataclass
class SyncWritten:
	"""What Redis made of the plan."""

	synced: list[tuple[str, str, int, bool]] = field(default_factory=list)  # name, timing, fire time, changed
	done: list[str] = field(default_factory=list)  # one-shots whose run was already enqueued: removed
	missed: list[str] = field(default_factory=list)  # one-shots recorded as missed (beyond the grace)
	# (name, the old rule's due fire time dropped, the new rule's missed fire time run instead or None)
	replaced: list[tuple[str, int, int | None]] = field(default_factory=list)


class Consumer:
	def __init__(self, ctx: DaemonContext) -> None:
		self.ctx = ctx
		self.redis_backoff = Backoff()
		self._reported_errors: dict[tuple[str, str], str] = {}
		# (site, schedule) -> time.monotonic() of the newest SQL read (or cancel) applied for it:
		# a full refresh's row read before that is stale and must not undo the edit.
		self._synced_at: dict[tuple[str, str], float] = {}
		# The scheduler applies rows too (apply_rows: due runs checked against SQL after a stall).
		self._lock = threading.RLock()
		ctx.apply_rows = self.apply_rows

	def _mark_synced(self, site: str, names: list[str], at: float) -> None:
		with self._lock:
			if len(self._synced_at) > 100_000:  # bounded: only entries younger than any refresh matter
				self._synced_at = {k: t for k, t in self._synced_at.items() if t > at - 3600}
			for name in names:
				self._synced_at[(site, name)] = at

	def apply_rows(self, site: str, rows: dict[str, dict | None], read_at: float) -> None:
		"""Apply rows read from SQL at ``read_at`` (time.monotonic()) by another activity, as a socket
		request's are (the scheduler's check of due runs after a start or a stall)."""
		with self._lock:
			self._mark_synced(site, list(rows), read_at)
			self.ctx.sql_gate.settle(site, list(rows), read_at)  # a parked edit older than this read is moot
			self._apply(site, list(rows.items()), [], verbose=False)

	def run(self) -> None:
		while not self.ctx.stop.is_set():
			try:
				parts = self.ctx.queue.get_parts(NEWEST, BACKLOG, BATCH, timeout=1.0)
			except QueueClosed:
				return
			for part in parts:
				self.process(part)

	def process(self, batch: list[tuple[tuple[str, str], Action]]) -> None:
		by_site: dict[str, list[tuple[str, Action]]] = defaultdict(list)
		for (site, name), action in batch:
			by_site[site].append((name, action))
		for site, items in self._requests_first(by_site):
			try:
				self._process_site(site, items)
				if self.redis_backoff.succeed():
					self.ctx.health.redis_up()
					log_event(log, logging.INFO, "redis_recovered", site=site)
					self.ctx.request_refresh()
			except RedisError as exc:
				self._requeue(site, items)
				self.ctx.health.redis_down(exc)
				wait = self.redis_backoff.fail()
				log_event(
					log,
					logging.WARNING,
					"redis_unavailable",
					site=site,
					error=str(exc),
					retry_in_s=wait,
					pending=len(items),
				)
				self.ctx.stop.wait(wait)

	@staticmethod
	def _requests_first(
		by_site: dict[str, list[tuple[str, Action]]],
	) -> Iterator[tuple[str, list[tuple[str, Action]]]]:
		"""Socket requests (sync, cancel) are applied on their own before a refresh's rows popped
		in the same batch: an edit waits for one SQL read and one Redis write, not for a whole batch of rows."""
		for site, items in by_site.items():
			requests = [item for item in items if item[1][0] != "row"]
			rows = [item for item in items if item[1][0] == "row"]
			for part in (requests, rows):
				if part:
					yield site, part

	def _requeue(self, site: str, items: list[tuple[str, Action]]) -> None:
		"""Back at the head of their lane; a newer request for a key that came meanwhile wins."""
		requests = [((site, name), action) for name, action in items if action[0] != "row"]
		rows = [((site, name), action) for name, action in items if action[0] == "row"]
		self.ctx.queue.requeue(requests, priority=True)
		self.ctx.queue.requeue(rows, priority=False)

	def _process_site(self, site: str, items: list[tuple[str, Action]]) -> None:
		ctx = self.ctx
		database = ctx.databases.get(site)
		rows: list[tuple[str, dict | None]] = []
		cancels: list[str] = []
		needs_sql = [name for name, action in items if action[0] == "sync"]
		fetched: dict[str, dict | None] = {}
		if needs_sql and (database is None or ctx.sql_gate.blocked(site)):
			# The site's database is down (or the site left the bench): its edits wait for it without
			# holding up any other site; the prober brings them back (sql_gate.py).
			if database is not None:
				ctx.sql_gate.park(site, needs_sql, time.monotonic())
			items = [(n, a) for n, a in items if a[0] != "sync"]
		elif needs_sql:
			try:
				if site not in ctx.site_timezones:
					apply_site_settings(ctx, site)
				for start in range(0, len(needs_sql), SQL_CHUNK):
					chunk = needs_sql[start : start + SQL_CHUNK]
					read_at = time.monotonic()
					fetched.update(database.fetch_schedules(chunk))
					self._mark_synced(site, chunk, read_at)
			except SqlUnavailable as exc:
				# The names read before the failure are applied; the others are parked (not put back in
				# the queue, where they would hide the rows of a refresh of the same schedules).
				unread = [n for n in needs_sql if n not in fetched]
				ctx.sql_gate.park(site, unread, time.monotonic())
				ctx.sql_gate.failed(site, exc)
				items = [(n, a) for n, a in items if a[0] != "sync" or n in fetched]
		for name, action in items:
			kind = action[0]
			if kind == "cancel":
				cancels.append(name)
				now = time.monotonic()
				self._mark_synced(site, [name], now)
				ctx.sql_gate.settle(site, [name], now)
			elif kind == "row":
				read_at = action[1].get(ROW_READ_AT, float("inf"))
				if read_at < self._synced_at.get((site, name), float("-inf")):
					continue  # read by a full refresh before a newer sync or cancel of it was applied
				ctx.sql_gate.settle(site, [name], read_at)  # a parked edit older than this read is moot
				rows.append((name, action[1]))
			else:
				rows.append((name, fetched.get(name)))
		verbose = any(a[0] == "sync" or (a[0] == "cancel" and a[1] is None) for _, a in items)
		self._apply(site, rows, cancels, verbose=verbose)

	def _apply(
		self, site: str, rows: list[tuple[str, dict | None]], cancels: list[str], verbose: bool
	) -> None:
		"""Plan (rows to specs and first fire times, no Redis), write (one upsert, one removal, one
		expiry of one-shots over), record (memory, preparer, log lines, counters, the scheduler)."""
		with self._lock:
			plan = self._plan(site, rows, cancels, time.time())
			written = self._write(site, plan)
			self._record(site, plan, written, cancels, verbose)

	def _plan(
		self, site: str, rows: list[tuple[str, dict | None]], cancels: list[str], now: float
	) -> SyncPlan:
		plan = SyncPlan(removals=list(cancels), deleted=[name for name, row in rows if row is None], now=now)
		default_tz = self.ctx.timezone_for(site)
		grace = self.ctx.config.misfire_grace
		for name, row in rows:
			if row is None:
				plan.removals.append(name)
				continue
			try:
				spec = spec_from_row(site, row, default_tz)
			except ScheduleInvalid as exc:
				plan.errors[name] = str(exc)
				continue
			except Exception as exc:  # noqa: BLE001 - one unreadable row must not stop the others
				plan.errors[name] = f"its row cannot be read: {type(exc).__name__}: {str(exc)[:200]}"
				continue
			if spec is None:
				plan.removals.append(name)
				continue
			candidate = self._candidate(spec, now)
			if candidate is None:
				if spec.once:
					# Its time is more than misfire_grace ago: over (it ran), or missed while
					# everything was down (recorded and logged once, as the scheduler's misfires are).
					plan.expired.append((spec.name, spec.run_at, misfire_record(spec.run_at, now, grace)))
				else:
					plan.errors[spec.name] = f"cron {spec.cron!r} never fires again"
				continue
			if spec.holiday_list:
				plan.calendars.add(spec.name)  # its dates may change without its timing
			if spec.once:
				plan.once.add(spec.name)  # armed unless its run was already enqueued (its marker)
			elif candidate <= now:
				plan.catch_up.add(spec.name)  # from the leader's memory: a run missed while Redis was away
			plan.entries.append((spec.name, spec.to_json(), spec.timing, candidate))
		return plan

	def _write(self, site: str, plan: SyncPlan) -> SyncWritten:
		store = self.ctx.store
		results = (
			store.upsert(site, plan.entries, plan.catch_up, plan.once, plan.calendars) if plan.entries else []
		)
		if plan.removals or plan.errors:
			store.remove(site, plan.removals + list(plan.errors), plan.errors, plan.deleted)
		missed = store.expire_once(site, plan.expired) if plan.expired else []
		written = SyncWritten(missed=missed)
		catch_ups: list[tuple[str, str, str, int]] = []
		old_due: dict[str, tuple[int, int]] = {}  # name -> (old rule's due fire time, candidate)
		for (name, spec_json, timing, candidate), (code, score) in zip(plan.entries, results):
			if code == ONE_SHOT_DONE:
				written.done.append(name)
			elif code == DUE_RULE_CHANGED:
				# The old rule's due fire time was replaced by the new rule's next one; the new rule
				# decides which missed fire time (if any) runs instead, once (its marker checked).
				spec = ScheduleSpec.from_json(spec_json)
				target = missed_fire_time(spec, int(score), plan.now, self.ctx.config.misfire_grace)
				old_due[name] = (int(score), candidate)
				if target is not None and target < candidate:
					catch_ups.append((name, spec_json, timing, target))
				else:
					written.synced.append((name, timing, candidate, True))
					written.replaced.append((name, int(score), None))
			else:
				written.synced.append((name, timing, int(score), bool(code)))
		if catch_ups:
			results = store.upsert(site, catch_ups, {name for name, *_rest in catch_ups}, plan.once)
			for (name, _json, timing, target), (code, _score) in zip(catch_ups, results):
				old, candidate = old_due[name]
				applied = code == CATCH_UP_APPLIED  # else: it already ran (its marker exists)
				written.synced.append((name, timing, target if applied else candidate, True))
				written.replaced.append((name, old, target if applied else None))
		return written

	def _record(
		self, site: str, plan: SyncPlan, written: SyncWritten, cancels: list[str], verbose: bool
	) -> None:
		ctx = self.ctx
		gone = plan.removals + list(plan.errors) + written.done + [name for name, _ts, _r in plan.expired]
		changed = [(name, score) for name, _timing, score, was_changed in written.synced if was_changed]
		if changed or gone:
			# Their runs prepared ahead were dropped with the change (redis_store): prepare anew.
			ctx.prepared_changed(
				site,
				[name for name, _score in changed] + gone,
				min((score for _name, score in changed), default=None),
				[name for name, _score in changed],
			)
		ctx.memory.synced(
			site, [(name, timing, score) for name, timing, score, _c in written.synced], leader=ctx.is_leader
		)
		ctx.memory.forget(site, gone)
		for name, old, instead in written.replaced:
			# The rule or zone changed after the pending run fell due: kept when the new rule has that
			# fire time too, else dropped (and the new rule's latest missed one, if any, runs once).
			log_event(
				log,
				logging.INFO,
				"pending_fire_time_kept" if instead == old else "pending_fire_time_dropped",
				site=site,
				schedule=name,
				fire_time=utc_iso(old),
				catch_up_fire_time=utc_iso(instead) if instead not in (None, old) else None,
			)
		for name, _timing, score, was_changed in written.synced:
			self._reported_errors.pop((site, name), None)
			if was_changed or verbose:
				log_event(
					log,
					logging.INFO,
					"schedule_synced",
					site=site,
					schedule=name,
					next_run=utc_iso(score),
					changed=was_changed,
				)
		reasons = [
			(name, "cancelled" if name in cancels else "disabled or deleted") for name in plan.removals
		] + [(name, "one-shot already ran") for name in written.done]
		for name, reason in reasons:
			self._reported_errors.pop((site, name), None)
			if verbose:
				log_event(log, logging.INFO, "schedule_removed", site=site, schedule=name, reason=reason)
		by_name = {name: (ts, record) for name, ts, record in plan.expired}
		for name in written.missed:
			run_at, record = by_name[name]
			log_event(
				log,
				logging.WARNING,
				"run_skipped_misfire",
				site=site,
				schedule=name,
				fire_time=utc_iso(run_at),
				late_s=record["late_s"],
				misfire_grace_s=ctx.config.misfire_grace,
				one_shot=True,
			)
		if written.missed:
			ctx.count("runs_skipped_misfire", len(written.missed))
		for name, message in plan.errors.items():
			if self._reported_errors.get((site, name)) != message:
				self._reported_errors[(site, name)] = message
				log_event(log, logging.WARNING, "schedule_invalid", site=site, schedule=name, error=message)
		ctx.count("schedules_synced", len(written.synced))
		ctx.count("schedules_invalid", len(plan.errors))
		if written.synced:
			ctx.wake_scheduler(min(score for _name, _timing, score, _c in written.synced))

	def _candidate(self, spec: ScheduleSpec, now: float) -> int | None:
		"""Next fire time to use when Redis has none for this timing (memory first, see context)."""
		known = self.ctx.memory.fire_time(spec.site, spec.name, spec.timing)
		if known is not None and known <= now and self.ctx.is_leader and spec.fires_at(known):
			# A missed run (a remembered time the current rule does not contain never runs). A future
			# one is the spec's next fire time anyway, unless its holiday list changed since.
			return known
		return spec.first_fire(now, self.ctx.config.misfire_grace)
