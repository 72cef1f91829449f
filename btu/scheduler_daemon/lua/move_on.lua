-- The schedules of one chunk moved on to their following fire times (prepared.py), sent right behind
-- the visibility steps of the fire time, so that no run waits for the moves of the chunks before it.
-- Between the two a run is marked and its schedule still due at F: any reader takes it as run (the
-- ordinary path moves it on as "already enqueued"), so a lost or refused move costs nothing but that.
-- A schedule moves only if it still holds F, its marker of F is set and its prepared index entry
-- names that same job: an edit or removal meanwhile deleted the entry (drop_prepared), and the
-- ordinary path then moves it by its new rule.
--
-- KEYS: [1] next_runs, [2] markers hash of the fire time, [3] prepared index.
-- ARGV: [1] fire time, then groups: run count, following fire time ('' = leaves next_runs), names.
-- Returns the number of schedules moved.
-- uses: scores_of

local fire_text, fire = ARGV[1], tonumber(ARGV[1])
local names, following, n = {}, {}, 0
local a, last = 2, #ARGV
while a <= last do
  local count, to = tonumber(ARGV[a]), ARGV[a + 1]
  for k = 1, count do
    n = n + 1
    names[n], following[n] = ARGV[a + 1 + k], to
  end
  a = a + 2 + count
end
if n == 0 then return 0 end
local scores = scores_of(KEYS[1], names, n)
local marks = redis.call('HMGET', KEYS[2], unpack(names))
local entries = redis.call('HMGET', KEYS[3], unpack(names))
local moves, removed, nmoves, nremoved = {}, {}, 0, 0
for i = 1, n do
  local score, mark, entry = scores[i], marks[i], entries[i]
  if score and (score == fire_text or tonumber(score) == fire) and mark and entry
      and string.sub(entry, 1, #mark + 1) == mark .. ' ' then
    if following[i] == '' then nremoved = nremoved + 1; removed[nremoved] = names[i]
    else moves[nmoves + 1], moves[nmoves + 2], nmoves = following[i], names[i], nmoves + 2 end
  end
end
if nmoves > 0 then redis.call('ZADD', KEYS[1], unpack(moves)) end
if nremoved > 0 then redis.call('ZREM', KEYS[1], unpack(removed)) end
return nremoved + nmoves / 2
