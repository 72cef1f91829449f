-- Releases the enqueuing lease if the caller holds it (lease.py). KEYS: [1] the lease. ARGV: [1]
-- holder id. Returns 1 when it was released, else 0.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
