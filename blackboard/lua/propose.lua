-- propose.lua: record one proposer's proposal for an entry; never conflicts.
--
-- A proposal replaces the same proposer's earlier one. The commit takes a board revision and
-- appends one change-log event of kind 'q' (propose) like any commit, so revisions stay
-- contiguous. The entry itself is not written; its version is only read.
--
-- KEYS[1] board revision counter      KEYS[2] change log stream
-- KEYS[3] idempotency record          KEYS[4] fence key (the revision key when unfenced)
-- KEYS[5] entry hash (read only)      KEYS[6] proposals hash of the entry
-- KEYS[7] proposed index (zset)       KEYS[8] divergent index (zset)
--
-- ARGV[1] request fingerprint ('' = do not compare on replay)
-- ARGV[2] idempotency record TTL, seconds
-- ARGV[3] approximate change-log length cap (0 = no cap)
-- ARGV[4] fence mode: '' | 'eq' | 'claim' | 'lease', as in commit.lua (check_fence() in
--         preamble.lua, which scripts.py prepends); checked here, never acknowledged
-- ARGV[5..7] fence arguments
-- ARGV[8] proposer (the writer id)    ARGV[9] activation id ('' = none)
-- ARGV[10] entry key                  ARGV[11] confidence ('' = none)
-- ARGV[12] meta blob (msgpack)        ARGV[13] value (msgpack)
-- ARGV[14] log payload prefix: msgpack map header and the proposer and confidence pairs and
--          the key "value"; the event's d1 is this prefix followed by the value
--
-- Returns one of
--   {'ok', revision, time_ms, base version, divergent 0/1}
--   {'dup', stored result 'revision|time_ms|base version'}
--   {'fenced', reason}      {'reused'}
--
-- A proposal record (one field per proposer in the proposals hash) is
--   '<revision>|<time_ms>|<confidence>|<base version>|<len(meta)>|' .. meta .. value

local replayed = replay(KEYS[3], ARGV[1])
if replayed then return replayed end

local fenced = check_fence(KEYS[4], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if fenced then return fenced end

local base = tonumber(redis.call('HGET', KEYS[5], 'v')) or 0
local rev = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local meta = ARGV[12]
local value = ARGV[13]
local rec = rev .. '|' .. ts .. '|' .. ARGV[11] .. '|' .. base .. '|' .. #meta .. '|' .. meta .. value
redis.call('HSET', KEYS[6], ARGV[8], rec)

-- the value part of a proposal record
local function value_of(r)
  local p = 0
  for _ = 1, 4 do p = string.find(r, '|', p + 1, true) end
  local p5 = string.find(r, '|', p + 1, true)
  local mlen = tonumber(string.sub(r, p + 1, p5 - 1))
  return string.sub(r, p5 + 1 + mlen)
end

-- divergent when two proposals differ (by encoding: equal bytes are equal values; values
-- that differ only in encoding are settled by the compactor, which compares decoded values)
local divergent = 0
local all = redis.call('HVALS', KEYS[6])
for i = 1, #all do
  local other = all[i]
  if #all > 1 and value_of(other) ~= value then
    divergent = 1
    break
  end
end
redis.call('ZADD', KEYS[7], rev, ARGV[10])
if divergent == 1 then
  redis.call('ZADD', KEYS[8], rev, ARGV[10])
else
  redis.call('ZREM', KEYS[8], ARGV[10])
end

local event = {'t', ts, 'w', ARGV[8], 'a', ARGV[9], 'n', 1,
  'k1', ARGV[10], 'v1', base, 'o1', 'q', 'd1', ARGV[14] .. value}
local cap = tonumber(ARGV[3])
if cap > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', cap, rev .. '-1', unpack(event))
else
  redis.call('XADD', KEYS[2], rev .. '-1', unpack(event))
end

local result = rev .. '|' .. ts .. '|' .. base
redis.call('SET', KEYS[3], result .. '#' .. ARGV[1], 'EX', tonumber(ARGV[2]))
return {'ok', rev, ts, base, divergent}
