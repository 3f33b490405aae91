-- sweep_activations.lua: delete the records of activations that finished before a cutoff.
--
-- A record is finished when its state 's' is 'done' or 'failed' and it is no longer in the
-- open-activations hash; 't' is when it finished (unix ms, set by the controller). Records
-- still open, granted or claimed are never touched.
--
-- KEYS[1] fence key (the compactor lease)   KEYS[2] open-activations hash
-- KEYS[3..] activation record hashes
-- ARGV[1] fence mode '' | 'eq' (others refused)     ARGV[2] fence token     ARGV[3] cutoff, unix ms
-- ARGV[4..] the activation id of each record, in KEYS order
--
-- Returns {'ok', records deleted} or {'fenced', reason}.

local fenced = check_lease_fence(KEYS[1], ARGV[1], ARGV[2])
if fenced then return fenced end

local cutoff = tonumber(ARGV[3])
local cleared = 0
for i = 3, #KEYS do
  local id = ARGV[i + 1]
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    local st = redis.call('HMGET', KEYS[i], 's', 't')
    local t = tonumber(st[2])
    if (st[1] == 'done' or st[1] == 'failed') and t and t < cutoff then
      redis.call('DEL', KEYS[i])
      cleared = cleared + 1
    end
  end
end
return {'ok', cleared}
