-- log_read.lua: read change-log events after an id, dropping the ones no record backs.
--
-- KEYS[1] change log stream
-- ARGV[1] read events with ids greater than this one    ARGV[2] most events to read
--
-- Returns {events, dropped ids, id of the last event read or ''}: events as XRANGE gives
-- them ({id, {field, value, ...}}), forged ones left out (see event_backed in preamble.lua).

local prefix = string.sub(KEYS[1], 1, #KEYS[1] - 3)
local got = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local out, dropped = {}, {}
for _, ev in ipairs(got) do
  local f = {}
  local flat = ev[2]
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  if event_backed(prefix, ev[1], f) then
    out[#out + 1] = ev
  else
    dropped[#dropped + 1] = ev[1]
  end
end
local last = ''
if #got > 0 then last = got[#got][1] end
return {out, dropped, last}
