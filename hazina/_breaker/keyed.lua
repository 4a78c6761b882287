-- The policy-wide part of a keyed breaker on Redis: what applies to every key at once.
--
-- KEYS[1]: a hash: "g" the generation of the keys' states (reset() moves it on, so every
--          key starts fresh in O(1)), "f" "1" while forced open.
-- ARGV: mode ("read", "force", "reset"), ttl (ms).
-- Returns {generation, forced ("1"/"0")}.

local M = KEYS[1]
local mode = ARGV[1]
if mode == 'force' then
  redis.call('HSET', M, 'f', '1')
elseif mode == 'reset' then
  redis.call('HINCRBY', M, 'g', 1)
  redis.call('HDEL', M, 'f')
end
local f = redis.call('HMGET', M, 'g', 'f')
if f[1] or f[2] then
  redis.call('PEXPIRE', M, ARGV[2])
end
return {f[1] or '0', f[2] or '0'}
