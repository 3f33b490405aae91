-- trim_stream.lua: trim a stream with time-based ids (an activation queue) to an age
-- window, never past what one of its consumer groups has not been delivered yet or still has
-- pending. A stream with no consumer group is left alone: nobody has read it yet.
--
-- KEYS[1] stream    KEYS[2] fence key (the compactor lease)
-- ARGV[1] fence mode '' | 'eq' (others refused)     ARGV[2] fence token     ARGV[3] cutoff, unix ms
--
-- Returns {'ok', entries removed} or {'fenced', reason}.

local fenced = check_lease_fence(KEYS[2], ARGV[1], ARGV[2])
if fenced then return fenced end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'ok', 0} end

local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {'ok', 0} end
local minid = ARGV[3] .. '-0'
for _, g in ipairs(groups) do
  local name, delivered = group_info(g)
  -- keep the last delivered entry and everything after it, and every pending entry
  if id_before(delivered, minid) then minid = delivered end
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 and id_before(pending[2], minid) then minid = pending[2] end
end
return {'ok', redis.call('XTRIM', KEYS[1], 'MINID', minid)}
