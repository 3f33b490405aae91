-- compactor_lease.lua: the one-compactor-per-board lease with a fencing token.
--
-- The token is '<epoch>:<owner>', the epoch counted up once per new holder, so a compactor
-- that restarts under the same name still gets a token its earlier life never held. Merge and
-- trim scripts check it with fence mode 'eq' (GET lease == token).
--
-- KEYS[1] lease string                KEYS[2] epoch counter
-- ARGV[1] 'acquire' | 'renew' | 'release'
-- ARGV[2] owner name (acquire) or token (renew, release)
-- ARGV[3] time to live, milliseconds
--
-- Returns {'ok', token} (acquired, renewed or released), {'held', token of the holder,
-- milliseconds it still lives} (acquire while another holds it) or {'lost', holder or ''}.

local held = redis.call('GET', KEYS[1])
local op = ARGV[1]
if op == 'acquire' then
  if not held then
    local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[2]
    redis.call('SET', KEYS[1], token, 'PX', tonumber(ARGV[3]))
    return {'ok', token}
  end
  return {'held', held, redis.call('PTTL', KEYS[1])}
end
if held ~= ARGV[2] then
  return {'lost', held or ''}
end
if op == 'renew' then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
else
  redis.call('DEL', KEYS[1])
end
return {'ok', ARGV[2]}
