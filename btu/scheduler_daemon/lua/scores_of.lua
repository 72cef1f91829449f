-- Helper scores_of(key, names, n): the scores of names in a sorted set (ZMSCORE; one ZSCORE each
-- before Redis 6.2).

local function scores_of(key, names, n)
  local scores = redis.pcall('ZMSCORE', key, unpack(names))
  if type(scores) == 'table' and not scores.err then return scores end
  scores = {}
  for i = 1, n do scores[i] = redis.call('ZSCORE', key, names[i]) end
  return scores
end
