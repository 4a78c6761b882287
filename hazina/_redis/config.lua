-- A policy's shared configuration: check it, adopt it, change it.
--
-- KEYS[1]: the policy's config key, a hash: "config" (the parameters that shape shared
--          state, as canonical JSON), "params" (JSON of the parameters a reconfigure
--          stored, from which every process rebuilds that configuration; "" when the
--          code of the process that created it did), "version" (grows with each change).
-- ARGV[1]: mode; ARGV[2]: a configuration (canonical JSON); ARGV[3]: the key's time to
--          live in milliseconds (renewed by every round trip of this script);
--          ARGV[4]: params ("" for a code configuration); ARGV[5]: a version.
--   "create": store ARGV's configuration if none is, or if ARGV's comes from a
--             configuration (params given) and differs; answer the stored one.
--   "check":  answer {version} if the stored version is ARGV[5] and the stored
--             configuration and params are ARGV's, else the stored configuration; if
--             none is (it expired or was deleted), store ARGV's. Versions start again
--             at 1 after the key is lost, so a version alone may name another change.
--   "store":  store ARGV's configuration and params as a new version; answer it.
-- Answers {version, config, params}, or {version} from "check" when nothing changed.
local key, mode, ttl = KEYS[1], ARGV[1], ARGV[3]
local stored = redis.call('HMGET', key, 'version', 'config', 'params')
local version = tonumber(stored[1])

if mode == 'check' and version then
  redis.call('PEXPIRE', key, ttl)
  if stored[1] == ARGV[5] and stored[2] == ARGV[2] and stored[3] == ARGV[4] then
    return {version}
  end
  return {version, stored[2], stored[3]}
end

local changed = ARGV[2] ~= stored[2] or ARGV[4] ~= stored[3]
if not version or (mode == 'store' and changed) or (mode == 'create' and ARGV[4] ~= '' and changed) then
  version = (version or 0) + 1
  redis.call('HSET', key, 'version', version, 'config', ARGV[2], 'params', ARGV[4])
  stored[2], stored[3] = ARGV[2], ARGV[4]
end
redis.call('PEXPIRE', key, ttl)
return {version, stored[2], stored[3]}
