-- Helper drop_prepared(index, prefix, name): delete a schedule's prepared job (prepared.py) while it
-- is still only prepared (status 'scheduled': a job made visible is never touched) and its entry in
-- the prepared index. Returns 1 when a job was deleted, else 0.

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
