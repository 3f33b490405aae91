-- log_check.lua: which of the log and outcome events a reader holds are forged.
--
-- KEYS[1] change log stream (names the board; nothing is read from it)
-- ARGV[1] number L of log events, then per log event: id, writer, n, and n triples
--         (entry key, version, kind); then per outcome event: id, activation id
--
-- Returns {forged log event ids, forged outcome event ids}.

local prefix = string.sub(KEYS[1], 1, #KEYS[1] - 3)
local at = 2
local forged_logs, forged_outcomes = {}, {}
for _ = 1, tonumber(ARGV[1]) do
  local id, n = ARGV[at], tonumber(ARGV[at + 2])
  local f = {w = ARGV[at + 1], n = ARGV[at + 2]}
  at = at + 3
  for i = 1, n do
    local s = tostring(i)
    f['k' .. s], f['v' .. s], f['o' .. s] = ARGV[at], ARGV[at + 1], ARGV[at + 2]
    at = at + 3
  end
  if not event_backed(prefix, id, f) then forged_logs[#forged_logs + 1] = id end
end
while at <= #ARGV do
  if not outcome_backed(prefix, ARGV[at + 1]) then
    forged_outcomes[#forged_outcomes + 1] = ARGV[at]
  end
  at = at + 2
end
return {forged_logs, forged_outcomes}
