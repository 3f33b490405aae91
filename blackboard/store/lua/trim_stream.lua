-- trim_stream.lua: trim a stream with time-based ids (an activation queue) to an age
-- window, never past what one of its consumer groups has not been delivered yet or still has
-- pending. A stream with no consumer group is left alone: nobody has read it yet.
--
-- KEYS[1] stream    KEYS[2] fence key (the compactor lease)
-- ARGV[1] fence mode '' | 'eq'     ARGV[2] fence token     ARGV[3] cutoff, unix ms
--
-- Returns {'ok', entries removed} or {'fenced', reason}.

if ARGV[1] == 'eq' then
  local held = redis.call('GET', KEYS[2])
  if held ~= ARGV[2] then
    return {'fenced', 'lease is held by ' .. tostring(held)}
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'ok', 0} end

local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {'ok', 0} end
local minid = ARGV[3] .. '-0'
for _, g in ipairs(groups) do
  local name, delivered
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
  end
  -- keep the last delivered entry and everything after it, and every pending entry
  if less(delivered, minid) then minid = delivered end
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 and less(pending[2], minid) then minid = pending[2] end
end
return {'ok', redis.call('XTRIM', KEYS[1], 'MINID', minid)}
