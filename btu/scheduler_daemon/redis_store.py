"""Redis connections and the atomic scripts that change BTU's keys (names: btu.contracts.redis_keys)."""

from __future__ import annotations

import json
import time
from typing import Iterable

import redis
from rq.job import Job

from btu.contracts.redis_keys import RedisKeys

from .config import DaemonConfig, SiteConfig

JOB_PREFIX = Job.redis_job_namespace_prefix  # "rq:job:" on every supported rq

# drop_prepared(index, prefix, name): delete a schedule's prepared job (prepared.py) while it is still
# only prepared (status 'scheduled': a job made visible is never touched) and its index entry.
DROP_PREPARED_FN = """
local function drop_prepared(index, prefix, name)
  local entry = redis.call('HGET', index, name)
  if not entry then return 0 end
  redis.call('HDEL', index, name)
  local jid = string.match(entry, '^(%S+)')
  if jid and redis.call('HGET', prefix .. jid, 'status') == 'scheduled' then
    redis.call('DEL', prefix .. jid)
    return 1
  end
  return 0
end
"""

# set_markers(key, pairs): write markers (flat {schedule, job id, ...}) into a fire time's markers hash.
# A fire time's hash holds one field per run, thousands: written as Redis writes a small hash (a
# listpack, up to hash-max-listpack-entries = 512 fields) every look-up and insert is a scan of it,
# and 500 markers written or checked cost ~100x their hash-table time. A pad value longer than
# hash-max-listpack-value in the same HSET makes Redis store the hash as a hash table from its first
# write (it never converts back); the pad is deleted in the same script, so no reader sees it.
MARKERS_FN = """
local MARKER_PAD_FIELD, MARKER_PAD = '\\0btu-pad', string.rep('-', 1024)
local function set_markers(key, fields)
  redis.call('HSET', key, MARKER_PAD_FIELD, MARKER_PAD, unpack(fields))
  redis.call('HDEL', key, MARKER_PAD_FIELD)
end
"""

# KEYS: specs, timings, next_runs, errors, markers hash of the candidate fire time, prepared index,
# rule edits counter. ARGV: name, spec JSON, timing, candidate fire time, mode ('0', '1' catch-up,
# '2' one-shot), now, job key prefix. Every change of a schedule's spec or fire time drops its prepared
# run (in the same script), so a run prepared ahead never becomes visible in its old form. A change of
# rule or zone replaces the pending fire time by the candidate (the new rule's) and counts the edit
# (the fire transaction watches the counter); when the replaced one was due (code 5) the consumer
# decides, by the new rule, which missed fire time (if any) runs instead (a catch-up).
UPSERT_LUA = (
	DROP_PREPARED_FN
	+ """
if ARGV[5] == '2' and redis.call('HEXISTS', KEYS[5], ARGV[1]) == 1 then
  -- A one-shot whose run was enqueued (its marker exists): it is over, never armed again.
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  drop_prepared(KEYS[6], ARGV[7], ARGV[1])
  return {4, ARGV[4]}
end
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
local oldtiming = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if score and oldtiming == ARGV[3] then
  if ARGV[5] == '1' and tonumber(ARGV[4]) < tonumber(score) and redis.call('HEXISTS', KEYS[5], ARGV[1]) == 0 then
    -- A catch-up from the leader's memory after Redis lost its data: a run not enqueued yet, earlier
    -- than the fire time a standby (which remembers nothing) wrote meanwhile.
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
    drop_prepared(KEYS[6], ARGV[7], ARGV[1])
    return {3, ARGV[4]}
  end
  if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    drop_prepared(KEYS[6], ARGV[7], ARGV[1])
    return {1, score}
  end
  return {0, score}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
drop_prepared(KEYS[6], ARGV[7], ARGV[1])
if oldtiming and oldtiming ~= ARGV[3] then redis.call('INCR', KEYS[7]) end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[6]) then
  -- The rule changed after its pending run fell due (ARGV[6] = now): that fire time is the old
  -- rule's; the consumer checks it against the new rule (kept if the new rule has it too).
  return {5, score}
end
return {2, ARGV[4]}
"""
)

# One batch of due runs in one call (inside the fire transaction): set the marker of each enqueued
# run (a field of its fire time's markers hash), then move each schedule to its next fire time if it
# still holds the one just run. KEYS: next_runs, then the markers hashes written; ARGV: marker TTL (s),
# the number of markers m, m triples (KEYS index of its hash, schedule, job id), then name, fire time
# it had and next fire time ('' = remove) per schedule.
FIRE_BATCH_LUA = (
	MARKERS_FN
	+ """
local m = tonumber(ARGV[2])
local by_key = {}
for i = 0, m - 1 do
  local a = 3 + i * 3
  local k = tonumber(ARGV[a])
  local fields = by_key[k]
  if not fields then fields = {}; by_key[k] = fields end
  fields[#fields + 1] = ARGV[a + 1]
  fields[#fields + 1] = ARGV[a + 2]
end
for k, fields in pairs(by_key) do set_markers(KEYS[k], fields) end
for k = 2, #KEYS do redis.call('EXPIRE', KEYS[k], ARGV[1]) end
local moved = 0
for i = 3 + m * 3, #ARGV, 3 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[i + 1]) then
    if ARGV[i + 2] == '' then redis.call('ZREM', KEYS[1], ARGV[i]) else redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i]) end
    moved = moved + 1
  end
end
return moved
"""
)

# KEYS: [1] prepared index. ARGV: [1] job key prefix, then schedule names. Returns jobs deleted.
DROP_LUA = (
	DROP_PREPARED_FN
	+ """
local dropped = 0
for i = 2, #ARGV do dropped = dropped + drop_prepared(KEYS[1], ARGV[1], ARGV[i]) end
return dropped
"""
)

# Record skipped fire times: KEYS[1] = the skipped hash; ARGV: how many to keep per schedule, then
# (name, JSON record with a fire_time) pairs. Each schedule's value is a JSON list, newest first; a
# record whose fire time and reason equal the newest one's is not added again. Returns 1 per pair
# recorded, 0 per pair already there.
SKIP_LUA = """
local keep = tonumber(ARGV[1])
local added = {}
for i = 2, #ARGV, 2 do
  local record = cjson.decode(ARGV[i + 1])
  local list = {}
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    local ok, decoded = pcall(cjson.decode, old)
    if ok and type(decoded) == 'table' then list = decoded end
  end
  local newest = list[1]
  if type(newest) == 'table' and tonumber(newest['fire_time']) == tonumber(record['fire_time'])
      and newest['reason'] == record['reason'] then
    table.insert(added, 0)
  else
    table.insert(list, 1, record)
    while #list > keep do table.remove(list) end
    redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(list))
    table.insert(added, 1)
  end
end
return added
"""
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
			mode = "2" if name in once else "1" if name in catch_up else "0"
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
