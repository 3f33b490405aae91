-- preamble.lua: the helpers the library's functions share, defined once at library level
-- (functions.py puts this text before every function of the library). A step that more than
-- one function takes lives here and only here: the fence checks, the idempotency record, the
-- server clock, entry and proposal records, change-log events and taking a revision, writing
-- a version with its history trim, the live-key index. A new fence mode, a record format or
-- a history rule then changes in one place and reaches every function that uses it.

-- The stored reply of a commit that used this idempotency key, or nil.
-- `stored` is 'result#fingerprint'; a different non-empty fingerprint means the key came
-- back with another request.
-- A record that is not in that form (written by hand: a role user may SET its own records)
-- is refused as corrupt rather than replayed.
local function replay(idem_key, fingerprint)
  local stored = redis.pcall('GET', idem_key)
  if type(stored) == 'table' then
    return {'corrupt', 0, 'idempotency record ' .. idem_key .. ' is not a string'}
  end
  if not stored then return nil end
  if not string.find(stored, '^%d+|%d+|[%d,]+#') then
    return {'corrupt', 0, 'idempotency record ' .. idem_key .. ' is malformed'}
  end
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

-- Check the fence of a function that only a lease guards (merge.lua, trim_*.lua,
-- sweep_activations.lua): mode '' or 'eq', as in check_fence. Any other mode is refused, not
-- ignored (a claim fence passed here would otherwise let the write through unfenced).
local function check_lease_fence(key, mode, token)
  if mode ~= '' and mode ~= 'eq' then
    return {'fenced', 'unknown fence mode ' .. mode .. ' (this function takes \'\' or \'eq\')'}
  end
  return (check_fence(key, mode, token))
end

-- Store a commit's reply under its idempotency key for `ttl` seconds (read back by replay).
local function remember(idem_key, stored, ttl)
  redis.call('SET', idem_key, stored, 'EX', tonumber(ttl))
end

-- The server's clock in unix milliseconds (one TIME call).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An entry record (one field per version in the entry hash):
--   '<revision>|<time_ms>|<kind>|<len(meta)>|' .. meta .. value
local function entry_record(rev, ts, kind, meta, value)
  return rev .. '|' .. ts .. '|' .. kind .. '|' .. #meta .. '|' .. meta .. value
end

-- The value bytes of an entry record, or nil when it is malformed.
local function entry_value(rec)
  local _, stop, mlen = string.find(rec, '^%d+|%d+|%a|(%d+)|')
  if not stop or stop + tonumber(mlen) >= #rec then return nil end
  return string.sub(rec, stop + 1 + tonumber(mlen))
end

-- A proposal record (one field per proposer in the proposals hash of an entry):
--   '<revision>|<time_ms>|<confidence>|<base version>|<len(meta)>|' .. meta .. value
local function proposal_record(rev, ts, confidence, base, meta, value)
  return rev .. '|' .. ts .. '|' .. confidence .. '|' .. base .. '|' .. #meta .. '|' .. meta .. value
end

-- The value part of a proposal record; a malformed record, written by hand, counts as its own
-- distinct value.
local function proposal_value(rec)
  local _, stop, mlen = string.find(rec, '^%d+|%d+|[^|]*|%d+|(%d+)|')
  if not stop then return rec end
  return string.sub(rec, stop + 1 + tonumber(mlen))
end

-- Whether proposal records hold different values: by encoding, equal bytes are equal values;
-- values that differ only in encoding are settled by the compactor, which compares decoded
-- values.
local function proposals_diverge(records)
  if #records < 2 then return false end
  local first = proposal_value(records[1])
  for i = 2, #records do
    if proposal_value(records[i]) ~= first then return true end
  end
  return false
end


-- The revision at the head of record or event text '<revision>|...', or nil.
local function rev_of_record(rec)
  return rec and tonumber(string.match(rec, '^(%d+)|'))
end

-- Whether log event `id` with `fields` (a table field -> value) is backed by the records it
-- names: readers drop an event that no record backs, because a role user may XADD to the log
-- directly (it needs XADD there to commit). A real event has id '<revision>-1' and every
-- operation's entry record at its version carries that revision; a proposal ('q') is backed
-- by the proposer's proposal record at that revision or later (a newer proposal replaced it,
-- or a merge took it in: the entry was written since). A version older than the entry's
-- retained history can only be checked against the oldest retained one: an event older than
-- it passes (documented in docs/security.md).
local function event_backed(prefix, id, fields)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  if not ms or seq ~= '1' then return false end
  local rev = tonumber(ms)
  local n = tonumber(fields['n'])
  if not n or n < 1 then return false end
  for i = 1, n do
    local s = tostring(i)
    local key, v, kind = fields['k' .. s], tonumber(fields['v' .. s]), fields['o' .. s]
    if not key or not v or not kind then return false end
    local ekey = prefix .. 'e:' .. key
    if kind == 'q' then
      local p = redis.pcall('HGET', prefix .. 'p:' .. key, fields['w'] or '')
      local prev = type(p) == 'string' and rev_of_record(p)
      if not (prev and prev >= rev) then
        local r = redis.pcall('HGET', ekey, 'r')
        if not (type(r) == 'string' and tonumber(r) and tonumber(r) > rev) then return false end
      end
    else
      -- the common case, a fresh event: the entry is still at that version, whose revision
      -- is in the small 'r' field (no copy of the record)
      local state = redis.pcall('HMGET', ekey, 'v', 'r')
      if type(state) == 'table' and not state.err and tonumber(state[1]) == v then
        if tonumber(state[2]) ~= rev then return false end
      else
        local rec = redis.pcall('HGET', ekey, tostring(v))
        if type(rec) == 'string' then
          if rev_of_record(rec) ~= rev then return false end
        else
          if type(rec) == 'table' then return false end  -- not a hash
          local lo = tonumber(redis.call('HGET', ekey, 'lo'))
          if not lo or v >= lo then return false end
          local lorev = rev_of_record(redis.call('HGET', ekey, tostring(lo)))
          if not lorev or lorev <= rev then return false end
        end
      end
    end
  end
  return true
end

-- '<ms>-<seq>' as two numbers (0, 0 when malformed)
local function stream_id(id)
  local ms, seq = string.match(id or '', '^(%d+)-(%d+)$')
  return tonumber(ms) or 0, tonumber(seq) or 0
end

-- Whether stream id `a` comes before `b`.
local function id_before(a, b)
  local ams, aseq = stream_id(a)
  local bms, bseq = stream_id(b)
  return ams < bms or (ams == bms and aseq < bseq)
end

-- The name and last-delivered id of one consumer group of an XINFO GROUPS reply.
local function group_info(g)
  local name, delivered
  for j = 1, #g, 2 do
    if g[j] == 'name' then name = g[j + 1] end
    if g[j] == 'last-delivered-id' then delivered = g[j + 1] end
  end
  return name, delivered
end

-- Whether an outcome reported for activation `act_id` is backed: the activation exists, and
-- its queue entry was delivered to an agent of its role and is no longer pending (finish.lua
-- acknowledges the claim and reports in one call). A forged outcome for an activation nobody
-- claimed yet, or one still being worked on, fails; a role can only acknowledge its own
-- queue, so it cannot settle another role's activation.
local function outcome_backed(prefix, act_id)
  local rec = redis.pcall('HMGET', prefix .. 'act:' .. act_id, 'role', 'q')
  if type(rec) ~= 'table' or rec.err or not rec[1] or not rec[2] then return false end
  local queue = prefix .. 'q:' .. rec[1]
  local p = redis.pcall('XPENDING', queue, 'agents', rec[2], rec[2], 1)
  if type(p) ~= 'table' or p.err or #p > 0 then return false end
  local groups = redis.pcall('XINFO', 'GROUPS', queue)
  if type(groups) ~= 'table' or groups.err then return false end
  for _, g in ipairs(groups) do
    local name, last = group_info(g)
    if name == 'agents' then return not id_before(last, rec[2]) end
  end
  return false
end

-- The board prefix 'bb:{B}:' of a revision counter key and the change log that must go with
-- it, or nil and why not: a caller cannot pair one board's counter with another's log.
local function board_prefix(rev_key, log_key)
  local prefix = string.match(rev_key, '^(bb:{[%w_%.%-]+}:)rev$')
  if not prefix then return nil, 'the revision key is not a board revision counter' end
  if log_key ~= prefix .. 'log' then return nil, 'the change log is not the board\'s' end
  return prefix
end

-- Whether `key` is a valid entry key (keys.py check_key, enforced in the server too).
local function valid_entry_key(key)
  return type(key) == 'string' and #key >= 1 and #key <= 512
    and string.find(key, '^[%w_%-%./:@=+,]+$') ~= nil
    and string.sub(key, 1, 1) ~= '/' and string.find(key, '//', 1, true) == nil
end

-- Whether a writer id is printable (it reaches terminals through the log and the TUI).
local function valid_writer(w)
  return type(w) == 'string' and #w >= 1 and #w <= 200 and string.find(w, '%c') == nil
end

-- The board's largest encoded value in bytes: `max_value_bytes` of the board's config hash
-- (written by the deployer), else 1 MiB. Enforced here, whatever a client asks for.
local function max_value_bytes(prefix)
  local v = redis.pcall('HGET', prefix .. 'config', 'max_value_bytes')
  return (type(v) == 'string' and tonumber(v)) or 1048576
end

-- The revision counter's value, or nil and why it is unusable.
local function read_counter(rev_key)
  local raw = redis.pcall('GET', rev_key)
  if type(raw) == 'table' then return nil, 'the revision counter is not a string' end
  if not raw then return 0 end
  local counter = tonumber(raw)
  if not counter or counter < 0 or counter % 1 ~= 0 then
    return nil, 'the revision counter holds ' .. raw
  end
  return counter
end

-- Append `event` (a flat field/value list) to the log as revision `rev`, the first write of a
-- commit. When a forged event holds a higher id, the next revision after it is taken. Returns
-- the revision used, or nil and why (then nothing was written).
local function append_event(log_key, cap, rev, event)
  local function xadd(r)
    if cap > 0 then
      return redis.pcall('XADD', log_key, 'MAXLEN', '~', cap, r .. '-1', unpack(event))
    end
    return redis.pcall('XADD', log_key, r .. '-1', unpack(event))
  end
  local res = xadd(rev)
  if type(res) == 'table' and res.err then
    if not string.find(res.err, 'equal or smaller', 1, true) then return nil, res.err end
    local top = redis.call('XREVRANGE', log_key, '+', '-', 'COUNT', 1)
    local last = 0
    if #top > 0 then last = stream_id(top[1][1]) end
    if last < rev then return nil, 'the log\'s last id is above its last event: ' .. res.err end
    rev = last + 1
    res = xadd(rev)
    if type(res) == 'table' and res.err then return nil, res.err end
  end
  return rev
end

-- A change-log event's head: time, writer, activation id ('' = none), number of operations.
-- add_event_op appends each operation; fields of the event's kind ('tp', 's', 'mp') go where
-- the caller puts them.
local function new_event(ts, writer, activation, n)
  return {'t', ts, 'w', writer, 'a', activation, 'n', n}
end

-- Append operation `i` to an event: entry key, version written (or read, for 'q'), kind and
-- payload ('k<i>', 'v<i>', 'o<i>', 'd<i>').
local function add_event_op(event, i, entry_key, version, kind, data)
  local s = tostring(i)
  local m = #event
  event[m + 1] = 'k' .. s
  event[m + 2] = entry_key
  event[m + 3] = 'v' .. s
  event[m + 4] = version
  event[m + 5] = 'o' .. s
  event[m + 6] = kind
  event[m + 7] = 'd' .. s
  event[m + 8] = data
end

-- Take the board's next revision for a commit: append `event` to the log (append_event, the
-- first write) and move the counter, read by read_counter as `counter`, up to it. Returns the
-- revision, or nil and why (then nothing was written).
local function take_revision(rev_key, log_key, cap, counter, event)
  local rev, err = append_event(log_key, cap, counter + 1, event)
  if not rev then return nil, 'the change log refused the event: ' .. err end
  redis.call('INCRBY', rev_key, rev - counter)
  return rev
end

-- Write version `v` (kind 'p' put | 'd' delete | 'a' apply | 'm' merge) of the entry hash
-- `key` at revision `rev`, and trim its history to the last `keep` versions. `lo` is the
-- oldest version retained before this write (false or nil: none). At most 1001 old versions
-- go per write, so a lowered `keep` never blocks the server: later writes and trim_history
-- catch up. Returns the new oldest retained version.
local function write_version(key, v, lo, keep, rev, ts, kind, meta, value)
  lo = lo or v
  local newlo = lo
  if v - lo >= keep then
    newlo = v - keep + 1
    local stop = math.min(newlo - 1, lo + 1000)
    for old = lo, stop do redis.call('HDEL', key, tostring(old)) end
    newlo = stop + 1
  end
  redis.call('HSET', key, 'v', v, 'r', rev, 'lo', newlo, 'x', kind == 'd' and 1 or 0,
    tostring(v), entry_record(rev, ts, kind, meta, value))
  return newlo
end

-- Keep the live-key index (a zset of entry keys) in step with a write of `kind`: a delete
-- leaves it, a write to an entry that was not live (absent or deleted) joins it.
local function index_write(index_key, entry_key, kind, was_live)
  if kind == 'd' then
    redis.call('ZREM', index_key, entry_key)
  elseif not was_live then
    redis.call('ZADD', index_key, 0, entry_key)
  end
end

-- Whether `key` holds a `kind` ('zset', 'hash', ...) or nothing.
local function type_ok(key, kind)
  local t = redis.call('TYPE', key)
  t = t['ok'] or t
  return t == kind or t == 'none'
end

-- Whether the calling user may run this command on these arguments (Redis >= 7.0 checks ACL
-- inside functions too; asking first lets a commit refuse before its first write instead of
-- failing half-way). Servers without redis.acl_check_cmd (fakeredis) enforce no ACL.
local function may(...)
  if not redis.acl_check_cmd then return true end
  return redis.acl_check_cmd(...)
end
