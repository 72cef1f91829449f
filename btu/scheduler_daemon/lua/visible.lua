-- One chunk of prepared runs of one site and fire time made visible, atomically (prepared.py); their
-- schedules are moved on by move_on.lua, sent right behind (see there).
--
-- KEYS: [1] next_runs, [2] markers hash of the fire time, [3] runs-per-minute hash, [4] lease,
--   [5] last_jobs, [6] rq:queues, then the queue keys the runs use. Every key is a real name (never
--   ''): a Redis ACL user limited to BTU's and RQ's key patterns refuses a script that declares any
--   other.
-- ARGV: [1] fire time, [2] lease holder id ('' when the lease lives in another Redis: not checked
--   here), [3] marker TTL (s), [4] misfire grace (s), [5] job key prefix, then groups of runs sharing
--   a queue, a following fire time and an overlap policy: run count, queue number (1 = KEYS[7]),
--   following fire time ('' = none), '1' for overlap Skip else '0', then name and job id of each run.
-- Returns {code, Redis seconds, microseconds, runs made visible, index, reason, index, reason, ...}
--   (indexes count the runs from 1 in ARGV order): code 0, or -1 lease held by another, -3 beyond
--   misfire grace (nothing written then). Reasons: 1 not due at the fire time, 2 marker set, 3 the
--   following fire time has passed, 4 the prepared job is gone, 5 the previous run is active (Skip).
-- uses: rq_time, set_markers, scores_of

if redis.replicate_commands then redis.replicate_commands() end
if ARGV[2] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[2] then return {-1} end
local fire, prefix = tonumber(ARGV[1]), ARGV[5]
local t = redis.call('TIME')
local sec, usec = tonumber(t[1]), tonumber(t[2])
local now = sec + usec / 1000000
if now - fire > tonumber(ARGV[4]) then return {-3, t[1], t[2]} end
-- (Counters, not #t: the length of a Lua 5.1 table is a binary search each time.)
local names, ids, group, n = {}, {}, {}, 0
local a, last = 6, #ARGV
while a <= last do
  local count = tonumber(ARGV[a])
  local following = ARGV[a + 2]
  local g = {q = tonumber(ARGV[a + 1]), following = following, skip = ARGV[a + 3] == '1',
    past = following ~= '' and tonumber(following) <= now}
  a = a + 4
  for _ = 1, count do
    n = n + 1
    names[n], ids[n], group[n] = ARGV[a], ARGV[a + 1], g
    a = a + 2
  end
end
local scores = scores_of(KEYS[1], names, n)
local marks = redis.call('HMGET', KEYS[2], unpack(names))
local fire_text = ARGV[1]
local ok, left, nok, nleft = {}, {}, 0, 0
for i = 1, n do
  local code = 0
  local g = group[i]
  local score = scores[i]
  if not score or (score ~= fire_text and tonumber(score) ~= fire) then code = 1
  elseif marks[i] then code = 2
  elseif g.past then code = 3
  elseif g.skip then
    local previous = redis.call('HGET', KEYS[5], names[i])
    if previous then
      local status = redis.call('HGET', prefix .. previous, 'status')
      if status == 'queued' or status == 'started' or status == 'deferred' or status == 'scheduled' then code = 5 end
    end
  end
  if code == 0 then nok = nok + 1; ok[nok] = i
  else left[nleft + 1], left[nleft + 2], nleft = i, code, nleft + 2 end
end
t = redis.call('TIME')
sec, usec = tonumber(t[1]), tonumber(t[2])
local stamp = rq_time(sec, usec)
local marked, overlap, pushes = {}, {}, {}
local nmarked, noverlap, counts = 0, 0, {}
local fired = 0
for k = 1, nok do
  local i = ok[k]
  local jid = ids[i]
  local key = prefix .. jid
  if redis.call('HSET', key, 'status', 'queued', 'enqueued_at', stamp) == 2 then
    redis.call('DEL', key)  -- it was not there: dropped by an edit, or Redis lost it
    left[nleft + 1], left[nleft + 2], nleft = i, 4, nleft + 2
  else
    fired = fired + 1
    local g = group[i]
    local name = names[i]
    local queued = pushes[g.q]
    if not queued then queued = {}; pushes[g.q] = queued; counts[g.q] = 0 end
    local c = counts[g.q] + 1
    queued[c], counts[g.q] = jid, c
    marked[nmarked + 1], marked[nmarked + 2], nmarked = name, jid, nmarked + 2
    if g.skip then overlap[noverlap + 1], overlap[noverlap + 2], noverlap = name, jid, noverlap + 2 end
  end
end
if fired > 0 then
  set_markers(KEYS[2], marked)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  if noverlap > 0 then redis.call('HSET', KEYS[5], unpack(overlap)) end
  for q, queued in pairs(pushes) do
    redis.call('RPUSH', KEYS[6 + q], unpack(queued))
    redis.call('SADD', KEYS[6], KEYS[6 + q])
  end
  redis.call('HINCRBY', KEYS[3], tostring(math.floor(sec / 60)), fired)
end
return {0, t[1], t[2], fired, unpack(left)}
