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
--   {'y', activation id, due ms, next attempt, last error, decision blob}
--        keys: activation record, retry schedule (zset), decision list of the entry: a
--        failed attempt that will run again at `due ms` (the activation stays open)
--   {'q', activation id[, attempt]}            keys: role queue, activation record, retry
--        schedule: run it again now: a new queue entry, a copy of the last one with the
--        record's attempt number 'n' (rebuilt from the record, without the value, when the
--        entry was trimmed: the agent then reads the granted version); reported as the new
--        entry id, '' when the record is gone
--   {'x', activation id, ms}                   keys: dead-letter index (zset)
--   {'z', activation id}                       keys: retry schedule, dead-letter index:
--        forget it in both (cancelled, or retried by hand)
--   {'o', activation id, open blob}            no keys: open again (a dead letter retried)
-- ARGV[6] msgpack array of log event ids to acknowledge
-- ARGV[7] msgpack array of outcome event ids to acknowledge
-- ARGV[8] finished activation record TTL, milliseconds (0 = no expiry)
--
-- Returns {'fenced', token of the holder or ''} or
--   {'ok', {queue entry id or '' per grant}, {queue entry id or '' per 'q' op}}.

local held = redis.call('GET', KEYS[1])
if held ~= ARGV[1] then
  return {'fenced', held or ''}
end

local cap = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local function decide(list, blob)
  -- LTRIM only when the push went over the cap: one call fewer for most decisions
  if redis.call('LPUSH', list, blob) > cap then redis.call('LTRIM', list, 0, cap - 1) end
  redis.call('PEXPIRE', list, ttl)
end

local ops = cmsgpack.unpack(ARGV[5])
local k = 6
local granted = {}
local requeued = {}
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
  elseif kind == 'y' then
    local record, schedule, why = KEYS[k], KEYS[k + 1], KEYS[k + 2]
    k = k + 3
    redis.call('ZADD', schedule, op[3], op[2])
    if redis.call('EXISTS', record) == 1 then
      redis.call('HSET', record, 's', 'retrying', 'n', op[4], 'due', op[3], 'o', op[5])
    end
    decide(why, op[6])
  elseif kind == 'q' then
    local queue, record, schedule = KEYS[k], KEYS[k + 1], KEYS[k + 2]
    k = k + 3
    redis.call('ZREM', schedule, op[2])
    if op[3] and redis.call('EXISTS', record) == 1 then redis.call('HSET', record, 'n', op[3]) end
    local rec = redis.call('HMGET', record, 'q', 'n')
    local id = ''
    if rec[1] then
      local attempt = rec[2] or '2'
      local old = redis.call('XRANGE', queue, rec[1], rec[1])
      local fields = {}
      if #old == 1 then
        for j = 1, #old[1][2], 2 do
          if old[1][2][j] ~= 'n' then
            fields[#fields + 1] = old[1][2][j]
            fields[#fields + 1] = old[1][2][j + 1]
          end
        end
      else
        local all = redis.call('HGETALL', record)
        local keep = {
          i = 1, k = 1, v = 1, r = 1, u = 1, p = 1, d = 1, l = 1, g = 1, e = 1, c = 1, tp = 1
        }
        for j = 1, #all, 2 do
          if keep[all[j]] then
            fields[#fields + 1] = all[j]
            fields[#fields + 1] = all[j + 1]
          end
        end
        fields[#fields + 1] = 'X'
        fields[#fields + 1] = '1'
      end
      fields[#fields + 1] = 'n'
      fields[#fields + 1] = attempt
      id = redis.call('XADD', queue, '*', unpack(fields))
      redis.call('HSET', record, 'q', id, 's', 'granted')
      redis.call('PERSIST', record)
    end
    requeued[#requeued + 1] = id
  elseif kind == 'x' then
    redis.call('ZADD', KEYS[k], op[3], op[2])
    k = k + 1
  elseif kind == 'z' then
    redis.call('ZREM', KEYS[k], op[2])
    redis.call('ZREM', KEYS[k + 1], op[2])
    k = k + 2
  elseif kind == 'o' then
    redis.call('HSET', KEYS[4], op[2], op[3])
  end
end

local acks = cmsgpack.unpack(ARGV[6])
if #acks > 0 then redis.call('XACK', KEYS[2], ARGV[2], unpack(acks)) end
acks = cmsgpack.unpack(ARGV[7])
if #acks > 0 then redis.call('XACK', KEYS[3], ARGV[2], unpack(acks)) end
return {'ok', granted, requeued}
