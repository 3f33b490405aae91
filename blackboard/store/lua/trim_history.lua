-- trim_history.lua: trim the retained versions of some entries to the retention window.
--
-- A version goes when it is more than ARGV[3] versions behind the current one, or when it
-- was written before the age cutoff; the current version (a tombstone included) always
-- stays, so versions never restart. Versions are ordered in time, so the scan of each entry
-- stops at the first version kept. `lo` (oldest retained version) moves up with the trim,
-- which keeps `get(version=)` and `get(at_revision=)` answering HistoryTrimmedError.
--
-- KEYS[1] fence key (the compactor lease)   KEYS[2..] entry hashes
-- ARGV[1] fence mode '' | 'eq' (others refused)     ARGV[2] fence token
-- ARGV[3] most versions kept per entry (>= 1)
-- ARGV[4] age cutoff, unix milliseconds (0 = no age limit)
-- ARGV[5] most versions removed by this call
--
-- Returns {'ok', versions removed, entries touched} or {'fenced', reason}.

local fenced = check_lease_fence(KEYS[1], ARGV[1], ARGV[2])
if fenced then return fenced end

local keep = tonumber(ARGV[3])
local cutoff = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local removed, touched = 0, 0
for k = 2, #KEYS do
  if budget <= 0 then break end
  local state = redis.call('HMGET', KEYS[k], 'v', 'lo')
  local v = tonumber(state[1])
  local lo = tonumber(state[2])
  if v and lo and lo < v then
    local newlo = lo
    while newlo < v and budget > 0 do
      local drop = v - newlo >= keep
      if not drop and cutoff > 0 then
        local rec = redis.call('HGET', KEYS[k], tostring(newlo))
        if rec then
          local p1 = string.find(rec, '|', 1, true)
          local p2 = string.find(rec, '|', p1 + 1, true)
          drop = tonumber(string.sub(rec, p1 + 1, p2 - 1)) < cutoff
        else
          drop = true  -- a missing record below the current version: move past it
        end
      end
      if not drop then break end
      redis.call('HDEL', KEYS[k], tostring(newlo))
      newlo = newlo + 1
      removed = removed + 1
      budget = budget - 1
    end
    if newlo ~= lo then
      redis.call('HSET', KEYS[k], 'lo', newlo)
      touched = touched + 1
    end
  end
end
return {'ok', removed, touched}
