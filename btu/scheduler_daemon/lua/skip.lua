-- Records skipped fire times (redis_store.RedisStore.record_skips).
--
-- KEYS: [1] the skipped hash.
-- ARGV: [1] how many to keep per schedule, then (name, JSON record with a fire_time) pairs.
-- Each schedule's value is a JSON list, newest first; a record whose fire time and reason equal the
-- newest one's is not added again. Returns 1 per pair recorded, 0 per pair already there.

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
