-- controller_read.lua: the leader's fenced read of the change log and the outcome stream.
--
-- Reading through the consumer group moves the group's cursor, so only the lease holder may
-- do it: a deposed leader that wakes up late can neither take changes away from the new
-- leader nor write (see grant.lua).
--
-- KEYS[1] controller lease    KEYS[2] change log stream    KEYS[3] outcome stream
-- ARGV[1] fencing token       ARGV[2] group    ARGV[3] consumer    ARGV[4] count per stream
-- ARGV[5] log id ('>' new, or an id to re-read this consumer's pending entries after it)
-- ARGV[6] outcome stream id (same meaning)
--
-- Returns {'fenced', token of the holder or ''} or {'ok', XREADGROUP reply or false}.

local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then
  return {'fenced', held or ''}
end
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4],
  'STREAMS', KEYS[2], KEYS[3], ARGV[5], ARGV[6])
return {'ok', reply}
