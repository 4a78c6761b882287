-- One rate-limit decision for one key, every limit of the policy at once.
--
-- KEYS[1]: the key's state, one string of numbers: the time of the last decision that
--          took tokens (every bucket's stamp; time never runs backwards past it), then
--          per limit the token bucket's tokens or GCRA's theoretical arrival time. A
--          string, so one GET reads it and one SET PX writes it and its expiry.
-- KEYS[1 + i]: for the sliding window, limit i's log (a list of "time cost" entries).
-- ARGV: mode ("admit", "wait" or "status"), now ("" for the server's TIME), cost,
--       max_wait ("" for no bound; only in "wait" mode), algorithm ("token_bucket",
--       "gcra", "sliding_window"), the number of limits n, then two numbers per limit:
--       token bucket: burst, tokens per second; gcra: burst, seconds per token;
--       sliding window: rate, window seconds.
-- Returns 1 when admitted now (the common case, kept cheap to send and to read); else
-- {code, wait}: code 2 reserved (run after wait seconds), 0 refused (retry after wait
-- seconds). In "status" mode: remaining, next_token_in, full_in per limit.
-- Numbers travel as strings: Redis would truncate a Lua number to an integer.
--
-- The arithmetic is the in-memory meters' (hazina/_ratelimit/meters.py), term for term.
-- The state is read once and written once (with its expiry).

local TOLERANCE = 1e-7
local TOKEN_SLACK = 1e-9

local mode = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1e6
end
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local algorithm = ARGV[5]
local n = tonumber(ARGV[6])
local state = KEYS[1]
local bucket, gcra = algorithm == 'token_bucket', algorithm == 'gcra'

-- The usual decision written out: one limit, a bucket or a schedule, not a status read.
-- It is the general path below term for term, without its tables and closures, which
-- cost the server time on every call.
if n == 1 and mode ~= 'status' and (bucket or gcra) then
  local burst, per_token = tonumber(ARGV[7]), tonumber(ARGV[8])
  local raw = redis.call('GET', state)
  local seen, stored
  if raw then
    local space = string.find(raw, ' ', 1, true)
    seen = tonumber(string.sub(raw, 1, space - 1))
    stored = tonumber(string.sub(raw, space + 1))
    if seen > now then now = seen end
  end
  local wait, value, left = 0, 0, 0
  if bucket then
    -- per_token is tokens per second here.
    local tokens = burst
    if stored then
      tokens = stored + (now - seen) * per_token
      if tokens > burst then tokens = burst end
    end
    local missing = cost - tokens
    if missing > per_token * TOLERANCE then wait = missing / per_token end
    value = tokens - cost
    left = (burst - value) / per_token
  else
    -- per_token is seconds per token here.
    local tat = now
    if stored and stored > now then tat = stored end
    local late = tat + cost * per_token - burst * per_token - now
    if late > TOLERANCE then wait = late end
    value = tat + cost * per_token
    left = value - now
  end
  if wait > 0 and (mode ~= 'wait' or (max_wait and wait > max_wait + TOLERANCE)) then
    return {0, string.format('%.17g', wait)}
  end
  if left < 0 then left = 0 end
  redis.call('SET', state, string.format('%.17g %.17g', now, value), 'PX',
    math.floor(left * 1000) + 1000)
  if wait > 0 then
    return {2, string.format('%.17g', wait)}
  end
  return 1
end

local function fmt(x)
  return string.format('%.17g', x)
end

-- Read: the numbers in one GET; each sliding log once.
local stored = {}
local raw = redis.call('GET', state)
if raw then
  for number in string.gmatch(raw, '%S+') do
    stored[#stored + 1] = number
  end
end
-- Time never runs backwards for a key, whatever clock the caller brings.
local seen = tonumber(stored[1])
if seen and seen > now then
  now = seen
end

local a, b, value, logs, trimmed = {}, {}, {}, {}, {}
for i = 1, n do
  a[i], b[i] = tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i])
  if bucket then
    -- Tokens now: refilled since the stamp, never above the burst (a missing state is full).
    local tokens = tonumber(stored[1 + i])
    if tokens then
      tokens = tokens + (now - seen) * b[i]
      if tokens > a[i] then tokens = a[i] end
    else
      tokens = a[i]
    end
    value[i] = tokens
  elseif gcra then
    local tat = tonumber(stored[1 + i])
    if not tat or tat < now then tat = now end
    value[i] = tat
  else
    -- The log without the calls that have left the window.
    local horizon = now - b[i] + TOLERANCE
    local times, costs, total, dropped = {}, {}, 0, 0
    for _, entry in ipairs(redis.call('LRANGE', KEYS[1 + i], 0, -1)) do
      local space = string.find(entry, ' ', 1, true)
      local at = tonumber(string.sub(entry, 1, space - 1))
      if #times == 0 and at <= horizon then
        dropped = dropped + 1
      else
        local taken = tonumber(string.sub(entry, space + 1))
        times[#times + 1] = at
        costs[#costs + 1] = taken
        total = total + taken
      end
    end
    logs[i] = {times, costs}
    value[i] = total
    trimmed[i] = dropped
  end
end

local function wait_of(i, c)
  if bucket then
    local missing = c - value[i]
    if missing <= b[i] * TOLERANCE then return 0 end
    return missing / b[i]
  elseif gcra then
    local late = value[i] + c * b[i] - a[i] * b[i] - now
    if late > TOLERANCE then return late end
    return 0
  end
  local times, costs = logs[i][1], logs[i][2]
  local start = now
  if #times > 0 and times[#times] > now then start = times[#times] end
  local excess = value[i] + c - a[i]
  if excess <= TOKEN_SLACK then return start - now end
  local freed = 0
  for k = 1, #times do
    freed = freed + costs[k]
    if freed >= excess - TOKEN_SLACK then
      local at = times[k] + b[i]
      if start > at then at = start end
      return at - now
    end
  end
  return 0
end

local function full_in(i)
  local left
  if bucket then
    left = (a[i] - value[i]) / b[i]
  elseif gcra then
    left = value[i] - now
  else
    local times = logs[i][1]
    if #times == 0 then return 0 end
    left = times[#times] + b[i] - now
  end
  if left > 0 then return left end
  return 0
end

if mode == 'status' then
  local out = {}
  for i = 1, n do
    local left
    if bucket then
      left = value[i]
    elseif gcra then
      left = a[i] - (value[i] - now) / b[i]
    else
      left = a[i] - value[i]
    end
    if left < 0 then left = 0 end
    out[#out + 1] = fmt(left)
    out[#out + 1] = fmt(wait_of(i, cost))
    out[#out + 1] = fmt(full_in(i))
  end
  return out
end

-- Every limit is asked before any is charged: a refusal takes from none.
local wait = 0
for i = 1, n do
  local needed = wait_of(i, cost)
  if needed > wait then wait = needed end
end
if wait > 0 and (mode ~= 'wait' or (max_wait and wait > max_wait + TOLERANCE)) then
  return {0, fmt(wait)}
end

-- Taken now, even for a call that runs later, so whoever comes next queues behind it.
local writes = {fmt(now)}
local longest = 0
for i = 1, n do
  if bucket then
    value[i] = value[i] - cost
    writes[#writes + 1] = fmt(value[i])
  elseif gcra then
    value[i] = value[i] + cost * b[i]
    writes[#writes + 1] = fmt(value[i])
  else
    local log = KEYS[1 + i]
    if trimmed[i] > 0 then redis.call('LTRIM', log, trimmed[i], -1) end
    redis.call('RPUSH', log, fmt(now + wait) .. ' ' .. fmt(cost))
    local times = logs[i][1]
    times[#times + 1] = now + wait
  end
  local left = full_in(i)
  if left > longest then longest = left end
end
-- Forgotten once it would read full again: nothing is lost, and no key lives forever.
local ttl = math.floor(longest * 1000) + 1000
redis.call('SET', state, table.concat(writes, ' '), 'PX', ttl)
if not bucket and not gcra then
  for i = 1, n do
    redis.call('PEXPIRE', KEYS[1 + i], ttl)
  end
end
if wait > 0 then
  return {2, fmt(wait)}
end
return 1
