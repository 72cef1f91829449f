"""Redis connections and the atomic scripts that change BTU's keys (names: btu.contracts.redis_keys)."""

from __future__ import annotations

import json
import time
from typing import Iterable

import redis
from rq.job import Job

from btu.contracts.redis_keys import RedisKeys

from . import lua_scripts
from .config import DaemonConfig, SiteConfig

JOB_PREFIX = Job.redis_job_namespace_prefix  # "rq:job:" on every supported rq

# The scripts (lua/*.lua, composed with their helpers by lua_scripts: each file's header says what it
# checks and writes, its KEYS, ARGV and reply). upsert: one schedule's spec and fire time (every
# change drops its prepared run in the same script); fire_batch: the markers and moves of one batch
# of the ordinary fire transaction; drop: prepared runs of removed schedules; skip: skipped fire times.
DROP_PREPARED_FN = lua_scripts.load("drop_prepared")
MARKERS_FN = lua_scripts.load("set_markers")
UPSERT_LUA = lua_scripts.load("upsert")
FIRE_BATCH_LUA = lua_scripts.load("fire_batch")
DROP_LUA = lua_scripts.load("drop")
SKIP_LUA = lua_scripts.load("skip")
SKIPS_KEPT = 10  # skipped fire times kept per schedule (the daemon's log has every one)


def misfire_record(fire_ts: int, now: float, grace: int) -> dict:
	"""What ``btu:<site>:skipped`` keeps about a run skipped as too late (Desk shows it)."""
	return {
		"fire_time": int(fire_ts),
		"reason": "misfire",
		"at": round(now, 3),
		"late_s": round(now - fire_ts, 1),
		"misfire_grace_s": grace,
	}


def overlap_record(fire_ts: int, now: float, job_id: str, status: str) -> dict:
	"""What ``btu:<site>:skipped`` keeps about a run skipped because its previous one was still active."""
	return {
		"fire_time": int(fire_ts),
		"reason": "overlap",
		"at": round(now, 3),
		"previous_job": job_id,
		"previous_status": status,
	}


def decode(value: bytes | str | None) -> str | None:
	if value is None:
		return None
	return value.decode("utf-8") if isinstance(value, bytes) else value


class RedisStore:
	"""Connections (one pool per Redis URL) and BTU key names."""

	def __init__(self, config: DaemonConfig) -> None:
		self.config = config
		self.keys = RedisKeys(config.key_prefix)
		self._clients: dict[str, redis.Redis] = {}
		# site -> its own Redis URL (sites.py adds the sites found while running; a site that left
		# keeps its entry so that its keys are removed where they are)
		self.site_redis: dict[str, str] = {s.name: s.redis_url for s in config.sites if s.redis_url}
		self._upsert: dict[str, object] = {}
		self._fire_batch: dict[int, object] = {}
		self._skip: dict[int, object] = {}
		self._drop: dict[int, object] = {}

	# --- connections -------------------------------------------------------------------------
	def _client(self, url: str) -> redis.Redis:
		client = self._clients.get(url)
		if client is None:
			client = redis.Redis.from_url(
				url,
				username=self.config.redis_username,
				password=self.config.redis_password,
				socket_timeout=10,
				socket_connect_timeout=3,
				health_check_interval=15,
				retry_on_timeout=False,
			)
			self._clients[url] = client
		return client

	def bench_client(self) -> redis.Redis:
		return self._client(self.config.redis_url)

	def client(self, site: str | SiteConfig) -> redis.Redis:
		if isinstance(site, SiteConfig):
			return self._client(site.redis_url or self.config.redis_url)
		return self._client(self.site_redis.get(site) or self.config.redis_url)

	def upsert_script(self, site: str):
		client = self.client(site)
		key = id(client)
		if key not in self._upsert:
			self._upsert[key] = client.register_script(UPSERT_LUA)
		return self._upsert[key]

	def fire_batch_script(self, site: str):
		client = self.client(site)
		key = id(client)
		if key not in self._fire_batch:
			self._fire_batch[key] = client.register_script(FIRE_BATCH_LUA)
		return self._fire_batch[key]

	def drop_script(self, site: str):
		client = self.client(site)
		key = id(client)
		if key not in self._drop:
			self._drop[key] = client.register_script(DROP_LUA)
		return self._drop[key]

	def skip_script(self, site: str):
		client = self.client(site)
		key = id(client)
		if key not in self._skip:
			self._skip[key] = client.register_script(SKIP_LUA)
		return self._skip[key]

	def record_skips(self, site: str, records: list[tuple[str, dict]], client=None) -> list[int]:
		"""Add (schedule, record) skipped fire times to ``btu:<site>:skipped`` (in ``client``, e.g.
		a MULTI pipeline, when given); returns 1 per record added, 0 per one already there."""
		if not records:
			return []
		args: list = [SKIPS_KEPT]
		for name, record in records:
			args += (name, json.dumps(record, separators=(",", ":")))
		return self.skip_script(site)(keys=[self.keys.skipped(site)], args=args, client=client)

	def close(self) -> None:
		for client in self._clients.values():
			try:
				client.close()
			except Exception:  # noqa: BLE001
				pass

	# --- schedule state ----------------------------------------------------------------------
	def upsert(
		self,
		site: str,
		entries: Iterable[tuple[str, str, str, int]],
		catch_up: set[str] | frozenset[str] = frozenset(),
		once: set[str] | frozenset[str] = frozenset(),
		calendars: set[str] | frozenset[str] = frozenset(),
	) -> list[tuple[int, float]]:
		"""Write (name, spec_json, timing, candidate_ts) entries in one round trip.

		An entry whose timing is unchanged keeps its pending fire time (even a past one,
		so a run missed while we were away is still seen); one whose timing changed gets the
		candidate; returns (code, fire_ts) each: 0 unchanged, 1 spec changed, 2 timing changed
		(or new), 3 catch-up applied, 4 one-shot over, 5 timing changed after the pending run
		fell due (fire_ts: that old pending time; the candidate is pending now).
		Names in ``catch_up`` carry a missed fire time from the leader's memory: it replaces a
		later pending one unless that run was already enqueued (its marker exists).
		Names in ``once`` are one-shots (candidate = their run_at): one whose run was already
		enqueued is removed instead, with code 4 (a refresh after the run never re-arms it).
		Names in ``calendars`` follow a holiday list, whose dates may change without their timing:
		a changed spec moves a pending fire time that is still ahead to the candidate (code 1).
		"""
		script = self.upsert_script(site)
		specs, timings = self.keys.specs(site), self.keys.timings(site)
		next_runs, errors = self.keys.next_runs(site), self.keys.errors(site)
		index, edits = self.keys.prepared(site), self.keys.rule_edits(site)
		pipe = self.client(site).pipeline(transaction=False)
		now = time.time()
		for name, spec_json, timing, candidate in entries:
			# A one-shot is never armed again once its run was enqueued (its marker exists); a
			# catch-up replaces a later pending fire time unless that run was enqueued.
			mode = "2" if name in once else "1" if name in catch_up else "3" if name in calendars else "0"
			script(
				keys=[specs, timings, next_runs, errors, self.keys.fired(site, candidate), index, edits],
				args=[name, spec_json, timing, candidate, mode, now, JOB_PREFIX],
				client=pipe,
			)
		return [(int(code), float(score)) for code, score in pipe.execute()]

	def remove(
		self,
		site: str,
		names: Iterable[str],
		errors: dict[str, str] | None = None,
		deleted: Iterable[str] = (),
	) -> None:
		"""Forget schedules (disabled, deleted or broken); record why for broken ones. The skipped
		fire times and the last job of a schedule stay while its row exists (the Desk shows them; a
		re-enabled schedule still knows its previous run): only ``deleted`` ones lose them."""
		names = list(names)
		deleted = list(deleted)
		if not names and not deleted:
			return
		pipe = self.client(site).pipeline(transaction=True)
		if names:
			pipe.zrem(self.keys.next_runs(site), *names)
			pipe.hdel(self.keys.specs(site), *names)
			pipe.hdel(self.keys.timings(site), *names)
			pipe.hdel(self.keys.errors(site), *names)
			# Their runs prepared ahead go with them (never made visible afterwards).
			self.drop_script(site)(keys=[self.keys.prepared(site)], args=[JOB_PREFIX, *names], client=pipe)
		if deleted:
			pipe.hdel(self.keys.skipped(site), *deleted)
			pipe.hdel(self.keys.last_jobs(site), *deleted)
		if errors:
			pipe.hset(self.keys.errors(site), mapping=errors)
		pipe.execute()

	def expire_once(self, site: str, items: list[tuple[str, int, dict]]) -> list[str]:
		"""One-shots whose run_at is older than misfire_grace: (name, run_at, skip record) each.
		Their entries are removed; one that never ran (no marker) gets its skip recorded once.
		Returns the names whose skip was recorded now (to be logged)."""
		if not items:
			return []
		client = self.client(site)
		names = [name for name, _ts, _record in items]
		pipe = client.pipeline(transaction=False)
		for name, run_at, _record in items:
			pipe.hexists(self.keys.fired(site, run_at), name)
		ran = pipe.execute()
		pipe = client.pipeline(transaction=True)
		pipe.zrem(self.keys.next_runs(site), *names)
		pipe.hdel(self.keys.specs(site), *names)
		pipe.hdel(self.keys.timings(site), *names)
		pipe.hdel(self.keys.errors(site), *names)
		self.drop_script(site)(keys=[self.keys.prepared(site)], args=[JOB_PREFIX, *names], client=pipe)
		missed = [(name, record) for (name, _ts, record), done in zip(items, ran) if not done]
		self.record_skips(site, missed, client=pipe)
		results = pipe.execute()
		added = results[-1] if missed else []
		return [name for (name, _record), flag in zip(missed, added) if int(flag)]

	def skipped(self, site: str, names: list[str]) -> dict[str, list[dict]]:
		"""The recorded skipped fire times of some schedules, newest first."""
		if not names:
			return {}
		found = {}
		for name, raw in zip(names, self.client(site).hmget(self.keys.skipped(site), names)):
			if raw:
				try:
					value = json.loads(raw)
				except ValueError:
					continue
				found[name] = value if isinstance(value, list) else []
		return found

	def known_names(self, site: str) -> set[str]:
		client = self.client(site)
		names = {decode(n) for n in client.zrange(self.keys.next_runs(site), 0, -1)}
		for key in (
			self.keys.specs(site),
			self.keys.errors(site),
			self.keys.skipped(site),
			self.keys.last_jobs(site),
		):
			names.update(decode(n) for n in client.hkeys(key))
		return {n for n in names if n}

	def due(self, site: str, now: float, limit: int) -> list[tuple[str, int]]:
		rows = self.client(site).zrangebyscore(
			self.keys.next_runs(site), "-inf", now, start=0, num=limit, withscores=True
		)
		return [(decode(name), int(score)) for name, score in rows]

	def by_client(self, sites: Iterable[str]) -> list[tuple[redis.Redis, list[str]]]:
		"""Sites grouped by the Redis they live in (a bench's sites usually share one)."""
		groups: dict[int, tuple[redis.Redis, list[str]]] = {}
		for site in sites:
			client = self.client(site)
			groups.setdefault(id(client), (client, []))[1].append(site)
		return list(groups.values())

	def due_many(self, sites: Iterable[str], now: float, limit: int) -> dict[str, list[tuple[str, int]]]:
		"""``due`` of several sites, one pipelined send per Redis: site -> its due runs (if any)."""
		found: dict[str, list[tuple[str, int]]] = {}
		for client, members in self.by_client(sites):
			pipe = client.pipeline(transaction=False)
			for site in members:
				pipe.zrangebyscore(
					self.keys.next_runs(site), "-inf", now, start=0, num=limit, withscores=True
				)
			for site, rows in zip(members, pipe.execute()):
				if rows:
					found[site] = [(decode(name), int(score)) for name, score in rows]
		return found

	def earliest_many(self, sites: Iterable[str]) -> dict[str, float]:
		"""``earliest`` of several sites, one pipelined send per Redis: site -> its earliest fire time."""
		found: dict[str, float] = {}
		for client, members in self.by_client(sites):
			pipe = client.pipeline(transaction=False)
			for site in members:
				pipe.zrange(self.keys.next_runs(site), 0, 0, withscores=True)
			for site, rows in zip(members, pipe.execute()):
				if rows:
					found[site] = float(rows[0][1])
		return found

	def earliest(self, site: str) -> float | None:
		rows = self.client(site).zrange(self.keys.next_runs(site), 0, 0, withscores=True)
		return float(rows[0][1]) if rows else None

	def upcoming(self, site: str, count: int) -> list[tuple[str, int]]:
		rows = self.client(site).zrange(self.keys.next_runs(site), 0, count - 1, withscores=True)
		return [(decode(name), int(score)) for name, score in rows]

	def count(self, site: str) -> int:
		return int(self.client(site).zcard(self.keys.next_runs(site)))

	def errors(self, site: str) -> dict[str, str]:
		return {decode(k): decode(v) for k, v in self.client(site).hgetall(self.keys.errors(site)).items()}

	def specs(self, site: str, names: list[str]) -> list[bytes | None]:
		if not names:
			return []
		return self.client(site).hmget(self.keys.specs(site), names)

	def enqueued_since(self, site: str, since: float) -> int:
		first_minute = int(since // 60)
		counts = self.client(site).hgetall(self.keys.enqueued(site))
		return sum(int(v) for k, v in counts.items() if int(k) >= first_minute)
