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
--         preamble.lua); checked here, never acknowledged
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
-- (proposal_record and proposal_value in preamble.lua)

local replayed = replay(KEYS[3], ARGV[1])
if replayed then return replayed end

local fenced = check_fence(KEYS[4], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if fenced then return fenced end

local prefix, bad = board_prefix(KEYS[1], KEYS[2])
if not prefix then return {'badop', 0, bad} end
if not valid_entry_key(ARGV[10]) or KEYS[5] ~= prefix .. 'e:' .. ARGV[10]
    or KEYS[6] ~= prefix .. 'p:' .. ARGV[10] or KEYS[7] ~= prefix .. 'proposed'
    or KEYS[8] ~= prefix .. 'divergent' or string.find(KEYS[3], prefix .. 'idem:', 1, true) ~= 1 then
  return {'badop', 0, 'the keys do not belong to entry ' .. tostring(ARGV[10]) .. ' of this board'}
end
if not valid_writer(ARGV[8]) then return {'badop', 0, 'proposer id has control characters'} end
if #ARGV[13] > max_value_bytes(prefix) then return {'badop', 0, 'the value is over the limit'} end

local base = redis.pcall('HGET', KEYS[5], 'v')
if type(base) == 'table' then return {'corrupt', 0, 'the entry is not a hash'} end
base = tonumber(base) or 0
local counter, why = read_counter(KEYS[1])
if not counter then return {'corrupt', 0, why} end
if not type_ok(KEYS[6], 'hash') or not type_ok(KEYS[7], 'zset') or not type_ok(KEYS[8], 'zset') then
  return {'corrupt', 0, 'a proposal key holds another type'}
end
if not (may('HSET', KEYS[6], 'p', 'r') and may('XADD', KEYS[2], '1-1', 'k', 'v')
    and may('INCRBY', KEYS[1], '1') and may('ZADD', KEYS[7], '0', 'k')
    and may('ZADD', KEYS[8], '0', 'k') and may('SET', KEYS[3], 'v')) then
  return {'denied', 0, 'this Redis user may not propose on this board'}
end
local ts = now_ms()
local value = ARGV[13]
local event = new_event(ts, ARGV[8], ARGV[9], 1)
add_event_op(event, 1, ARGV[10], base, 'q', ARGV[14] .. value)
-- the first write (see commit.lua): nothing is written when the log refuses it
local rev, xerr = take_revision(KEYS[1], KEYS[2], tonumber(ARGV[3]) or 0, counter, event)
if not rev then return {'corrupt', 0, xerr} end
redis.call('HSET', KEYS[6], ARGV[8], proposal_record(rev, ts, ARGV[11], base, ARGV[12], value))

-- divergent when two proposals differ (proposals_diverge in preamble.lua)
local divergent = 0
if proposals_diverge(redis.call('HVALS', KEYS[6])) then divergent = 1 end
redis.call('ZADD', KEYS[7], rev, ARGV[10])
if divergent == 1 then
  redis.call('ZADD', KEYS[8], rev, ARGV[10])
else
  redis.call('ZREM', KEYS[8], ARGV[10])
end

local result = rev .. '|' .. ts .. '|' .. base
remember(KEYS[3], result .. '#' .. ARGV[1], ARGV[2])
return {'ok', rev, ts, base, divergent}
