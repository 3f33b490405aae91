-- trim_log.lua: trim the change log to the retention window, never past what a consumer
-- group has not read yet.
--
-- Event ids are '<revision>-1' and revisions are contiguous, so the window is a revision:
-- every event below `cut` goes, where cut = the larger of (newest - max events + 1) and the
-- first revision written at or after the age cutoff (found by binary search over event
-- times), then lowered to the first revision any group has not been delivered or has
-- pending. One call removes at most ARGV[5] events, so a long backlog never blocks the
-- server for long; the caller repeats while it removes a full batch.
--
-- KEYS[1] change log stream    KEYS[2] fence key (the compactor lease)
-- ARGV[1] fence mode '' | 'eq' (others refused)     ARGV[2] fence token
-- ARGV[3] most events kept (0 = no count limit)
-- ARGV[4] age cutoff, unix milliseconds (0 = no age limit)
-- ARGV[5] most events removed by this call
--
-- Returns {'ok', events removed, oldest revision kept (0 = log empty), group that held the
-- cut back or ''} or {'fenced', reason}.

local fenced = check_lease_fence(KEYS[2], ARGV[1], ARGV[2])
if fenced then return fenced end

local function rev_of(id)  -- event ids are '<revision>-1'
  return (stream_id(id))
end

local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return {'ok', 0, 0, ''} end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local oldest = rev_of(first[1][1])
local newest = rev_of(last[1][1])

local cut = oldest
local max_events = tonumber(ARGV[3])
if max_events > 0 and newest - max_events + 1 > cut then
  cut = newest - max_events + 1
end

local cutoff = tonumber(ARGV[4])
local function time_of(rev)  -- time of the event of `rev`, or nil when it is missing
  local e = redis.call('XRANGE', KEYS[1], rev .. '-1', rev .. '-1')
  if #e == 0 then return nil end
  local f = e[1][2]
  for i = 1, #f, 2 do
    if f[i] == 't' then return tonumber(f[i + 1]) end
  end
  return nil
end
if cutoff > 0 then
  -- first revision in [oldest, newest + 1] whose event is at or after the cutoff
  local a, b = oldest, newest + 1
  while a < b do
    local mid = math.floor((a + b) / 2)
    local t = time_of(mid)
    if t == nil or t >= cutoff then b = mid else a = mid + 1 end
  end
  if a > cut then cut = a end
end

local held_by = ''
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, g in ipairs(groups) do
  local name, delivered = group_info(g)
  local floor = rev_of(delivered) + 1
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 and rev_of(pending[2]) < floor then
    floor = rev_of(pending[2])
  end
  if floor < cut then
    cut = floor
    held_by = name
  end
end

local batch = tonumber(ARGV[5])
if cut - oldest > batch then cut = oldest + batch end
if cut <= oldest then return {'ok', 0, oldest, held_by} end
local removed = redis.call('XTRIM', KEYS[1], 'MINID', cut .. '-0')
return {'ok', removed, cut, held_by}
