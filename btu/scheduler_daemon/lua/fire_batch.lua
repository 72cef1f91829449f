-- One batch of due runs in one call (inside the ordinary fire transaction, scheduler.py): set the
-- marker of each enqueued run (a field of its fire time's markers hash), then move each schedule to
-- its next fire time if it still holds the one just run.
--
-- KEYS: [1] next_runs, then the markers hashes written.
-- ARGV: [1] marker TTL (s), [2] the number of markers m, m triples (KEYS index of its hash, schedule,
--   job id), then per schedule: name, fire time it had, next fire time ('' = remove).
-- Returns the number of schedules moved.
-- uses: set_markers

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
