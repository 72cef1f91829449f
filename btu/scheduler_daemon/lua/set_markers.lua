-- Helper set_markers(key, fields): write markers (flat {schedule, job id, ...}) into a fire time's
-- markers hash.
--
-- A fire time's hash holds one field per run, thousands: written as Redis writes a small hash (a
-- listpack, up to hash-max-listpack-entries = 512 fields) every look-up and insert is a scan of it,
-- and 500 markers written or checked cost ~100x their hash-table time. A pad value longer than
-- hash-max-listpack-value in the same HSET makes Redis store the hash as a hash table from its first
-- write (it never converts back); the pad is deleted in the same script, so no reader sees it.

local MARKER_PAD_FIELD, MARKER_PAD = '\0btu-pad', string.rep('-', 1024)
local function set_markers(key, fields)
  redis.call('HSET', key, MARKER_PAD_FIELD, MARKER_PAD, unpack(fields))
  redis.call('HDEL', key, MARKER_PAD_FIELD)
end
