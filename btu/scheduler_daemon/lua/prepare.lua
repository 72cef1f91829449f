-- Stores the prepared jobs of one chunk of one site and fire time (prepared.py): checks each run and
-- writes its job hash (rq's own mapping, built by the client) or refuses it. A schedule's previous
-- prepared job (another fire time, never made visible) is dropped when its new one is written.
--
-- KEYS: [1] specs, [2] next_runs, [3] prepared index, [4] markers hash of the fire time.
-- ARGV: [1] job key prefix, [2] fire time, then per run: name, spec sha1, job id, index entry, the
--   number k of the job's fields, then k field/value pairs.
-- Returns one code per run: 0 stored, 1 not due at the fire time, 2 already ran (marker), 3 spec
--   changed since the job was built, 4 a live job has this id.
-- uses: drop_prepared, scores_of

local prefix, fire = ARGV[1], ARGV[2]
local names, starts, n = {}, {}, 0
local a, last = 3, #ARGV
while a <= last do
  n = n + 1
  names[n], starts[n] = ARGV[a], a
  a = a + 5 + 2 * tonumber(ARGV[a + 4])
end
local scores = scores_of(KEYS[2], names, n)
local marks = redis.call('HMGET', KEYS[4], unpack(names))
local specs = redis.call('HMGET', KEYS[1], unpack(names))
local olds = redis.call('HMGET', KEYS[3], unpack(names))
local codes, entries, nentries = {}, {}, 0
for k = 1, n do
  local s = starts[k]
  local name, sha, jid = names[k], ARGV[s + 1], ARGV[s + 2]
  local code = 0
  local score = scores[k]
  if not score or (score ~= fire and tonumber(score) ~= tonumber(fire)) then code = 1
  elseif marks[k] then code = 2
  elseif not specs[k] or redis.sha1hex(specs[k]) ~= sha then code = 3
  else
    local key = prefix .. jid
    local status = redis.call('HGET', key, 'status')
    if status and status ~= 'scheduled' then code = 4
    else
      local old = olds[k]
      if old and string.match(old, '^(%S+)') ~= jid then drop_prepared(KEYS[3], prefix, name) end
      if status then redis.call('DEL', key) end  -- an earlier preparation of this run: replaced whole
      redis.call('HSET', key, unpack(ARGV, s + 5, s + 4 + 2 * tonumber(ARGV[s + 4])))
      entries[nentries + 1], entries[nentries + 2], nentries = name, ARGV[s + 3], nentries + 2
    end
  end
  codes[k] = code
end
if nentries > 0 then redis.call('HSET', KEYS[3], unpack(entries)) end
return codes
