-- renew_claims.lua: an agent keeps its claims alive while their handlers run.
--
-- A claim is a pending entry of the role queue; its idle time is the claim's age, and other
-- agents take over claims idle longer than the claim lease (XAUTOCLAIM). Renewing resets the
-- idle time of the claims this agent still owns, and never touches another agent's.
--
-- KEYS[1] role queue stream
-- ARGV[1] group    ARGV[2] consumer (the agent)    ARGV[3..] queue entry ids
--
-- Returns the ids another agent has taken over (an id no longer pending at all was settled
-- meanwhile, by this agent's own commit: it is neither renewed nor reported).

local lost = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #p == 1 then
    if p[1][2] == ARGV[2] then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    else
      lost[#lost + 1] = id
    end
  end
end
return lost
