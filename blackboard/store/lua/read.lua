-- read.lua: one version of one entry, by current / version number / board revision.
--
-- KEYS[1] entry hash
-- ARGV[1] 'c' current | 'v' version number ARGV[2] | 'r' latest version at revision ARGV[2]
--
-- Returns false when there is no such entry or version, else one of
--   {'ok', version, record, current version}
--   {'trimmed', oldest retained version}
--   {'corrupt', reason}
-- Records are '<revision>|<time_ms>|<kind>|<len(meta)>|' .. meta .. value (see commit.lua).

local state = redis.pcall('HMGET', KEYS[1], 'v', 'lo')
if type(state) == 'table' and state.err then
  return {'corrupt', state.err}
end
local cur = tonumber(state[1])
if not cur then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return {'corrupt', 'hash without a version field'}
  end
  return false
end
local lo = tonumber(state[2]) or 1

local function rev_of(v)
  local rec = redis.call('HGET', KEYS[1], tostring(v))
  if not rec then return nil, nil end
  return rev_of_record(rec), rec
end

local want
local mode = ARGV[1]
if mode == 'c' then
  want = cur
elseif mode == 'v' then
  want = tonumber(ARGV[2])
  if want > cur or want < 1 then return false end
  if want < lo then return {'trimmed', lo} end
else
  local at = tonumber(ARGV[2])
  local lo_rev = rev_of(lo)
  if not lo_rev then return {'corrupt', 'missing record of version ' .. lo} end
  if at < lo_rev then
    if lo == 1 then return false end
    return {'trimmed', lo}
  end
  -- binary search: largest version whose revision <= at
  local a, b = lo, cur
  while a < b do
    local mid = math.floor((a + b + 1) / 2)
    local r = rev_of(mid)
    if not r then return {'corrupt', 'missing record of version ' .. mid} end
    if r <= at then a = mid else b = mid - 1 end
  end
  want = a
end

local rec = redis.call('HGET', KEYS[1], tostring(want))
if not rec then return {'corrupt', 'missing record of version ' .. want} end
return {'ok', want, rec, cur}
