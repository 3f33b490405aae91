-- reducers.lua: the server-side reducers of commit.lua (add, append, union, max, min) and the
-- msgpack reading they need. Loaded once at library level (functions.py), not per call.

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
