"""Prepared runs: the RQ jobs of the next fire times are built and stored ahead; at the fire time one
server-side step makes them visible to the workers.

Why: building and enqueueing a run at its fire time cost the daemon ~65 us of CPU and Redis ~16 us, so
the last of N runs of one fire time was N x ~80 us late. Done ahead, what is left at the fire time is
what Redis alone must do to make a stored job visible: its status and ``enqueued_at``, a marker, a push.

Ahead of a fire time F (the ``Preparer`` thread, lease holder only), per chunk of up to 500 runs:

* each job is built with rq (``Job.create``, status ``scheduled``, no ``enqueued_at``) and its mapping
  handed to ``prepare.lua``, which writes it only if the schedule still holds F, its spec in Redis is the one the job
  was built from (sha1), F has no marker and no live job has the id. ``btu:<site>:prepared`` records
  schedule -> ``"<job id> <builder fingerprint> <spec sha1>"``; the schedule's previous prepared job
  (another fire time, never made visible) is deleted then;
* the visibility step of the chunk is packed, ready to send (``PreparedChunk.command``), and so is
  the move of its schedules on to their following fire times (``PreparedChunk.move_on``).

Runs of many sites are prepared together: the preparer works on a fire time across sites (its lead
from all of its runs), and the runs of small sites sharing a Redis are read, stored and packed with a
pipelined send per CHUNK runs; each site keeps its own chunks (a step names one site's keys).

At F (the scheduler thread, ``make_visible``): the packed ``visible.lua`` commands of F, of every site
sharing a Redis, are sent at once (pipelined), then the ``move_on.lua`` ones. Each chunk, atomically: the lease holder (where it lives in the site's Redis), the site not
paused, F within ``misfire_grace``; per run: the schedule still due at F, no marker, the previous run not
queued or running (overlap policy Skip), the following fire time still ahead, its prepared job still
there. The runs that pass get ``status=queued`` and ``enqueued_at`` (Redis's clock when the chunk writes),
their markers (one hash per fire time: schedule -> job id), RPUSH on their queues, SADD rq:queues,
the per-minute count. A run that fails a check is left as it was, for the ordinary fire path
(``Scheduler.fire``), which builds and enqueues it at once. The moves come after every chunk's step, so
that the last run of F is not kept waiting for them (they were an eighth of a step's work): a marked run
whose schedule still holds F is taken as run by every reader, and the ordinary path moves it on.

A prepared job never becomes visible in an old form: the consumer's upsert (when the spec or timing
changes) and remove delete it in the same script that changes the schedule (``drop_prepared.lua``), and the
step finds its job gone and leaves the run to the ordinary path, which builds it from the new spec.
Prepared jobs carry no TTL (making them visible would cost a PERSIST a run); the index bounds them to
one per schedule and ``Preparer.sweep`` deletes those whose fire time is older than the grace.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.job import JobStatus

from btu import __version__
from btu.contracts.redis_keys import RedisKeys
from btu.contracts.runs import OVERLAP_SKIP

from . import lua_scripts
from .backoff import Backoff
from .jobs import job_id_for
from .logutil import log_event, utc_iso
from .redis_store import DROP_LUA, JOB_PREFIX
from .specs import ScheduleSpec

log = logging.getLogger("btu.prepared")
fire_log = logging.getLogger("btu.scheduler")  # run_enqueued lines, as the ordinary fire path writes them
MARKER_TTL_EXTRA = 24 * 3600  # a marker lives misfire_grace + this after its run (scheduler.py)

CHUNK = 500  # runs per prepare call and per visibility step (enqueued_at is at most one step early)
PREPARED_STATUS = JobStatus.SCHEDULED.value if hasattr(JobStatus.SCHEDULED, "value") else "scheduled"

# Codes of runs a visibility step left to the ordinary fire path, and of whole chunks.
NOT_DUE, ALREADY_RAN, FOLLOWING_PAST, NOT_PREPARED, PREVIOUS_ACTIVE = 1, 2, 3, 4, 5
LEASE_LOST, TOO_LATE = -1, -3
REASONS = {
	NOT_DUE: "no longer due at this fire time",
	ALREADY_RAN: "already enqueued",
	FOLLOWING_PAST: "its following fire time has passed",
	NOT_PREPARED: "its prepared job is gone (edited, or Redis lost it)",
	PREVIOUS_ACTIVE: "its previous run is still queued or running",
	LEASE_LOST: "the lease is held by another daemon",
	TOO_LATE: "more than misfire_grace late",
}

# The scripts (lua/*.lua, composed with their helpers by lua_scripts: each file's header says what it
# checks and writes, its KEYS, ARGV and reply). prepare: stores a chunk's jobs; visible: makes a chunk
# visible at its fire time; move_on: moves the chunk's schedules on, sent right behind every step.
SCORES_FN = lua_scripts.load("scores_of")
ISO_FN = lua_scripts.load("rq_time")
PREPARE_LUA = lua_scripts.load("prepare")
VISIBLE_LUA = lua_scripts.load("visible")
VISIBLE_SHA = lua_scripts.sha("visible")
MOVE_ON_LUA = lua_scripts.load("move_on")
MOVE_ON_SHA = lua_scripts.sha("move_on")


def fired_key(prefix: str, site: str, fire_ts: int) -> str:
	"""The markers of one fire time: hash schedule -> job id (RedisKeys.fired)."""
	return RedisKeys(prefix).fired(site, fire_ts)


def prepared_key(prefix: str, site: str) -> str:
	"""The prepared index: hash schedule -> '<job id> <builder fingerprint> <spec sha1>'."""
	return RedisKeys(prefix).prepared(site)


def builder_fingerprint(config: Any) -> str:
	"""What a prepared job depends on besides its spec and fire time: a daemon with another
	configuration or rq builds its own instead of using one prepared by another."""
	import rq

	parts = (
		__version__,
		rq.__version__,
		config.job_mode,
		config.queue_prefix,
		config.job_user,
		config.result_ttl,
		config.failure_ttl,
	)
	return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


def spec_sha(raw: bytes | str) -> str:
	return hashlib.sha1(raw if isinstance(raw, bytes) else raw.encode()).hexdigest()


def job_fire_ts(job_id: str) -> int | None:
	"""The fire time a BTU job id names (``btu-<schedule>-<fire ts>-<digest>``)."""
	parts = job_id.rsplit("-", 2)
	try:
		return int(parts[1]) if len(parts) == 3 else None
	except ValueError:
		return None


@dataclass(slots=True)
class PreparedChunk:
	"""Up to CHUNK prepared runs of one site and fire time, and their visibility step packed."""

	site: str
	fire_ts: int
	names: tuple[str, ...]
	job_ids: tuple[str, ...]
	followings: tuple[int | None, ...]
	command: bytes  # EVALSHA of visible.lua, packed for the site's connection
	move_on: bytes  # EVALSHA of move_on.lua, packed likewise
	prepared_at: float = 0.0


@dataclass
class Outcome:
	"""What one visibility step did."""

	chunk: PreparedChunk
	code: int  # 0, or LEASE_LOST / TOO_LATE (nothing written)
	enqueued_at: float | None = None  # Redis's clock when the step wrote
	visible: list[int] = field(default_factory=list)  # indexes into the chunk
	left: dict[int, int] = field(default_factory=dict)  # index -> reason code (ordinary path)
	error: Exception | None = None


class Scripts:
	"""The scripts' SHA1s, loaded once per Redis connection pool."""

	def __init__(self) -> None:
		self._prepare: dict[int, Any] = {}
		self._drop: dict[int, Any] = {}
		self._loaded: set[int] = set()

	def prepare(self, client: redis.Redis):
		key = id(client)
		if key not in self._prepare:
			self._prepare[key] = client.register_script(PREPARE_LUA)
		return self._prepare[key]

	def drop(self, client: redis.Redis):
		key = id(client)
		if key not in self._drop:
			self._drop[key] = client.register_script(DROP_LUA)
		return self._drop[key]

	def load_visible(self, client: redis.Redis, force: bool = False) -> None:
		if force or id(client) not in self._loaded:
			client.script_load(VISIBLE_LUA)
			client.script_load(MOVE_ON_LUA)
			self._loaded.add(id(client))


def _borrow(client: redis.Redis):
	"""A connection of the client's pool (redis-py 4.5 needs a command name, 5.3+ deprecates it)."""
	pool = client.connection_pool
	try:
		return pool, pool.get_connection()
	except TypeError:
		return pool, pool.get_connection("EVALSHA")


def pack_script(client: redis.Redis, sha: str, keys: list[str], args: list[Any]) -> bytes:
	"""The EVALSHA of a loaded script with these keys and arguments, as bytes ready to send."""
	pool, conn = _borrow(client)
	try:
		return b"".join(conn.pack_command("EVALSHA", sha, len(keys), *keys, *args))
	finally:
		pool.release(conn)


def make_visible(client: redis.Redis, scripts: Scripts, chunks: list[PreparedChunk]) -> list[Outcome]:
	"""Send the visibility steps of these chunks (one site's Redis) at once and read their replies.

	The moves of their schedules on (``move_on.lua``) follow in the same send, after every visibility step.
	Each step is atomic; a connection error leaves every chunk either wholly done or untouched (the
	ordinary fire path sorts out which from Redis), and is raised after the replies read so far.
	"""
	if not chunks:
		return []
	scripts.load_visible(client)
	outcomes: list[Outcome] = []
	pending = list(chunks)
	for attempt in range(2):
		pool, conn = _borrow(client)
		retry: list[PreparedChunk] = []
		try:
			conn.send_packed_command([c.command for c in pending] + [c.move_on for c in pending])
			for chunk in pending:
				try:
					reply = conn.read_response()
				except NoScriptError:
					retry.append(chunk)  # Redis restarted or flushed its scripts: nothing ran
					continue
				except ResponseError as exc:
					outcomes.append(
						Outcome(chunk, 0, left={i: NOT_PREPARED for i in range(len(chunk.names))}, error=exc)
					)
					continue
				outcomes.append(parse_reply(chunk, reply))
			for chunk in pending:
				try:
					conn.read_response()
				except ResponseError as exc:  # (NoScriptError too) the ordinary path moves them on
					log_event(
						log,
						logging.DEBUG,
						"prepared_move_on_failed",
						site=chunk.site,
						fire_time=utc_iso(chunk.fire_ts),
						runs=len(chunk.names),
						error=str(exc),
					)
		except (RedisConnectionError, RedisTimeoutError, OSError):
			conn.disconnect()
			raise
		finally:
			pool.release(conn)
		if not retry or attempt:
			for chunk in retry:
				outcomes.append(Outcome(chunk, 0, left={i: NOT_PREPARED for i in range(len(chunk.names))}))
			break
		scripts.load_visible(client, force=True)
		pending = retry
	return outcomes


def parse_reply(chunk: PreparedChunk, reply: list) -> Outcome:
	code = int(reply[0])
	if code != 0:
		at = float(reply[1]) + float(reply[2]) / 1e6 if len(reply) >= 3 else None
		return Outcome(chunk, code, enqueued_at=at)
	at = float(reply[1]) + float(reply[2]) / 1e6
	left = {int(reply[k]) - 1: int(reply[k + 1]) for k in range(4, len(reply), 2)}  # the chunk's order
	visible = [i for i in range(len(chunk.names)) if i not in left]
	return Outcome(chunk, 0, enqueued_at=at, visible=visible, left=left)


class PreparedRuns:
	"""The chunks prepared in memory, by site and fire time (shared by the preparer and the scheduler).

	A chunk never holds a void run: when a schedule staged in one changes, the whole chunk is dropped
	and its other runs are prepared again (cheaply: their stored jobs still match, only the step is
	packed anew). Were the old chunk kept, its step would make the run's new job visible with the old
	spec's queue, following fire time and overlap policy (a re-prepared job keeps its id)."""

	def __init__(self) -> None:
		self._lock = threading.Lock()
		self._chunks: dict[str, dict[int, list[PreparedChunk]]] = defaultdict(dict)
		self._staged: dict[str, dict[str, PreparedChunk]] = defaultdict(dict)  # site -> schedule -> chunk
		# Fire times wholly prepared -> how many runs they held then: one that holds another number now
		# got runs since (a schedule loaded, edited or moved there) and is prepared again.
		self._complete: dict[str, dict[int, int]] = defaultdict(dict)

	def add(self, chunk: PreparedChunk) -> None:
		with self._lock:
			self._chunks[chunk.site].setdefault(chunk.fire_ts, []).append(chunk)
			staged = self._staged[chunk.site]
			for name in chunk.names:
				staged[name] = chunk

	def staged_at(self, site: str, name: str) -> int | None:
		with self._lock:
			chunk = self._staged[site].get(name)
			return None if chunk is None else chunk.fire_ts

	def staged_names(self, site: str, fire_ts: int) -> set[str]:
		with self._lock:
			return {name for chunk in self._chunks[site].get(fire_ts, ()) for name in chunk.names}

	def mark_complete(self, site: str, fire_ts: int, runs: int | None) -> None:
		"""``fire_ts`` held ``runs`` runs when its preparation began and all were worked on (None: not
		all were, its time came first)."""
		with self._lock:
			if runs is None:
				self._complete[site].pop(fire_ts, None)
			else:
				self._complete[site][fire_ts] = runs

	def add_handled(self, site: str, fire_ts: int, runs: int) -> bool:
		"""``runs`` more runs of ``fire_ts`` were worked on since it was marked complete; False when it
		is not marked complete (it is prepared whole when its lead comes)."""
		with self._lock:
			found = self._complete[site].get(fire_ts)
			if found is None:
				return False
			self._complete[site][fire_ts] = found + runs
			return True

	def completed(self, site: str) -> set[int]:
		with self._lock:
			return set(self._complete[site])

	def is_complete(self, site: str, fire_ts: int, runs: int) -> bool:
		"""Whether every one of the ``runs`` runs ``fire_ts`` holds now was worked on."""
		with self._lock:
			return self._complete[site].get(fire_ts) == runs

	def unstage(self, site: str, names: Iterable[str]) -> tuple[int | None, list[str]]:
		"""These schedules changed: the chunks holding their staged runs are dropped (the prepared jobs
		of the changed ones are gone with the change: the ordinary path or a new preparation builds
		them from the new spec). Returns the earliest fire time dropped and the other schedules of the
		dropped chunks, to be prepared again."""
		changed = set(names)
		dropped: dict[int, PreparedChunk] = {}
		with self._lock:
			staged = self._staged[site]
			for name in changed:
				chunk = staged.get(name)
				if chunk is not None:
					dropped[id(chunk)] = chunk
			lowest = None
			for chunk in dropped.values():
				held = self._chunks[site].get(chunk.fire_ts, [])
				if chunk in held:
					held.remove(chunk)
				for name in chunk.names:
					if staged.get(name) is chunk:
						del staged[name]
				if chunk.fire_ts in self._complete[site]:
					self._complete[site][chunk.fire_ts] -= len(chunk.names)
				lowest = chunk.fire_ts if lowest is None else min(lowest, chunk.fire_ts)
		others = [name for chunk in dropped.values() for name in chunk.names if name not in changed]
		return lowest, others

	def take_due(self, site: str, now: float) -> list[PreparedChunk]:
		with self._lock:
			by_fire = self._chunks.get(site)
			if not by_fire:
				return []
			due = sorted(ts for ts in by_fire if ts <= now)
			taken: list[PreparedChunk] = []
			staged = self._staged[site]
			for fire_ts in due:
				for chunk in by_fire.pop(fire_ts):
					taken.append(chunk)
					for name in chunk.names:
						if staged.get(name) is chunk:
							del staged[name]
				self._complete[site].pop(fire_ts, None)
			return taken

	def take_all_due(self, now: float) -> dict[str, list[PreparedChunk]]:
		"""Every site's chunks due at ``now``: site -> chunks (as ``take_due`` of each site)."""
		with self._lock:
			sites = [site for site, by_fire in self._chunks.items() if any(ts <= now for ts in by_fire)]
		taken = {site: self.take_due(site, now) for site in sites}
		return {site: chunks for site, chunks in taken.items() if chunks}

	def earliest(self) -> float | None:
		with self._lock:
			found = [min(by_fire) for by_fire in self._chunks.values() if by_fire]
			return min(found) if found else None

	def clear(self, site: str | None = None) -> int:
		with self._lock:
			sites = [site] if site else list(self._chunks)
			dropped = 0
			for name in sites:
				dropped += sum(len(c.names) for cs in self._chunks.get(name, {}).values() for c in cs)
				self._chunks.pop(name, None)
				self._staged.pop(name, None)
				self._complete.pop(name, None)
			return dropped

	def counts(self) -> dict[str, int]:
		with self._lock:
			return {
				site: sum(len(c.names) for cs in by_fire.values() for c in cs)
				for site, by_fire in self._chunks.items()
				if by_fire
			}


def build_chunk_args(
	*,
	fire_ts: int,
	holder: str,
	marker_ttl: int,
	grace: int,
	runs: list[tuple[str, str, int, int | None, bool]],
) -> tuple[list[Any], list[int]]:
	"""ARGV of a visibility step for runs (name, job id, queue number, following, overlap skip), grouped
	by (queue, following, skip); returns it and the order of the runs in it (the step's indexes)."""
	groups: dict[tuple[int, int | None, bool], list[int]] = {}
	for position, (_name, _job_id, queue_number, following, skip) in enumerate(runs):
		groups.setdefault((queue_number, following, skip), []).append(position)
	args: list[Any] = [fire_ts, holder, marker_ttl, grace, JOB_PREFIX]
	order: list[int] = []
	for (queue_number, following, skip), positions in groups.items():
		args += (len(positions), queue_number, "" if following is None else following, "1" if skip else "0")
		for position in positions:
			args += (runs[position][0], runs[position][1])
		order += positions
	return args, order


def build_move_on_args(fire_ts: int, names: Iterable[str], followings: Iterable[int | None]) -> list[Any]:
	"""ARGV of move_on.lua: the fire time, then the names grouped by following fire time."""
	groups: dict[int | None, list[str]] = {}
	for name, following in zip(names, followings):
		groups.setdefault(following, []).append(name)
	args: list[Any] = [fire_ts]
	for following, members in groups.items():
		args += (len(members), "" if following is None else following, *members)
	return args


class Preparer:
	"""Prepares the runs of the coming fire times while this daemon holds the lease (its own thread).

	It prepares one fire time F at a time, in order, across every site that has runs at F, starting
	``lead`` seconds before F: ``prepare_ahead`` (configuration, default MARGIN) plus SAFETY times the
	measured cost of preparing F's runs, every site's together (the sites share this thread: 20,000
	runs spread over 1,000 sites need as long as 20,000 of one site), so that even N = 100,000 runs
	of one fire time are ready before it while a small one starts only a second ahead. Each site's
	next fire time is found with one pipelined read per Redis (``_scan``); small sites sharing a Redis
	are prepared together, up to CHUNK runs per pipelined send (``prepare_across``). Between fire
	times it sleeps: the consumer (a changed schedule), the scheduler (runs made visible or enqueued,
	whose following fire times are now to prepare) and the lease wake it through ``notify``.
	"""

	MARGIN = 1.0
	SAFETY = 2.5
	# While a full refresh runs or edits wait in the internal queue, preparing pauses between chunks
	# as long as the rest still fits before the fire time at this many times the measured cost: the
	# daemon is one interpreter, and a refresh sharing it with 100,000 preparations took 3x as long.
	YIELD_SAFETY = 1.25
	YIELD_POLL = 0.02  # s between looks while paused
	MAX_AHEAD = 300.0  # s: never prepare further ahead
	FIRST_COST = 200e-6  # s a run, until measured on this machine
	RESCAN = 60.0  # s: look again from now at least this often (a missed notice costs at most this)
	SWEEP_EVERY = 600.0  # s between sweeps of stale prepared jobs
	PAGE = 5000

	def __init__(self, ctx: Any, runs: PreparedRuns, holder: Callable[[], str | None]) -> None:
		self.ctx = ctx
		self.runs = runs
		self.holder = holder  # the lease holder id while this daemon holds the lease, else None
		self.scripts = Scripts()
		self.fingerprint = builder_fingerprint(ctx.config)
		self.marker_ttl = ctx.config.misfire_grace + MARKER_TTL_EXTRA
		self.cost = self.FIRST_COST
		self.margin = float(getattr(ctx.config, "prepare_ahead", self.MARGIN))
		self.wake = threading.Event()
		self._lock = threading.Lock()
		self._cursor: dict[str, float] = {}  # site -> fire times up to this one are prepared
		self._joined: dict[str, set[str]] = defaultdict(set)  # site -> schedules given new fire times
		self._rescan_at = 0.0
		self._swept_at = time.monotonic()
		self.recent: deque[dict[str, Any]] = deque(maxlen=16)  # the last preparations (status, bench)
		self.backoff = Backoff()
		self.active = False
		self.waited = 0.0  # s paused for the refresh and edits in the current preparation (not its cost)

	# --- notices from the other activities ---------------------------------------------------
	def notify(
		self,
		site: str,
		names: Iterable[str] = (),
		earliest: float | None = None,
		joined: Iterable[str] = (),
	) -> None:
		"""Schedules of ``site`` changed (``names``: their prepared runs are void) or got new fire
		times from ``earliest`` on (``joined``: which ones, when known): look again from there. A
		schedule that joined a fire time already prepared is prepared alone (``_prepare_joined``),
		not by scanning that fire time's runs again."""
		names = list(names)
		lowest, others = self.runs.unstage(site, names) if names else (None, [])
		marks = [t for t in (lowest, earliest) if t is not None]
		with self._lock:
			if self.active:  # (inactive: everything is prepared from Redis when it becomes active)
				self._joined[site].update(joined)
				self._joined[site].update(others)
			if marks and site in self._cursor:
				self._cursor[site] = min(self._cursor[site], min(marks) - 1)
		self.wake.set()

	def status(self) -> dict[str, Any]:
		return {
			"active": self.active,
			"prepared": self.runs.counts(),
			"cost_us_per_run": round(self.cost * 1e6, 1),
			"recent": list(self.recent),
		}

	# --- the thread --------------------------------------------------------------------------
	def run(self) -> None:
		ctx = self.ctx
		while not ctx.stop.is_set():
			try:
				if self.margin <= 0 or self.holder() is None or not ctx.is_leader:
					self._inactive()
					timeout = 1.0
				else:
					self.active = True
					timeout = self.step()
				self.backoff.succeed()
			except RedisError as exc:
				timeout = self.backoff.fail()
				log_event(log, logging.WARNING, "prepare_unavailable", error=str(exc), retry_in_s=timeout)
			if timeout > 0:
				self.wake.wait(timeout)
				self.wake.clear()

	def _inactive(self) -> None:
		if self.active:
			dropped = self.runs.clear()
			log_event(log, logging.INFO, "prepared_runs_dropped", runs=dropped, reason="not the lease holder")
		self.active = False
		with self._lock:
			self._cursor.clear()
			self._joined.clear()

	def lead(self, count: int) -> float:
		return min(self.MAX_AHEAD - self.RESCAN, self.margin + self.SAFETY * self.cost * count)

	def step(self) -> float:
		"""Prepare the fire time whose start has come, across every site that has runs at it; return
		how long to sleep (0 = go on)."""
		now = time.time()
		if now - self._rescan_at >= self.RESCAN:
			with self._lock:
				self._cursor.clear()
			self._rescan_at = now
		if time.monotonic() - self._swept_at >= self.SWEEP_EVERY:
			for site in self.ctx.databases:
				self.sweep(site)
			self._swept_at = time.monotonic()
		pause = getattr(self.ctx, "pause", None)
		# A paused site has nothing enqueued: nothing to prepare (resumed: misfire_grace decides).
		sites = [site for site in self.ctx.databases if pause is None or not pause.paused(site)]
		for site in sites:
			self._prepare_joined(site, now)
		found = self._scan(sites, now)
		if not found:
			return self.RESCAN
		# A fire time's lead comes from all its runs, every site's: the sites of a bench share this
		# thread, and the last site's runs must be ready by the fire time too.
		totals: dict[int, int] = defaultdict(int)
		for fire_ts, count in found.values():
			totals[fire_ts] += count
		start, fire_ts = min((f - self.lead(total), f) for f, total in totals.items())
		if start > now:
			return min(start - now, self.RESCAN)
		members = [(site, count) for site, (f, count) in found.items() if f == fire_ts]
		self.prepare_across(fire_ts, members, lead=fire_ts - now)
		return 0.0

	def _scan(self, sites: list[str], now: float) -> dict[str, tuple[int, int]]:
		"""Each site's earliest fire time after now not wholly prepared, and how many runs it has:
		site -> (fire time, runs). Sites sharing a Redis are read with one pipelined send (two, three
		when a fire time found is already prepared: the cursor then moves past it)."""
		store = self.ctx.store
		by_client: dict[int, tuple[redis.Redis, list[str]]] = {}
		for site in sites:
			client = store.client(site)
			by_client.setdefault(id(client), (client, []))[1].append(site)
		found: dict[str, tuple[int, int]] = {}
		for client, pending in by_client.values():
			while pending:
				pipe = client.pipeline(transaction=False)
				with self._lock:
					afters = [max(self._cursor.get(site, now), now) for site in pending]
				for site, after in zip(pending, afters):
					pipe.zrangebyscore(
						store.keys.next_runs(site),
						f"({after}",
						now + self.MAX_AHEAD,
						start=0,
						num=1,
						withscores=True,
					)
				firsts = [(site, int(rows[0][1])) for site, rows in zip(pending, pipe.execute()) if rows]
				if not firsts:
					break
				pipe = client.pipeline(transaction=False)
				for site, fire_ts in firsts:
					pipe.zcount(store.keys.next_runs(site), fire_ts, fire_ts)
				pending = []
				for (site, fire_ts), count in zip(firsts, pipe.execute()):
					if not self.runs.is_complete(site, fire_ts, int(count)):
						found[site] = (fire_ts, int(count))
						continue
					with self._lock:
						self._cursor[site] = max(self._cursor.get(site, fire_ts), fire_ts)
					pending.append(site)  # look past it
		return found

	def _prepare_joined(self, site: str, now: float) -> None:
		"""Prepare the schedules that joined fire times already prepared (a cold start's refresh
		writes 500 at a time; a run fired the ordinary way moves on to its following fire time), and
		count them in, so that the count check of ``_scan`` does not scan those fire times again."""
		with self._lock:
			joined = list(self._joined.pop(site, ()))
		if not joined:
			return
		completed = {fire_ts for fire_ts in self.runs.completed(site) if fire_ts > now}
		holder = self.holder()
		if not completed or holder is None:
			return
		client = self.ctx.store.client(site)
		key = self.ctx.store.keys.next_runs(site)
		by_fire: dict[int, list[str]] = defaultdict(list)
		for start in range(0, len(joined), self.PAGE):
			names = joined[start : start + self.PAGE]
			for name, score in zip(names, zmscore(client, key, names)):
				if score is not None and int(score) in completed:
					if self.runs.staged_at(site, name) != int(score):
						by_fire[int(score)].append(name)
		for fire_ts, names in sorted(by_fire.items()):
			started, wall = time.perf_counter(), time.time()
			self.waited = 0.0
			prepared, refused, complete = self._prepare_names(site, fire_ts, names, holder)
			if not complete or not self.runs.add_handled(site, fire_ts, prepared + refused):
				self.runs.mark_complete(site, fire_ts, None)
			self._record_preparation(site, fire_ts, prepared, refused, started, wall, fire_ts - now, complete)

	def _prepare_names(
		self, site: str, fire_ts: int, names: list[str], holder: str, left_after: int = 0
	) -> tuple[int, int, bool]:
		"""Prepare these runs of ``fire_ts`` CHUNK at a time until its time comes: (prepared, refused,
		whether all were worked on). ``left_after``: runs of the fire time still to prepare after these."""
		prepared = refused = 0
		for start in range(0, len(names), CHUNK):
			self._give_way(fire_ts, len(names) - start + left_after)
			if time.time() >= fire_ts:
				return prepared, refused, False  # its time has come: the rest goes the ordinary way
			done, failed = self.prepare_chunk(site, fire_ts, names[start : start + CHUNK], holder)
			prepared, refused = prepared + done, refused + failed
		return prepared, refused, True

	def _others_waiting(self) -> bool:
		"""A full refresh runs, or schedules wait in the internal queue (an edit, a refresh's rows)."""
		return self.ctx.refresh_progress.running or any(self.ctx.queue.sizes())

	def _give_way(self, fire_ts: int, remaining: int) -> None:
		"""Pause while others wait and ``remaining`` runs still fit before ``fire_ts`` (YIELD_SAFETY)."""
		started = None
		while self._others_waiting() and not self.ctx.stop.is_set():
			if time.time() + self.margin + self.YIELD_SAFETY * self.cost * remaining >= fire_ts:
				break
			started = started or time.perf_counter()
			self.ctx.stop.wait(self.YIELD_POLL)
		if started is not None:
			self.waited += time.perf_counter() - started

	def _record_preparation(
		self,
		site: str | None,
		fire_ts: int,
		prepared: int,
		refused: int,
		started: float,
		wall: float,
		lead: float | None,
		complete: bool,
		sites: int = 1,
	) -> None:
		waited, self.waited = self.waited, 0.0
		seconds = time.perf_counter() - started - waited
		if prepared:
			self.cost = 0.5 * self.cost + 0.5 * seconds / (prepared + refused)
		record = {
			"site": site,  # None: several sites, ``sites`` of them
			"sites": sites,
			"fire_time": fire_ts,
			"runs": prepared,
			"refused": refused,
			"started_at": round(wall, 3),
			"seconds": round(seconds, 3),
			"gave_way_s": round(waited, 3),
			"lead_s": None if lead is None else round(lead, 3),
			"complete": complete,
		}
		self.recent.append(record)
		log_event(log, logging.DEBUG, "runs_prepared", **record)

	def prepare_fire_time(self, site: str, fire_ts: int, lead: float | None = None) -> int:
		"""Prepare every run of ``site`` due at ``fire_ts`` not prepared yet; returns how many were."""
		return self.prepare_across(fire_ts, [(site, None)], lead)

	def prepare_across(
		self, fire_ts: int, members: list[tuple[str, int | None]], lead: float | None = None
	) -> int:
		"""Prepare every run due at ``fire_ts`` not prepared yet of these sites ((site, runs it held
		when scanned; None: not counted)); returns how many were.

		Sites of a few runs (up to CHUNK) sharing a Redis are worked on together, CHUNK runs at a
		time: their runs counted and listed in one pipelined send, prepared with one more
		(``prepare_chunks``); a larger site is paged through alone. Between groups it gives way to a
		refresh or waiting edits while the rest of the fire time, every site's, still fits; at the
		fire time it stops (the rest goes the ordinary way)."""
		holder = self.holder()
		if holder is None:
			return 0
		started, wall = time.perf_counter(), time.time()
		self.waited = 0.0
		store = self.ctx.store
		left = sum(count or 0 for _site, count in members)
		large = [site for site, count in members if count is None or count > CHUNK]
		groups: list[tuple[redis.Redis, list[tuple[str, int]]]] = []
		by_client: dict[int, tuple[redis.Redis, list[tuple[str, int]]]] = {}
		for site, count in members:
			if count is not None and count <= CHUNK:
				client = store.client(site)
				by_client.setdefault(id(client), (client, []))[1].append((site, count))
		for client, small in by_client.values():
			group: list[tuple[str, int]] = []
			size = 0
			for site, count in small:
				if group and size + count > CHUNK:
					groups.append((client, group))
					group, size = [], 0
				group.append((site, count))
				size += count
			if group:
				groups.append((client, group))
		prepared = refused = 0
		complete = True
		for client, group in groups:
			self._give_way(fire_ts, left)
			if time.time() >= fire_ts:
				complete = False  # its time has come: the rest goes the ordinary way
				break
			done, failed, grown = self._prepare_group(client, fire_ts, group, holder)
			prepared, refused = prepared + done, refused + failed
			large += grown
			left -= sum(count for _site, count in group)
		for number, site in enumerate(large):
			if not complete:
				break
			left_after = sum(count or 0 for other, count in members if other in large[number + 1 :])
			done, failed, complete = self._prepare_site(site, fire_ts, holder, left_after)
			prepared, refused = prepared + done, refused + failed
		self._record_preparation(
			members[0][0] if len(members) == 1 else None,
			fire_ts,
			prepared,
			refused,
			started,
			wall,
			lead,
			complete,
			sites=len(members),
		)
		return prepared

	def _prepare_group(
		self, client: redis.Redis, fire_ts: int, group: list[tuple[str, int]], holder: str
	) -> tuple[int, int, list[str]]:
		"""Prepare the runs at ``fire_ts`` of a few small sites sharing ``client``: (prepared, refused,
		sites that hold more than CHUNK runs now, to be paged through alone)."""
		store = self.ctx.store
		pipe = client.pipeline(transaction=False)
		for site, _count in group:
			key = store.keys.next_runs(site)
			# Counted first: a run added while this works makes the count differ, and the fire time
			# is looked at again (only the runs not staged yet are worked on).
			pipe.zcount(key, fire_ts, fire_ts)
			pipe.zrangebyscore(key, fire_ts, fire_ts, start=0, num=CHUNK + 1)
		replies = pipe.execute()
		work: list[tuple[str, list[str]]] = []
		holds: dict[str, int] = {}
		grown: list[str] = []
		for number, (site, _count) in enumerate(group):
			count, rows = int(replies[2 * number]), replies[2 * number + 1]
			if len(rows) > CHUNK:
				grown.append(site)
				continue
			staged = self.runs.staged_names(site, fire_ts)
			work.append((site, [n for n in (r.decode() for r in rows) if n not in staged]))
			holds[site] = count
		results = self.prepare_chunks(client, fire_ts, work, holder)
		prepared = refused = 0
		for site, _names in work:
			done, failed = results.get(site, (0, 0))  # a site whose runs were all staged already: none
			prepared, refused = prepared + done, refused + failed
			self.runs.mark_complete(site, fire_ts, holds[site])
			with self._lock:
				self._cursor[site] = max(self._cursor.get(site, fire_ts), fire_ts)
		return prepared, refused, grown

	def _prepare_site(self, site: str, fire_ts: int, holder: str, left_after: int) -> tuple[int, int, bool]:
		"""Prepare the runs of one site at ``fire_ts``, a page at a time: (prepared, refused, whether
		all were worked on). ``left_after``: runs of other sites at the fire time still to prepare."""
		client = self.ctx.store.client(site)
		key = self.ctx.store.keys.next_runs(site)
		# Counted first: a run added while this works makes the count differ, and the fire time is
		# looked at again (only the runs not staged yet are worked on).
		holds = int(client.zcount(key, fire_ts, fire_ts))
		staged = self.runs.staged_names(site, fire_ts)
		prepared = refused = 0
		complete = True
		offset = 0
		while complete:
			rows = client.zrangebyscore(key, fire_ts, fire_ts, start=offset, num=self.PAGE)
			offset += len(rows)
			names = [n for n in (r.decode() for r in rows) if n not in staged]
			done, failed, complete = self._prepare_names(
				site, fire_ts, names, holder, max(0, holds - offset) + left_after
			)
			prepared, refused = prepared + done, refused + failed
			if len(rows) < self.PAGE:
				break
		self.runs.mark_complete(site, fire_ts, holds if complete else None)
		if complete:
			with self._lock:
				self._cursor[site] = max(self._cursor.get(site, fire_ts), fire_ts)
		return prepared, refused, complete

	def visible_keys(self, site: str, fire_ts: int, queue_keys: list[str], queues_set: str) -> list[str]:
		store = self.ctx.store
		return [
			store.keys.next_runs(site),
			fired_key(store.keys.prefix, site, fire_ts),
			store.keys.enqueued(site),
			store.keys.lease(self.ctx.config.bench_id),
			store.keys.last_jobs(site),
			queues_set,
			*queue_keys,
		]

	def prepare_chunk(self, site: str, fire_ts: int, names: list[str], holder: str) -> tuple[int, int]:
		"""Build, store and stage up to CHUNK runs of one fire time; returns (prepared, refused)."""
		if not names:
			return 0, 0
		return self.prepare_chunks(self.ctx.store.client(site), fire_ts, [(site, names)], holder)[site]

	def prepare_chunks(
		self, client: redis.Redis, fire_ts: int, work: list[tuple[str, list[str]]], holder: str
	) -> dict[str, tuple[int, int]]:
		"""Build, store and stage runs of one fire time of several sites sharing ``client``'s Redis
		(up to CHUNK runs a site): one pipelined read of their specs and index entries, one pipelined
		send of their ``prepare.lua`` calls (one a site: each names its own site's keys), then each
		site's visibility step and move packed as one chunk. Returns site -> (prepared, refused)."""
		ctx = self.ctx
		store = ctx.store
		work = [(site, names) for site, names in work if names]
		result: dict[str, tuple[int, int]] = {site: (0, 0) for site, _names in work}
		if not work:
			return result
		pipe = client.pipeline(transaction=False)
		for site, names in work:
			pipe.hmget(store.keys.specs(site), names)
			pipe.hmget(prepared_key(store.keys.prefix, site), names)
		replies = pipe.execute()
		script = self.scripts.prepare(client)
		pipe = client.pipeline(transaction=False)
		sent: list[tuple[str, list[tuple[str, str, Any, Any]]]] = []  # site, its runs planned
		staged: dict[str, tuple[list[tuple[str, str, Any, Any]], int]] = {}  # site -> runs ready, refused
		for number, (site, names) in enumerate(work):
			raws, entries = replies[2 * number], replies[2 * number + 1]
			args: list[Any] = [JOB_PREFIX, fire_ts]
			planned: list[tuple[str, str, Any, Any]] = []  # name, job id, queue, spec
			ready: list[tuple[str, str, Any, Any]] = []
			refused = 0
			for name, raw, entry in zip(names, raws, entries):
				if raw is None:
					refused += 1  # removed meanwhile
					continue
				try:
					spec = ScheduleSpec.from_json(raw)
				except (ValueError, TypeError):
					refused += 1
					continue
				sha = spec_sha(raw)
				job_id = job_id_for(site, name, fire_ts)
				entry_text = f"{job_id} {self.fingerprint} {sha}"
				if entry is not None and entry.decode() == entry_text:
					ready.append((name, job_id, ctx.jobs.queue(client, spec.queue), spec))
					continue
				queue, job = ctx.jobs.build(client, spec, fire_ts, status=JobStatus.SCHEDULED, job_id=job_id)
				mapping = job.to_dict()
				mapping["status"] = PREPARED_STATUS
				mapping.pop("enqueued_at", None)
				args += (name, sha, job_id, entry_text, len(mapping))
				for field_value in mapping.items():
					args += field_value
				planned.append((name, job_id, queue, spec))
			if planned:
				script(
					keys=[
						store.keys.specs(site),
						store.keys.next_runs(site),
						prepared_key(store.keys.prefix, site),
						fired_key(store.keys.prefix, site, fire_ts),
					],
					args=args,
					client=pipe,
				)
				sent.append((site, planned))
			staged[site] = (ready, refused)
		if sent:
			for (site, planned), codes in zip(sent, pipe.execute()):
				ready, refused = staged[site]
				for item, code in zip(planned, codes):
					if int(code) == 0:
						ready.append(item)
					else:
						refused += 1
				staged[site] = (ready, refused)
		for site, (ready, refused) in staged.items():
			if ready:
				self._stage(client, site, fire_ts, ready, holder)
			result[site] = (len(ready), refused)
		return result

	def _stage(
		self,
		client: redis.Redis,
		site: str,
		fire_ts: int,
		ready: list[tuple[str, str, Any, Any]],
		holder: str,
	) -> None:
		"""Pack the visibility step and the move of one site's runs ready at ``fire_ts``, as one chunk."""
		store = self.ctx.store
		queue_keys: list[str] = []
		runs: list[tuple[str, str, int, int | None, bool]] = []
		followings: list[int | None] = []
		queues_set = ready[0][2].redis_queues_keys
		for name, job_id, queue, spec in ready:
			if queue.key not in queue_keys:
				queue_keys.append(queue.key)
			following = spec.next_fire_after(fire_ts)
			followings.append(following)
			runs.append(
				(name, job_id, queue_keys.index(queue.key) + 1, following, spec.overlap == OVERLAP_SKIP)
			)
		step_keys = self.visible_keys(site, fire_ts, queue_keys, queues_set)
		args, order = build_chunk_args(
			fire_ts=fire_ts,
			# the lease is checked in the step where it lives in the site's Redis, else by the caller
			holder=holder if client is store.bench_client() else "",
			marker_ttl=self.marker_ttl,
			grace=self.ctx.config.misfire_grace,
			runs=runs,
		)
		names_in_order = tuple(ready[i][0] for i in order)
		followings_in_order = tuple(followings[i] for i in order)
		self.runs.add(
			PreparedChunk(
				site=site,
				fire_ts=fire_ts,
				names=names_in_order,
				job_ids=tuple(ready[i][1] for i in order),
				followings=followings_in_order,
				command=pack_script(client, VISIBLE_SHA, step_keys, args),
				move_on=pack_script(
					client,
					MOVE_ON_SHA,
					[step_keys[0], step_keys[1], prepared_key(store.keys.prefix, site)],
					build_move_on_args(fire_ts, names_in_order, followings_in_order),
				),
				prepared_at=time.time(),
			)
		)

	def sweep(self, site: str) -> int:
		"""Delete prepared jobs whose fire time is older than misfire_grace (never made visible: the
		run was skipped, or left to the ordinary path that wrote its own job), and their index entries."""
		store = self.ctx.store
		client = store.client(site)
		index = prepared_key(store.keys.prefix, site)
		oldest = time.time() - self.ctx.config.misfire_grace - 60
		stale = []
		for name, entry in client.hscan_iter(index, count=1000):
			job_id = entry.decode().split(" ", 1)[0]
			fire_ts = job_fire_ts(job_id)
			if fire_ts is not None and fire_ts < oldest:
				stale.append(name.decode())
		dropped = 0
		for start in range(0, len(stale), 1000):
			dropped += drop(client, self.scripts, index, stale[start : start + 1000])
		if stale:
			log_event(log, logging.INFO, "prepared_jobs_swept", site=site, entries=len(stale), jobs=dropped)
		return dropped


def zmscore(client: redis.Redis, key: str, names: list[str]) -> list[float | None]:
	"""The scores of ``names`` in one round trip (ZMSCORE needs Redis 6.2: a pipeline of ZSCORE before)."""
	try:
		return client.zmscore(key, names)
	except ResponseError:
		pipe = client.pipeline(transaction=False)
		for name in names:
			pipe.zscore(key, name)
		return pipe.execute()


def record_outcomes(ctx: Any, site: str, outcomes: list[Outcome]) -> dict[str, Any]:
	"""Counters, metrics, remembered fire times and run_enqueued lines for what the visibility
	steps made visible (the same as the ordinary fire path writes), one chunk at a time (100,000
	runs' log lines built at once would cost the daemon ~80 MB for a moment). Returns a summary:
	runs made visible, runs left to the ordinary path, the chunk codes seen, the earliest following
	fire time, the schedules moved on to one."""
	visible = 0
	left = 0
	codes: set[int] = set()
	earliest: int | None = None
	moved_on: list[str] = []
	stamps: dict[int, str] = {}
	for outcome in outcomes:
		chunk = outcome.chunk
		log_left(site, outcome)
		if outcome.code != 0:
			codes.add(outcome.code)
			left += len(chunk.names)
			continue
		left += len(outcome.left)
		if not outcome.visible:
			continue
		fire_iso = stamps.get(chunk.fire_ts) or stamps.setdefault(chunk.fire_ts, utc_iso(chunk.fire_ts))
		late = outcome.enqueued_at - chunk.fire_ts
		updates = [(chunk.names[i], chunk.followings[i]) for i in outcome.visible]
		ctx.memory.advanced(site, updates)
		for name, following in updates:
			if following is not None:
				moved_on.append(name)
				if earliest is None or following < earliest:
					earliest = following
		visible += len(updates)
		if ctx.metrics is not None:
			for _ in updates:
				ctx.metrics.observe_lateness(late)
		late_ms = round(late * 1000, 1)
		log_event(
			fire_log,
			logging.INFO,
			"run_enqueued",
			site=site,
			each=[
				{
					"schedule": chunk.names[i],
					"fire_time": fire_iso,
					"job_id": chunk.job_ids[i],
					"late_ms": late_ms,
				}
				for i in outcome.visible
			],
		)
	if visible:
		ctx.count("runs_enqueued", visible)
		ctx.count("runs_prepared", visible)
	return {
		"visible": visible,
		"left": left,
		"codes": codes,
		"earliest_following": earliest,
		"moved_on": moved_on,
	}


def drop(client: redis.Redis, scripts: Scripts, index_key: str, names: Iterable[str]) -> int:
	names = list(names)
	if not names:
		return 0
	return int(scripts.drop(client)(keys=[index_key], args=[JOB_PREFIX, *names]))


def log_left(site: str, outcome: Outcome) -> None:
	"""Debug: which prepared runs a step left to the ordinary fire path, and why."""
	if not outcome.left or not log.isEnabledFor(logging.DEBUG):
		return
	log_event(
		log,
		logging.DEBUG,
		"prepared_run_left",
		site=site,
		each=[
			{"schedule": outcome.chunk.names[i], "reason": REASONS.get(code, str(code))}
			for i, code in sorted(outcome.left.items())
		],
	)
