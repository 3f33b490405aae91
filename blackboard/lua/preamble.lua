-- preamble.lua: functions shared by the scripts that commit on behalf of a writer
-- (commit.lua, propose.lua). scripts.py prepends this text to them, so one fence and one
-- idempotency check serve every such script and a new fence mode reaches all of them.

-- The stored reply of a commit that used this idempotency key, or nil.
-- `stored` is 'result#fingerprint'; a different non-empty fingerprint means the key came
-- back with another request.
local function replay(idem_key, fingerprint)
  local stored = redis.call('GET', idem_key)
  if not stored then return nil end
  local sep = string.find(stored, '#', 1, true)
  local fp = string.sub(stored, sep + 1)
  if fingerprint ~= '' and fp ~= '' and fp ~= fingerprint then
    return {'reused'}
  end
  return {'dup', string.sub(stored, 1, sep - 1)}
end

-- Check a fence. Modes: '' none | 'eq' (GET key == token, a lease with a fencing token)
-- | 'claim' (stream entry `token` pending for `consumer` in `group` of stream `key`)
-- | 'lease' (as 'claim' with token '<entry id>@<ms>': also refused when the claim went
-- unrenewed for longer than <ms>). Returns {'fenced', reason} when it fails, else nil and
-- the claimed stream entry id (nil for '' and 'eq').
local function check_fence(key, mode, token, consumer, group)
  if mode == '' then return nil, nil end
  if mode == 'eq' then
    local held = redis.call('GET', key)
    if held ~= token then
      return {'fenced', 'lease is held by ' .. tostring(held)}, nil
    end
    return nil, nil
  end
  local id, ttl = token, nil
  if mode == 'lease' then
    id, ttl = string.match(token, '^(.+)@(%d+)$')
    if not id then return {'fenced', 'malformed lease token ' .. token}, nil end
  elseif mode ~= 'claim' then
    return {'fenced', 'unknown fence mode ' .. mode}, nil
  end
  local p = redis.call('XPENDING', key, group, id, id, 1)
  if #p == 0 then
    return {'fenced', 'claim ' .. id .. ' is no longer pending'}, nil
  end
  if p[1][2] ~= consumer then
    return {'fenced', 'claim ' .. id .. ' was taken over by ' .. p[1][2]}, nil
  end
  if ttl and p[1][3] > tonumber(ttl) then
    return {'fenced', 'claim ' .. id .. ' expired: unrenewed for ' .. p[1][3] .. ' ms'}, nil
  end
  return nil, id
end

