-- commit.lua: one atomic commit of one or more entry operations on one board.
-- (scripts.py prepends preamble.lua: replay() and check_fence().)
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
--   '<revision>|<time_ms>|<kind>|<len(meta)>|' .. meta .. value

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
for i = 1, n do
  local base = 11 + (i - 1) * 6
  local key = KEYS[5 + i]
  local state = redis.pcall('HMGET', key, 'v', 'x')
  if state.err then return {'corrupt', i, 'a Redis key of another type is in the way'} end
  local v = tonumber(state[1]) or 0
  local x = state[2] == '1'
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

-- Reducers work on msgpack bytes. Lists are spliced as bytes, so every item (nil, an empty
-- map, bytes, a big integer) stays exactly as the client encoded it: a Lua table can neither
-- tell a list from a map nor hold nil, and cmsgpack decodes neither bin nor ext. List items
-- compare by their encoding. Numbers are decoded only after their type byte says number.
local function list_header(s)  -- item count and header length of a msgpack array, or nil
  local b = string.byte(s, 1)
  if not b then return nil end
  if b >= 0x90 and b <= 0x9f then return b - 0x90, 1 end
  if b == 0xdc and #s >= 3 then return string.byte(s, 2) * 256 + string.byte(s, 3), 3 end
  if b == 0xdd and #s >= 5 then
    local b2, b3, b4, b5 = string.byte(s, 2, 5)
    return ((b2 * 256 + b3) * 256 + b4) * 256 + b5, 5
  end
  return nil
end

local function pack_list_header(count)
  if count < 16 then return string.char(0x90 + count) end
  if count < 65536 then return string.char(0xdc, math.floor(count / 256), count % 256) end
  return string.char(0xdd, math.floor(count / 16777216) % 256, math.floor(count / 65536) % 256,
    math.floor(count / 256) % 256, count % 256)
end

-- big-endian unsigned integer of `n` bytes after 0-based offset `at` of `s`
local function uint_at(s, at, n)
  local v = 0
  for k = 1, n do
    local c = string.byte(s, at + k)
    if not c then error('truncated') end
    v = v * 256 + c
  end
  return v
end

-- sizes after the type byte: fixed, or {length bytes, extra} for str/bin/ext
local FIXED = {[0xc0] = 0, [0xc2] = 0, [0xc3] = 0, [0xca] = 4, [0xcb] = 8, [0xcc] = 1,
  [0xcd] = 2, [0xce] = 4, [0xcf] = 8, [0xd0] = 1, [0xd1] = 2, [0xd2] = 4, [0xd3] = 8,
  [0xd4] = 2, [0xd5] = 3, [0xd6] = 5, [0xd7] = 9, [0xd8] = 17}
local SIZED = {[0xc4] = {1, 0}, [0xc5] = {2, 0}, [0xc6] = {4, 0}, [0xc7] = {1, 1},
  [0xc8] = {2, 1}, [0xc9] = {4, 1}, [0xd9] = {1, 0}, [0xda] = {2, 0}, [0xdb] = {4, 0}}

-- the 0-based end offset of the msgpack object at 0-based offset `off` of `s`, and whether
-- it is a list or map; raises on a bad type byte (the caller checks the end against #s)
local function skip(s, off)
  local b = string.byte(s, off + 1)
  if not b then error('truncated') end
  if b <= 0x7f or b >= 0xe0 then return off + 1, false end
  if b >= 0xa0 and b <= 0xbf then return off + 1 + b - 0xa0, false end
  if FIXED[b] then return off + 1 + FIXED[b], false end
  local sized = SIZED[b]
  if sized then return off + 1 + sized[1] + sized[2] + uint_at(s, off + 1, sized[1]), false end
  local count
  if b >= 0x90 and b <= 0x9f then count, off = b - 0x90, off + 1
  elseif b >= 0x80 and b <= 0x8f then count, off = 2 * (b - 0x80), off + 1
  elseif b == 0xdc then count, off = uint_at(s, off + 1, 2), off + 3
  elseif b == 0xdd then count, off = uint_at(s, off + 1, 4), off + 5
  elseif b == 0xde then count, off = 2 * uint_at(s, off + 1, 2), off + 3
  elseif b == 0xdf then count, off = 2 * uint_at(s, off + 1, 4), off + 5
  else error('bad type byte ' .. b) end
  for _ = 1, count do
    off = skip(s, off)
    if off > #s then error('truncated') end
  end
  return off, true
end

-- the items of msgpack array `s` as {encoded, is container} pairs; raises when malformed
local function list_items(s, count, off)
  local items = {}
  for k = 1, count do
    local nxt, container = skip(s, off)
    if nxt > #s then error('truncated') end
    items[k] = {string.sub(s, off + 1, nxt), container}
    off = nxt
  end
  if off ~= #s then error('bytes after the list') end
  return items
end

local EXACT = 2 ^ 53

-- the number in msgpack `s` and whether it is a float; or nil, why not, and true when `s`
-- is malformed. Integers from 2**53 up may not be exact in a Lua number: refused, not rounded.
local function number_of(s)
  local b = string.byte(s, 1) or 0xc1
  local float = b == 0xca or b == 0xcb
  if not (b <= 0x7f or b >= 0xe0 or float or (b >= 0xcc and b <= 0xd3)) then
    return nil, 'not a number'
  end
  local ok, v = pcall(cmsgpack.unpack, s)
  if not ok or type(v) ~= 'number' then return nil, 'not msgpack', true end
  if not float and (v >= EXACT or v <= -EXACT or (b == 0xcf and v < 0)) then
    return nil, 'an integer of 2**53 or more'
  end
  return v, float
end

-- the new value (msgpack) of reducer `op` on `cur` (msgpack; nil when absent) and `arg`
-- (msgpack); or nil, a message, and true when the stored value is at fault
local function reduce(op, cur, arg)
  if cur == '\192' then cur = nil end  -- a stored None counts as no value
  if cur and string.byte(cur, 1) == 0xc1 then return nil, 'the value is not msgpack', true end
  if op == 'add' or op == 'max' or op == 'min' then
    local a, afloat = number_of(arg)
    if a == nil then return nil, op .. ' needs a number argument, got ' .. afloat end
    local c, cfloat, bad = 0, false, nil
    if cur then
      c, cfloat, bad = number_of(cur)
      if c == nil then return nil, op .. ' needs a number value, the value is ' .. cfloat, bad end
    end
    if op == 'add' then
      local sum = c + a
      if afloat or cfloat then return '\203' .. struct.pack('>d', sum) end
      if sum >= EXACT or sum <= -EXACT then return nil, 'add: the sum is 2**53 or more' end
      return cmsgpack.pack(sum)
    end
    if not cur then return arg end
    if (op == 'max' and a > c) or (op == 'min' and a < c) then return arg end
    return cur
  elseif op == 'append' then
    if not cur then return pack_list_header(1) .. arg end
    local count, hlen = list_header(cur)
    if not count then return nil, 'append needs a list value' end
    return pack_list_header(count + 1) .. string.sub(cur, hlen + 1) .. arg
  elseif op == 'union' then
    local acount, ahlen = list_header(arg)
    local ccount, chlen = 0, 0
    if cur then ccount, chlen = list_header(cur) end
    if not acount or not ccount then
      return nil, 'union needs a list value and a list argument'
    end
    local citems = {}
    if cur then
      local ok, got = pcall(list_items, cur, ccount, chlen)
      if not ok then return nil, 'stored list is malformed (' .. tostring(got) .. ')', true end
      citems = got
    end
    local seen, out = {}, {}
    for _, item in ipairs(citems) do
      if item[2] then return nil, 'union needs scalar items' end
      seen[item[1]] = true
      out[#out + 1] = item[1]
    end
    for _, item in ipairs(list_items(arg, acount, ahlen)) do
      if item[2] then return nil, 'union needs scalar items' end
      if not seen[item[1]] then
        seen[item[1]] = true
        out[#out + 1] = item[1]
      end
    end
    return pack_list_header(#out) .. table.concat(out)
  end
  return nil, 'unknown reducer ' .. tostring(op)
end

-- the value bytes of op i's entry as stored, or nil and why they cannot be read
local function stored_value(i)
  local rec = redis.call('HGET', KEYS[5 + i], tostring(cur[i]))
  if not rec then return nil, 'missing record of version ' .. cur[i] end
  local _, stop, mlen = string.find(rec, '^%d+|%d+|%a|(%d+)|')
  if not stop or stop + tonumber(mlen) >= #rec then
    return nil, 'record of version ' .. cur[i] .. ' is malformed'
  end
  return string.sub(rec, stop + 1 + tonumber(mlen))
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
if not type_ok(KEYS[3], 'zset') then return {'corrupt', 0, 'the live-key index is not a sorted set'} end
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
local t = redis.call('TIME')
local ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[3])
local event = {'t', ts, 'w', ARGV[9], 'a', ARGV[10], 'n', n}
local versions = {}
for i = 1, n do
  local base = 11 + (i - 1) * 6
  local kind = ARGV[base + 1]
  local value = ARGV[base + 5]
  if kind == 'a' then value = values[i] elseif kind == 'd' then value = '' end
  local v = cur[i] + 1
  versions[i] = v
  local s = tostring(i)
  event[#event + 1] = 'k' .. s
  event[#event + 1] = ARGV[base + 3]
  event[#event + 1] = 'v' .. s
  event[#event + 1] = v
  event[#event + 1] = 'o' .. s
  event[#event + 1] = kind
  event[#event + 1] = 'd' .. s
  event[#event + 1] = value
end

-- The first write, and the only one that can still fail: nothing is written when it does. A
-- role user may XADD an event with a high id to the log (it needs XADD there); the commit
-- then takes the next revision after it, so the board stays writable, and every reader drops
-- the forged event (no record backs it).
local rev, xerr = append_event(KEYS[2], tonumber(ARGV[4]) or 0, counter + 1, event)
if not rev then return {'corrupt', 0, 'the change log refused the event: ' .. xerr} end
redis.call('INCRBY', KEYS[1], rev - counter)

for i = 1, n do
  local base = 11 + (i - 1) * 6
  local key = KEYS[5 + i]
  local kind = ARGV[base + 1]
  local entry_key = ARGV[base + 3]
  local meta = ARGV[base + 4]
  local value = ARGV[base + 5]
  if kind == 'a' then value = values[i] elseif kind == 'd' then value = '' end
  local v = versions[i]
  local rec = rev .. '|' .. ts .. '|' .. kind .. '|' .. #meta .. '|' .. meta .. value
  local lo = tonumber(redis.call('HGET', key, 'lo')) or v
  local newlo = lo
  if v - lo >= keep then
    newlo = v - keep + 1
    local stop = math.min(newlo - 1, lo + 1000)
    for old = lo, stop do redis.call('HDEL', key, tostring(old)) end
    newlo = stop + 1
  end
  redis.call('HSET', key, 'v', v, 'r', rev, 'lo', newlo, 'x', kind == 'd' and 1 or 0, tostring(v), rec)
  if kind == 'd' then
    redis.call('ZREM', KEYS[3], entry_key)
  elseif cur[i] == 0 or deleted[i] then
    redis.call('ZADD', KEYS[3], 0, entry_key)
  end
end

if claim_id then  -- 'claim' and 'lease' fences: this commit acknowledges the claim
  redis.call('XACK', KEYS[5], ARGV[8], claim_id)
end

local result = rev .. '|' .. ts .. '|' .. table.concat(versions, ',')
redis.call('SET', KEYS[4], result .. '#' .. ARGV[1], 'EX', tonumber(ARGV[2]))
return {'ok', rev, ts, versions, values}
