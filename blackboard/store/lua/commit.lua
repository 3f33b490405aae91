-- commit.lua: one atomic commit of one or more entry operations on one board.
-- (preamble.lua and reducers.lua are loaded at library level: replay(), check_fence(), reduce() ...)
--
-- KEYS[1] board revision counter      KEYS[2] change log stream
-- KEYS[3] live-key index (zset)       KEYS[4] idempotency record
-- KEYS[5] fence key (claim stream or lease string; the revision key when unfenced)
-- KEYS[6..5+n] entry hashes, one per operation, in operation order
--
-- ARGV[1] request fingerprint ('' = do not compare on replay)
-- ARGV[2] idempotency record TTL, seconds
-- ARGV[3] versions of history kept per entry (>= 1)
-- ARGV[4] approximate change-log length cap (0 = no cap)
-- ARGV[5] fence mode: '' none | 'eq' (GET fence == token)
--         | 'claim' (the stream entry ARGV[6] is pending for consumer ARGV[7] in group ARGV[8];
--           it is acknowledged by this same commit)
--         | 'lease' (as 'claim', with ARGV[6] = '<entry id>@<ms>': the claim must also have been
--           delivered or renewed within the last <ms>; an expired claim is refused even before
--           another consumer takes it over)
-- ARGV[6..8] fence arguments (token / entry id, consumer, group)
-- ARGV[9] writer id   ARGV[10] activation id that caused this commit ('' = none)
-- ARGV[11] number of operations n, then 6 arguments per operation:
--   kind ('p' put | 'd' delete | 'a' apply), expectation ('*' any | '0' absent | version),
--   entry key, meta blob (msgpack), value (msgpack; the argument for apply), reducer name
-- ARGV[12 + 6n] (optional) largest encoded value in bytes; checked on reducer results (the
--   client checks the values it sends itself)
-- ARGV[13 + 6n] (optional) W3C traceparent of the writer's span (telemetry), put on the log
--   event as 'tp' for the controller; anything but 55 characters is left out
--
-- Returns one of
--   {'ok', revision, time_ms, {versions}, {new values of apply ops, '' for others}}
--   {'dup', stored result 'revision|time_ms|v1,v2,..'}   the idempotency key was used before
--   {'conflict', op index (1-based), actual version, current record or false, deleted 0/1}
--   {'fenced', reason}      {'reused'}      {'badop', op index, message}
--   {'corrupt', op index, reason}   the Redis key of that entry holds no readable entry
--   {'denied', op index, reason}    the calling ACL user may not write it (0: a shared key)
-- (op index 0 in 'badop' / 'corrupt' / 'denied': the commit as a whole)
--
-- A record (one field per version in the entry hash) is
--   '<revision>|<time_ms>|<kind>|<len(meta)>|' .. meta .. value   (entry_record in preamble.lua)

-- Every Redis key is checked against the board's prefix and the entry keys it records, and
-- everything that can fail is checked before the first write (docs/security.md).
local prefix, bad_keys = board_prefix(KEYS[1], KEYS[2])
if not prefix then return {'badop', 0, bad_keys} end
if KEYS[3] ~= prefix .. 'index' then return {'badop', 0, 'the index is not the board\'s'} end
local n = tonumber(ARGV[11])
if not n or n < 1 or #KEYS ~= 5 + n or #ARGV < 11 + 6 * n then
  return {'badop', 0, 'malformed commit: wrong number of keys or arguments'}
end
if not valid_writer(ARGV[9]) then return {'badop', 0, 'writer id has control characters'} end
if string.find(KEYS[4], prefix .. 'idem:', 1, true) ~= 1 then
  return {'badop', 0, 'the idempotency record is not a key of this board'}
end
if KEYS[5] ~= KEYS[1] and string.find(KEYS[5], prefix, 1, true) ~= 1 then
  return {'badop', 0, 'the fence key is not a key of this board'}
end
for i = 1, n do
  local entry_key = ARGV[11 + (i - 1) * 6 + 3]
  if not valid_entry_key(entry_key) then return {'badop', i, 'invalid entry key'} end
  if KEYS[5 + i] ~= prefix .. 'e:' .. entry_key then
    return {'badop', i, 'the entry hash does not belong to the entry key it records'}
  end
end

local replayed = replay(KEYS[4], ARGV[1])
if replayed then return replayed end

local mode = ARGV[5]
local fenced, claim_id = check_fence(KEYS[5], mode, ARGV[6], ARGV[7], ARGV[8])
if fenced then return fenced end

-- largest encoded value: the board's configured limit, or the client's if it is lower
local limit = max_value_bytes(prefix)
local asked = tonumber(ARGV[12 + 6 * n]) or 0
if asked > 0 and asked < limit then limit = asked end
local cur = {}
local deleted = {}
local lo_of = {}  -- entry hash -> oldest retained version (false: none yet)
local touches_index = false  -- whether an operation adds or removes a live key
for i = 1, n do
  local base = 11 + (i - 1) * 6
  local key = KEYS[5 + i]
  local state = redis.pcall('HMGET', key, 'v', 'x', 'lo')
  if state.err then return {'corrupt', i, 'a Redis key of another type is in the way'} end
  local v = tonumber(state[1]) or 0
  local x = state[2] == '1'
  if lo_of[key] == nil then lo_of[key] = tonumber(state[3]) or false end
  if v == 0 and (state[1] or redis.call('EXISTS', key) == 1) then
    return {'corrupt', i, 'a hash without a version field is in the way'}
  end
  -- an entry touched twice in one commit sees its own earlier operation
  for j = 1, i - 1 do
    if KEYS[5 + j] == key then
      v = cur[j] + 1
      x = ARGV[11 + (j - 1) * 6 + 1] == 'd'
    end
  end
  cur[i] = v
  deleted[i] = x
  local kind = ARGV[base + 1]
  if kind == 'd' or v == 0 or x then touches_index = true end
  local expect = ARGV[base + 2]
  local live = v > 0 and not x
  local ok
  if expect == '*' then
    ok = (kind ~= 'd') or live
  elseif expect == '0' then
    ok = not live
  else
    -- deleting a tombstone conflicts, as a plain delete of a deleted entry does
    ok = tonumber(expect) == v and (kind ~= 'd' or live)
  end
  if not ok then
    local rec = false
    if v > 0 then rec = redis.call('HGET', key, tostring(v)) end
    return {'conflict', i, v, rec, x and 1 or 0}
  end
end

-- the value bytes of op i's entry as stored, or nil and why they cannot be read
local function stored_value(i)
  local rec = redis.call('HGET', KEYS[5 + i], tostring(cur[i]))
  if not rec then return nil, 'missing record of version ' .. cur[i] end
  local value = entry_value(rec)
  if not value then return nil, 'record of version ' .. cur[i] .. ' is malformed' end
  return value
end

local values = {}
local written = {}  -- entry key -> value an earlier op of this commit wrote (false: deleted)
for i = 1, n do
  values[i] = ''
  local base = 11 + (i - 1) * 6
  local key = KEYS[5 + i]
  local kind = ARGV[base + 1]
  if kind == 'a' then
    local curbytes = written[key]
    if curbytes == nil then
      curbytes = false
      if cur[i] > 0 and not deleted[i] then
        local why
        curbytes, why = stored_value(i)
        if not curbytes then return {'corrupt', i, why} end
      end
    end
    local arg = ARGV[base + 5]
    local whole, stop = pcall(skip, arg, 0)
    if not whole or stop ~= #arg then
      return {'badop', i, 'the reducer argument is not exactly one msgpack object'}
    end
    local newval, err, bad = reduce(ARGV[base + 6], curbytes or nil, arg)
    if not newval then return {bad and 'corrupt' or 'badop', i, err} end
    if #newval > limit then
      return {'badop', i, 'the result would be ' .. #newval .. ' bytes, over the limit of ' .. limit}
    end
    values[i] = newval
    written[key] = newval
  elseif kind == 'p' then
    if #ARGV[base + 5] > limit or #ARGV[base + 4] > limit then
      return {'badop', i, 'the value is ' .. #ARGV[base + 5] .. ' bytes, over the limit of ' .. limit}
    end
    written[key] = ARGV[base + 5]
  else
    written[key] = false
  end
end

-- Checked before any write: the shared keys' types and the revision counter.
local counter, why = read_counter(KEYS[1])
if not counter then return {'corrupt', 0, why} end
if touches_index and not type_ok(KEYS[3], 'zset') then
  return {'corrupt', 0, 'the live-key index is not a sorted set'}
end
for i = 1, n do
  if not may('HSET', KEYS[5 + i], 'v', '1') then
    return {'denied', i, 'this Redis user may not write this entry'}
  end
end
if not (may('XADD', KEYS[2], '1-1', 'k', 'v') and may('INCRBY', KEYS[1], '1')
    and may('ZADD', KEYS[3], '0', 'k') and may('SET', KEYS[4], 'v')) then
  return {'denied', 0, 'this Redis user may not commit on this board (log, revision, index '
    .. 'or its idempotency scope)'}
end
if claim_id and not may('XACK', KEYS[5], ARGV[8], claim_id) then
  return {'denied', 0, 'this Redis user may not settle claims of ' .. KEYS[5]}
end
local ts = now_ms()
local keep = tonumber(ARGV[3])
local event = new_event(ts, ARGV[9], ARGV[10], n)
local traceparent = ARGV[13 + 6 * n]
if traceparent and #traceparent == 55 then
  event[#event + 1] = 'tp'
  event[#event + 1] = traceparent
end
local versions = {}
for i = 1, n do
  local base = 11 + (i - 1) * 6
  local kind = ARGV[base + 1]
  local value = ARGV[base + 5]
  if kind == 'a' then value = values[i] elseif kind == 'd' then value = '' end
  versions[i] = cur[i] + 1
  add_event_op(event, i, ARGV[base + 3], versions[i], kind, value)
end

-- The first write, and the only one that can still fail: nothing is written when it does. A
-- role user may XADD an event with a high id to the log (it needs XADD there); the commit
-- then takes the next revision after it, so the board stays writable, and every reader drops
-- the forged event (no record backs it).
local rev, xerr = take_revision(KEYS[1], KEYS[2], tonumber(ARGV[4]) or 0, counter, event)
if not rev then return {'corrupt', 0, xerr} end

for i = 1, n do
  local base = 11 + (i - 1) * 6
  local key = KEYS[5 + i]
  local kind = ARGV[base + 1]
  local value = ARGV[base + 5]
  if kind == 'a' then value = values[i] elseif kind == 'd' then value = '' end
  lo_of[key] = write_version(key, versions[i], lo_of[key], keep, rev, ts, kind, ARGV[base + 4], value)
  index_write(KEYS[3], ARGV[base + 3], kind, cur[i] > 0 and not deleted[i])
end

if claim_id then  -- 'claim' and 'lease' fences: this commit acknowledges the claim
  redis.call('XACK', KEYS[5], ARGV[8], claim_id)
end

local result = rev .. '|' .. ts .. '|' .. table.concat(versions, ',')
remember(KEYS[4], result .. '#' .. ARGV[1], ARGV[2])
return {'ok', rev, ts, versions, values}
