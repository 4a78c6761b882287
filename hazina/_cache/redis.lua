-- One operation on one cache entry (or on a cache's generation), atomically.
--
-- Entry keys share one hash tag (one slot): KEYS[1] the entry, a hash of
--   v: the serialized value, d: the deadline (when it stops being served), c: the cap
--   (the absolute expiry sliding never passes), s: the sliding duration ("" for none),
--   t: the latest time a write saw (time never runs backwards for an entry),
--   k: how long the entry is kept past its deadline for a failing load to fall back on
--   (stale_if_error; "0" for none), r: when a hit starts a refresh ("" for never);
-- KEYS[2] the lease: the token of the process loading the entry, or "~" .. token once
--   the entry was set or deleted during that load (the load must not store then).
-- Deadlines are checked against the script's time (ARGV[2], or TIME when ""), so a test
-- clock can move them; the Redis TTL only collects what has expired (deadline + k).
--
-- ARGV[1] is the operation:
--   get    ARGV: op, now -> {state, value}: state 1 hit, 0 miss, -1 expired (removed)
--   peek   as get, but never slides and never removes
--   lead   ARGV: op, now, token, lease_ms -> as get, and on a miss take the lease:
--          state 2 (taken by this caller) or 3 (held by another; value = ms left); a
--          hit past r takes the lease too if it is free, for one background refresh in
--          the fleet, and answers {1, value, 1} when it did
--   put    ARGV: op, now, token, value, ttl, at, sliding, keep, refresh_after -> 1
--          stored, 0 not: stores only if this caller's lease still holds, or if its
--          lease ran out and nobody stored a fresh entry or invalidated anything meanwhile
--   set    ARGV: as put, token "" -> 1 stored, 0 already expired
--   stale  ARGV: op, now -> {1, value} while the entry is kept (fresh or stale), else {0}
--   delete ARGV: op, now -> 1 if a fresh entry was removed
--   release ARGV: op, "", token: give up this caller's lease (its load failed)
--   postpone ARGV: op, now, token, seconds: give up this caller's refresh lease (the
--          refresh failed) and let the entry's next refresh wait that long
--   gen    KEYS[1] the generation key; ARGV: op, "", token, ttl_ms, "clear" or "" ->
--          the generation (the token, if there was none or "clear")

local op = ARGV[1]

local function fmt(x)
  return string.format('%.17g', x)
end

if op == 'gen' then
  local key, token, ttl = KEYS[1], ARGV[3], ARGV[4]
  if ARGV[5] ~= 'clear' then
    local current = redis.call('GET', key)
    if current then
      redis.call('PEXPIRE', key, ttl)
      return current
    end
  end
  redis.call('SET', key, token, 'PX', ttl)
  return token
end

local entry, lease = KEYS[1], KEYS[2]

if op == 'release' then
  local held = redis.call('GET', lease)
  if held == ARGV[3] or held == '~' .. ARGV[3] then
    redis.call('DEL', lease)
  end
  return 1
end

local now = tonumber(ARGV[2])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1e6
end

if op == 'postpone' then
  local held = redis.call('GET', lease)
  if held == ARGV[3] or held == '~' .. ARGV[3] then
    redis.call('DEL', lease)
  end
  if held == ARGV[3] and redis.call('HEXISTS', entry, 'r') == 1 then
    redis.call('HSET', entry, 'r', fmt(now + tonumber(ARGV[4])))
  end
  return 1
end

local function invalidate_load()
  local held = redis.call('GET', lease)
  if held and string.sub(held, 1, 1) ~= '~' then
    redis.call('SET', lease, '~' .. held, 'KEEPTTL')
  end
end

local function store(value, ttl, at, sliding, keep, refresh_after)
  local cap = math.huge
  if ttl then cap = now + ttl end
  if at and at < cap then cap = at end
  local deadline = cap
  if sliding and now + sliding < cap then deadline = now + sliding end
  local ms = math.ceil((deadline - now) * 1000)
  if deadline == math.huge or ms <= 0 then
    redis.call('DEL', entry)
    return 0
  end
  redis.call('DEL', entry)
  redis.call('HSET', entry, 'v', value, 'd', fmt(deadline), 'c', fmt(cap),
    's', sliding and fmt(sliding) or '', 't', fmt(now), 'k', fmt(keep),
    'r', refresh_after and fmt(now + refresh_after) or '')
  redis.call('PEXPIRE', entry, math.ceil((deadline + keep - now) * 1000))
  return 1
end

if op == 'put' or op == 'set' then
  local ttl, at, sliding = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local keep, refresh_after = tonumber(ARGV[8]) or 0, tonumber(ARGV[9])
  if op == 'set' then
    invalidate_load()
    return store(ARGV[4], ttl, at, sliding, keep, refresh_after)
  end
  local token = ARGV[3]
  local held = redis.call('GET', lease)
  if held == token then
    redis.call('DEL', lease)
    return store(ARGV[4], ttl, at, sliding, keep, refresh_after)
  end
  if held == '~' .. token then
    redis.call('DEL', lease)
    return 0
  end
  -- A stale entry kept for fallback does not count as stored by someone else.
  local stored = tonumber(redis.call('HGET', entry, 'd'))
  if held or (stored and stored > now) then
    return 0
  end
  return store(ARGV[4], ttl, at, sliding, keep, refresh_after)
end

local found = redis.call('HMGET', entry, 'v', 'd', 'c', 's', 't', 'k', 'r')
local value, deadline = found[1], tonumber(found[2])
local seen = tonumber(found[5])
if seen and seen > now then now = seen end
local keep = tonumber(found[6]) or 0

if op == 'stale' then
  if value and deadline + keep > now then return {1, value} end
  return {0, false}
end

if op == 'delete' then
  invalidate_load()
  redis.call('DEL', entry)
  if value and deadline > now then return 1 end
  return 0
end

local state = 0
if value then
  if deadline > now then
    local sliding = tonumber(found[4])
    if sliding and op ~= 'peek' then
      local cap = tonumber(found[3])
      deadline = now + sliding
      if deadline > cap then deadline = cap end
      redis.call('HSET', entry, 'd', fmt(deadline), 't', fmt(now))
      redis.call('PEXPIRE', entry, math.max(1, math.ceil((deadline + keep - now) * 1000)))
    end
    local refresh_at = tonumber(found[7])
    if op == 'lead' and refresh_at and refresh_at <= now
        and redis.call('SET', lease, ARGV[3], 'NX', 'PX', ARGV[4]) then
      return {1, value, 1}
    end
    return {1, value}
  end
  if op == 'peek' then return {0, false} end
  if deadline + keep <= now then
    redis.call('DEL', entry)
    state = -1
  end
end
if op ~= 'lead' then return {state, false} end

if redis.call('SET', lease, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {2, tostring(state)}
end
return {3, tostring(redis.call('PTTL', lease))}
