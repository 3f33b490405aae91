-- finish.lua: an agent settles a claim without committing entries: done with no writes,
-- failed, or released for another agent of the role to take at once.
-- (A handler that wrote entries settles through commit.lua's 'claim' fence instead, which
-- acknowledges the claim in the same commit.)
--
-- KEYS[1] role queue stream    KEYS[2] outcome stream
-- ARGV[1] queue entry id (the claim)    ARGV[2] group    ARGV[3] consumer (the agent)
-- ARGV[4] 'ok' | 'failed' | 'retry' (failed, may run again) | 'release'   ARGV[5] activation id    ARGV[6] error text
-- ARGV[7] approximate outcome stream cap    ARGV[8] consumer that holds released claims
-- ARGV[9] idle time given to a released claim, ms (older than any claim lease)
-- ARGV[10] kind of failure: '' | 'fail' (blackboard.Fail) | 'retry' (blackboard.Retry)
--          | 'error' (another exception) | 'deadline'     ARGV[11] least delay before a
--          retry, seconds ('' = none)     ARGV[12] attempt number of this run
-- ARGV[13] the activation's entry key (for the controller's decisions about it)
--
-- Returns {'ok'} or {'fenced', reason} when the claim is no longer this agent's.

local p = redis.call('XPENDING', KEYS[1], ARGV[2], ARGV[1], ARGV[1], 1)
if #p == 0 then
  return {'fenced', 'claim ' .. ARGV[1] .. ' is no longer pending'}
end
if p[1][2] ~= ARGV[3] then
  return {'fenced', 'claim ' .. ARGV[1] .. ' was taken over by ' .. p[1][2]}
end
if ARGV[4] == 'release' then
  redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[8], 0, ARGV[1], 'IDLE', ARGV[9], 'JUSTID')
  return {'ok'}
end
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
  'a', ARGV[5], 'o', ARGV[4], 'e', ARGV[6], 'w', ARGV[3],
  'k', ARGV[10] or '', 'r', ARGV[11] or '', 'n', ARGV[12] or '1', 'K', ARGV[13] or '')
return {'ok'}
