-- Writes one schedule's spec and fire time (redis_store.RedisStore.upsert), atomically.
--
-- KEYS: [1] specs, [2] timings, [3] next_runs, [4] errors, [5] markers hash of the candidate fire time,
--   [6] prepared index, [7] rule edits counter.
-- ARGV: [1] name, [2] spec JSON, [3] timing, [4] candidate fire time, [5] mode ('0', '1' catch-up,
--   '2' one-shot, '3' follows a holiday list), [6] now, [7] job key prefix.
-- Returns {code, fire time}: 0 unchanged, 1 spec changed (in mode '3' a pending fire time still ahead
--   becomes the candidate when they differ: its holiday list was edited), 2 timing changed (or new), 3 catch-up
--   applied, 4 one-shot over, 5 timing changed after the pending run fell due (the old fire time).
--
-- Every change of a schedule's spec or fire time drops its prepared run (in the same script), so a
-- run prepared ahead never becomes visible in its old form. A change of rule or zone replaces the
-- pending fire time by the candidate (the new rule's) and counts the edit (the fire transaction
-- watches the counter); when the replaced one was due (code 5) the consumer decides, by the new
-- rule, which missed fire time (if any) runs instead (a catch-up).
-- uses: drop_prepared

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
    local now = tonumber(ARGV[6])
    if ARGV[5] == '3' and tonumber(score) > now + 1 and tonumber(ARGV[4]) > now
        and tonumber(ARGV[4]) ~= tonumber(score) and redis.call('HEXISTS', KEYS[5], ARGV[1]) == 0 then
      -- The same timing, but the holiday list's dates changed the next fire time: neither time has
      -- fallen due, so the spec's own next one replaces it (nothing ran or is lost).
      redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
      return {1, ARGV[4]}
    end
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
