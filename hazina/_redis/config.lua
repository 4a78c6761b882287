-- Store a policy's shared configuration, or return the one stored if it differs.
-- KEYS[1]: the policy's config key. ARGV[1]: the configuration (canonical JSON);
-- ARGV[2]: its time to live in milliseconds (renewed by every process that creates it).
local stored = redis.call('GET', KEYS[1])
if stored and stored ~= ARGV[1] then
  return stored
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
