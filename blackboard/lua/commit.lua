-- commit.lua: one atomic commit of one or more entry operations on one board.
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
-- ARGV[6..8] fence arguments (token / entry id, consumer, group)
-- ARGV[9] writer id   ARGV[10] activation id that caused this commit ('' = none)
-- ARGV[11] number of operations n, then 6 arguments per operation:
--   kind ('p' put | 'd' delete | 'a' apply), expectation ('*' any | '0' absent | version),
--   entry key, meta blob (msgpack), value (msgpack; the argument for apply), reducer name
--
-- Returns one of
--   {'ok', revision, time_ms, {versions}, {new values of apply ops, '' for others}}
--   {'dup', stored result 'revision|time_ms|v1,v2,..'}   the idempotency key was used before
--   {'conflict', op index (1-based), actual version, current record or false, deleted 0/1}
--   {'fenced', reason}      {'reused'}      {'badop', op index, message}
--
-- A record (one field per version in the entry hash) is
--   '<revision>|<time_ms>|<kind>|<len(meta)>|' .. meta .. value

local idem = redis.call('GET', KEYS[4])
if idem then
  local sep = string.find(idem, '#', 1, true)
  local fp = string.sub(idem, sep + 1)
  if ARGV[1] ~= '' and fp ~= '' and fp ~= ARGV[1] then
    return {'reused'}
  end
  return {'dup', string.sub(idem, 1, sep - 1)}
end

local mode = ARGV[5]
if mode == 'eq' then
  local held = redis.call('GET', KEYS[5])
  if held ~= ARGV[6] then
    return {'fenced', 'lease is held by ' .. tostring(held)}
  end
elseif mode == 'claim' then
  local p = redis.call('XPENDING', KEYS[5], ARGV[8], ARGV[6], ARGV[6], 1)
  if #p == 0 then
    return {'fenced', 'claim ' .. ARGV[6] .. ' is no longer pending'}
  end
  if p[1][2] ~= ARGV[7] then
    return {'fenced', 'claim ' .. ARGV[6] .. ' was taken over by ' .. p[1][2]}
  end
end

local n = tonumber(ARGV[11])
local cur = {}
local deleted = {}
for i = 1, n do
  local base = 11 + (i - 1) * 6
  local key = KEYS[5 + i]
  local state = redis.call('HMGET', key, 'v', 'x')
  local v = tonumber(state[1]) or 0
  local x = state[2] == '1'
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
    ok = tonumber(expect) == v
  end
  if not ok then
    local rec = false
    if v > 0 then rec = redis.call('HGET', key, tostring(v)) end
    return {'conflict', i, v, rec, x and 1 or 0}
  end
end

local function reduce(op, curval, arg, i)
  if op == 'add' then
    if curval == nil then curval = 0 end
    if type(curval) ~= 'number' or type(arg) ~= 'number' then
      return nil, 'add needs numbers'
    end
    return curval + arg
  elseif op == 'max' or op == 'min' then
    if type(arg) ~= 'number' then return nil, op .. ' needs a number' end
    if curval == nil then return arg end
    if type(curval) ~= 'number' then return nil, op .. ' needs a number value' end
    if op == 'max' then return math.max(curval, arg) end
    return math.min(curval, arg)
  elseif op == 'append' then
    if curval == nil then curval = {} end
    if type(curval) ~= 'table' then return nil, 'append needs a list value' end
    curval[#curval + 1] = arg
    return curval
  elseif op == 'union' then
    if curval == nil then curval = {} end
    if type(curval) ~= 'table' or type(arg) ~= 'table' then
      return nil, 'union needs a list value and a list argument'
    end
    local seen = {}
    for _, item in ipairs(curval) do
      if type(item) == 'table' then return nil, 'union needs scalar items' end
      seen[item] = true
    end
    for _, item in ipairs(arg) do
      if type(item) == 'table' then return nil, 'union needs scalar items' end
      if not seen[item] then
        seen[item] = true
        curval[#curval + 1] = item
      end
    end
    return curval
  end
  return nil, 'unknown reducer ' .. tostring(op)
end

local values = {}
for i = 1, n do
  values[i] = ''
  local base = 11 + (i - 1) * 6
  if ARGV[base + 1] == 'a' then
    local curval = nil
    if cur[i] > 0 and not deleted[i] then
      local rec = redis.call('HGET', KEYS[5 + i], tostring(cur[i]))
      local p1 = string.find(rec, '|', 1, true)
      local p2 = string.find(rec, '|', p1 + 1, true)
      local p3 = string.find(rec, '|', p2 + 1, true)
      local p4 = string.find(rec, '|', p3 + 1, true)
      local mlen = tonumber(string.sub(rec, p3 + 1, p4 - 1))
      curval = cmsgpack.unpack(string.sub(rec, p4 + 1 + mlen))
    end
    local newval, err = reduce(ARGV[base + 6], curval, cmsgpack.unpack(ARGV[base + 5]), i)
    if err then return {'badop', i, err} end
    values[i] = cmsgpack.pack(newval)
  end
end

local rev = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[3])
local event = {'t', ts, 'w', ARGV[9], 'a', ARGV[10], 'n', n}
local versions = {}
for i = 1, n do
  local base = 11 + (i - 1) * 6
  local key = KEYS[5 + i]
  local kind = ARGV[base + 1]
  local entry_key = ARGV[base + 3]
  local meta = ARGV[base + 4]
  local value = ARGV[base + 5]
  if kind == 'a' then value = values[i] elseif kind == 'd' then value = '' end
  local v = cur[i] + 1
  versions[i] = v
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
  local s = tostring(i)
  event[#event + 1] = 'k' .. s
  event[#event + 1] = entry_key
  event[#event + 1] = 'v' .. s
  event[#event + 1] = v
  event[#event + 1] = 'o' .. s
  event[#event + 1] = kind
  event[#event + 1] = 'd' .. s
  event[#event + 1] = value
end

local cap = tonumber(ARGV[4])
if cap > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', cap, rev .. '-1', unpack(event))
else
  redis.call('XADD', KEYS[2], rev .. '-1', unpack(event))
end

if mode == 'claim' then
  redis.call('XACK', KEYS[5], ARGV[8], ARGV[6])
end

local result = rev .. '|' .. ts .. '|' .. table.concat(versions, ',')
redis.call('SET', KEYS[4], result .. '#' .. ARGV[1], 'EX', tonumber(ARGV[2]))
return {'ok', rev, ts, versions, values}
