-- grant.lua: one batch of controller decisions, written atomically and fenced by the
-- controller's lease: grants, refusals, completions and breaker state, plus the
-- acknowledgement of the log and outcome events they settle. All of it or nothing.
--
-- KEYS[1] controller lease    KEYS[2] change log    KEYS[3] outcome stream
-- KEYS[4] open activations hash    KEYS[5] controller state hash
-- KEYS[6..] keys of the operations, consumed in order (see below)
--
-- ARGV[1] fencing token    ARGV[2] group of the log and outcome streams
-- ARGV[3] decisions kept per entry    ARGV[4] decision list TTL, milliseconds
-- ARGV[5] operations: msgpack array of arrays, each one of
--   {'g', activation id, {queue fields...}, {record fields...}, open blob, decision blob}
--        keys: role queue, activation record, decision list of the entry.
--        Skipped (reported as '') when the record exists already: dedupe that outlives any
--        controller's memory.
--   {'r', decision blob}                       keys: decision list of the entry
--   {'d', activation id, {record fields...}}   keys: activation record (removes it from open;
--        the record then expires after ARGV[8] ms, 0 = kept)
--   {'t', min id}                              keys: role queue: XTRIM MINID ~ (entries below
--        the oldest activation still open are finished)
--   {'s', field, value}                        no keys: HSET controller state
-- ARGV[6] msgpack array of log event ids to acknowledge
-- ARGV[7] msgpack array of outcome event ids to acknowledge
-- ARGV[8] finished activation record TTL, milliseconds (0 = no expiry)
--
-- Returns {'fenced', token of the holder or ''} or {'ok', {queue entry id or '' per grant}}.

local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then
  return {'fenced', held or ''}
end

local cap = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local function decide(list, blob)
  redis.call('LPUSH', list, blob)
  redis.call('LTRIM', list, 0, cap - 1)
  redis.call('PEXPIRE', list, ttl)
end

local ops = cmsgpack.unpack(ARGV[5])
local k = 6
local granted = {}
for _, op in ipairs(ops) do
  local kind = op[1]
  if kind == 'g' then
    local queue, record, why = KEYS[k], KEYS[k + 1], KEYS[k + 2]
    k = k + 3
    if redis.call('EXISTS', record) == 1 then
      granted[#granted + 1] = ''
    else
      local id = redis.call('XADD', queue, '*', unpack(op[3]))
      redis.call('HSET', record, 'q', id, unpack(op[4]))
      redis.call('HSET', KEYS[4], op[2], op[5])
      decide(why, op[6])
      granted[#granted + 1] = id
    end
  elseif kind == 'r' then
    decide(KEYS[k], op[2])
    k = k + 1
  elseif kind == 'd' then
    local record = KEYS[k]
    k = k + 1
    redis.call('HDEL', KEYS[4], op[2])
    if redis.call('EXISTS', record) == 1 then
      redis.call('HSET', record, unpack(op[3]))
      if tonumber(ARGV[8]) > 0 then redis.call('PEXPIRE', record, ARGV[8]) end
    end
  elseif kind == 't' then
    redis.call('XTRIM', KEYS[k], 'MINID', '~', op[2])
    k = k + 1
  elseif kind == 's' then
    redis.call('HSET', KEYS[5], op[2], op[3])
  end
end

local acks = cmsgpack.unpack(ARGV[6])
if #acks > 0 then redis.call('XACK', KEYS[2], ARGV[2], unpack(acks)) end
acks = cmsgpack.unpack(ARGV[7])
if #acks > 0 then redis.call('XACK', KEYS[3], ARGV[2], unpack(acks)) end
return {'ok', granted}
