-- merge.lua: the compactor's reconcile commit: write the merged value of an entry and remove
-- exactly the proposal versions it was computed from, in one atomic step.
--
-- All or nothing: if any of those proposals is no longer at the revision the merge read (its
-- proposer replaced it meanwhile), nothing is written and the caller decides again, so a
-- merged value is always computed from exactly the proposals it closes. Proposals that are
-- not in the list (they arrived during the merge) stay open for the next round: none is lost.
-- Like every commit: one step of the revision and one change-log event '<revision>-1'
-- (kind 'm'), with two extra fields: 's' (strategy) and 'mp' (the merged proposals, a
-- msgpack array of [proposer, revision] pairs).
--
-- KEYS[1] board revision counter      KEYS[2] change log stream
-- KEYS[3] live-key index (zset)       KEYS[4] idempotency record
-- KEYS[5] fence key (the compactor lease; the revision key when unfenced)
-- KEYS[6] entry hash                  KEYS[7] proposals hash of the entry
-- KEYS[8] proposed index (zset)       KEYS[9] divergent index (zset)
--
-- ARGV[1] idempotency record TTL, seconds
-- ARGV[2] versions of history kept per entry (>= 1)
-- ARGV[3] approximate change-log length cap (0 = no cap)
-- ARGV[4] fence mode: '' none | 'eq' (GET fence == token; any other mode is refused,
--         check_lease_fence in preamble.lua)    ARGV[5] fence token
-- ARGV[6] writer id (the compactor)   ARGV[7] entry key
-- ARGV[8] expectation on the entry: '*' any | '0' absent or deleted | version
-- ARGV[9] meta blob (msgpack)         ARGV[10] merged value (msgpack)
-- ARGV[11] strategy name              ARGV[12] number of proposals n, then 3 per proposal:
--   proposer, revision of the proposal version read, msgpack of [proposer, revision]
--
-- Returns one of
--   {'ok', revision, time_ms, version, proposals merged, proposals still open, divergent 0/1}
--   {'dup', stored result 'revision|time_ms|version|merged'}
--   {'conflict', actual version}   the entry changed since the merge read it; nothing written
--   {'moved', proposer}            that proposer's proposal is no longer the version read;
--                                  nothing written
--   {'fenced', reason}             {'corrupt', reason}

local prefix, bad = board_prefix(KEYS[1], KEYS[2])
if not prefix then return {'corrupt', bad} end
if not valid_entry_key(ARGV[7]) or KEYS[6] ~= prefix .. 'e:' .. ARGV[7]
    or KEYS[7] ~= prefix .. 'p:' .. ARGV[7] then
  return {'corrupt', 'the entry and proposal keys do not belong to entry ' .. ARGV[7]}
end
local idem = redis.call('GET', KEYS[4])
if idem then
  return {'dup', idem}
end

local fenced = check_lease_fence(KEYS[5], ARGV[4], ARGV[5])
if fenced then return fenced end

local state = redis.call('HMGET', KEYS[6], 'v', 'x', 'lo')
local cur = tonumber(state[1]) or 0
local deleted = state[2] == '1'
local lo = tonumber(state[3])  -- the oldest retained version (write_version)
if cur == 0 and redis.call('EXISTS', KEYS[6]) == 1 then
  return {'corrupt', 'a hash without a version field is in the way'}
end
local live = cur > 0 and not deleted
local expect = ARGV[8]
if (expect == '0' and live) or (expect ~= '0' and expect ~= '*' and tonumber(expect) ~= cur) then
  return {'conflict', cur}
end

local n = tonumber(ARGV[12])
for i = 1, n do
  local base = 12 + (i - 1) * 3
  local rec = redis.call('HGET', KEYS[7], ARGV[base + 1])
  if not rec or rev_of_record(rec) ~= tonumber(ARGV[base + 2]) then
    return {'moved', ARGV[base + 1]}
  end
end
local merged = {}
for i = 1, n do
  merged[#merged + 1] = ARGV[12 + (i - 1) * 3 + 3]
end

local counter, why = read_counter(KEYS[1])
if not counter then return {'corrupt', why} end
if not type_ok(KEYS[3], 'zset') or not type_ok(KEYS[8], 'zset') or not type_ok(KEYS[9], 'zset') then
  return {'corrupt', 'an index of the board holds another type'}
end
local ts = now_ms()
local keep = tonumber(ARGV[2])
local meta = ARGV[9]
local value = ARGV[10]
local v = cur + 1
local count = #merged
local header
if count < 16 then
  header = string.char(0x90 + count)
else
  header = string.char(0xdc, math.floor(count / 256), count % 256)
end
local event = new_event(ts, ARGV[6], '', 1)
add_event_op(event, 1, ARGV[7], v, 'm', value)
event[#event + 1] = 's'
event[#event + 1] = ARGV[11]
event[#event + 1] = 'mp'
event[#event + 1] = header .. table.concat(merged)
-- the first write (see commit.lua): nothing is written when the log refuses it
local rev, xerr = take_revision(KEYS[1], KEYS[2], tonumber(ARGV[3]) or 0, counter, event)
if not rev then return {'corrupt', xerr} end
for i = 1, n do
  redis.call('HDEL', KEYS[7], ARGV[12 + (i - 1) * 3 + 1])
end

write_version(KEYS[6], v, lo, keep, rev, ts, 'm', meta, value)
index_write(KEYS[3], ARGV[7], 'm', live)

local left = redis.call('HVALS', KEYS[7])
local divergent = 0
if #left == 0 then
  redis.call('ZREM', KEYS[8], ARGV[7])
  redis.call('ZREM', KEYS[9], ARGV[7])
elseif proposals_diverge(left) then
  divergent = 1
  local score = redis.call('ZSCORE', KEYS[8], ARGV[7]) or rev
  redis.call('ZADD', KEYS[9], score, ARGV[7])
else
  redis.call('ZREM', KEYS[9], ARGV[7])
end

local result = rev .. '|' .. ts .. '|' .. v .. '|' .. count
remember(KEYS[4], result, ARGV[1])
return {'ok', rev, ts, v, count, #left, divergent}
