-- lease.lua: a lease with a fencing token for a single-holder role (store/lease.py): the
-- controller's leader lease and the compactor's lease. The token is '<epoch>:<holder>', the
-- epoch counted up once per new holder; fenced scripts compare it with GET (fence mode 'eq').
--
-- KEYS[1] lease string, holding the token '<epoch>:<holder>' with a TTL
-- KEYS[2] epoch counter (one step per new lease)
--
-- ARGV[1] 'acquire' | 'renew' | 'release'
-- ARGV[2] holder id    ARGV[3] TTL, milliseconds    ARGV[4] token held ('' = none)
--
-- acquire: take a free lease under a new epoch, or extend it when ARGV[4] still holds it.
-- renew:   extend the lease only if ARGV[4] still holds it.
-- release: delete the lease only if ARGV[4] still holds it.
-- Returns {1, token} when the caller holds the lease afterwards (release: {1, ''}),
-- else {0, token of the current holder or ''}.

local cur = redis.call('GET', KEYS[1])
local op = ARGV[1]
if cur and cur == ARGV[4] then
  if op == 'release' then
    redis.call('DEL', KEYS[1])
    return {1, ''}
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, cur}
end
if op == 'acquire' and not cur then
  local epoch = redis.call('INCR', KEYS[2])
  local token = epoch .. ':' .. ARGV[2]
  redis.call('SET', KEYS[1], token, 'PX', ARGV[3])
  return {1, token}
end
return {0, cur or ''}
