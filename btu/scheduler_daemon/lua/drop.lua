-- Drops prepared runs (redis_store.RedisStore.remove, prepared.Preparer.sweep).
--
-- KEYS: [1] prepared index. ARGV: [1] job key prefix, then schedule names.
-- Returns the number of jobs deleted.
-- uses: drop_prepared

local dropped = 0
for i = 2, #ARGV do dropped = dropped + drop_prepared(KEYS[1], ARGV[1], ARGV[i]) end
return dropped
