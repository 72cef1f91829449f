-- Helper rq_time(sec, usec): Unix seconds and microseconds -> RQ's timestamp format
-- ('%Y-%m-%dT%H:%M:%S.%fZ'); Redis's Lua has no os.date (days to civil date: H. Hinnant's algorithm).

local function rq_time(sec, usec)
  local days = math.floor(sec / 86400)
  local rem = sec - days * 86400
  local h = math.floor(rem / 3600)
  rem = rem - h * 3600
  local mi = math.floor(rem / 60)
  local s = rem - mi * 60
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', y, m, d, h, mi, s, usec)
end
