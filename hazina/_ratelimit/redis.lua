-- One rate-limit decision for one key, every limit of the policy at once.
--
-- KEYS[1]: the key's state (a hash: per limit i, "t<i>"/"s<i>" for the token bucket's
--          tokens and stamp, "g<i>" for GCRA's theoretical arrival time; "now", the
--          latest time any decision saw).
-- KEYS[1 + i]: for the sliding window, limit i's log (a list of "time cost" entries).
-- ARGV: mode ("admit", "wait" or "status"), now ("" for the server's TIME), cost,
--       max_wait ("" for no bound; only in "wait" mode), algorithm ("token_bucket",
--       "gcra", "sliding_window"), the number of limits n, then two numbers per limit:
--       token bucket: burst, tokens per second; gcra: burst, seconds per token;
--       sliding window: rate, window seconds.
-- Returns {code, wait}: code 1 admitted now, 2 reserved (run after wait seconds),
-- 0 refused (retry after wait seconds); in "status" mode a flat list of
-- remaining, next_token_in, full_in per limit. Numbers travel as strings: Redis would
-- truncate a Lua number to an integer.
--
-- The arithmetic is the in-memory meters' (hazina/_ratelimit/meters.py), term for term.

local TOLERANCE = 1e-7
local TOKEN_SLACK = 1e-9

local mode = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1e6
end
local state = KEYS[1]
-- Time never runs backwards for a key, whatever clock the caller brings.
local seen = tonumber(redis.call('HGET', state, 'now'))
if seen and seen > now then
  now = seen
end
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local algorithm = ARGV[5]
local n = tonumber(ARGV[6])

local function fmt(x)
  return string.format('%.17g', x)
end

-- Per-limit arithmetic. Each returns or takes the state as plain Lua values.

local function bucket_tokens(i, burst, per_second)
  local tokens = tonumber(redis.call('HGET', state, 't' .. i))
  if not tokens then
    return burst
  end
  local stamp = tonumber(redis.call('HGET', state, 's' .. i))
  tokens = tokens + (now - stamp) * per_second
  if tokens < burst then return tokens end
  return burst
end

local function gcra_tat(i)
  local tat = tonumber(redis.call('HGET', state, 'g' .. i))
  if tat and tat > now then return tat end
  return now
end

local function log_entries(i, window)
  -- The log without the calls that have left the window; returns times, costs, total.
  local log = KEYS[1 + i]
  local horizon = now - window + TOLERANCE
  local raw = redis.call('LRANGE', log, 0, -1)
  local times, costs, total, dropped = {}, {}, 0, 0
  for _, entry in ipairs(raw) do
    local space = string.find(entry, ' ', 1, true)
    local at = tonumber(string.sub(entry, 1, space - 1))
    local taken = tonumber(string.sub(entry, space + 1))
    if at <= horizon and #times == 0 then
      dropped = dropped + 1
    else
      times[#times + 1] = at
      costs[#costs + 1] = taken
      total = total + taken
    end
  end
  if dropped > 0 and mode ~= 'status' then
    redis.call('LTRIM', log, dropped, -1)
  end
  return times, costs, total
end

local function wait_of(i, a, b, c)
  if algorithm == 'token_bucket' then
    local missing = c - bucket_tokens(i, a, b)
    if missing <= b * TOLERANCE then return 0 end
    return missing / b
  elseif algorithm == 'gcra' then
    local late = gcra_tat(i) + c * b - a * b - now
    if late > TOLERANCE then return late end
    return 0
  else
    local times, costs, total = log_entries(i, b)
    local start = now
    if #times > 0 and times[#times] > now then start = times[#times] end
    local excess = total + c - a
    if excess <= TOKEN_SLACK then return start - now end
    local freed = 0
    for k = 1, #times do
      freed = freed + costs[k]
      if freed >= excess - TOKEN_SLACK then
        local at = times[k] + b
        if start > at then at = start end
        return at - now
      end
    end
    return 0
  end
end

local function take(i, a, b, at)
  if algorithm == 'token_bucket' then
    redis.call('HSET', state, 't' .. i, fmt(bucket_tokens(i, a, b) - cost), 's' .. i, fmt(now))
  elseif algorithm == 'gcra' then
    redis.call('HSET', state, 'g' .. i, fmt(gcra_tat(i) + cost * b))
  else
    redis.call('RPUSH', KEYS[1 + i], fmt(at) .. ' ' .. fmt(cost))
  end
end

local function full_in(i, a, b)
  if algorithm == 'token_bucket' then
    local left = (a - bucket_tokens(i, a, b)) / b
    if left > 0 then return left end
    return 0
  elseif algorithm == 'gcra' then
    return gcra_tat(i) - now
  else
    local times = log_entries(i, b)
    if #times == 0 then return 0 end
    local left = times[#times] + b - now
    if left > 0 then return left end
    return 0
  end
end

local function remaining(i, a, b)
  local left
  if algorithm == 'token_bucket' then
    left = bucket_tokens(i, a, b)
  elseif algorithm == 'gcra' then
    left = a - (gcra_tat(i) - now) / b
  else
    local _, _, total = log_entries(i, b)
    left = a - total
  end
  if left > 0 then return left end
  return 0
end

if mode == 'status' then
  local out = {}
  for i = 1, n do
    local a, b = tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i])
    out[#out + 1] = fmt(remaining(i, a, b))
    out[#out + 1] = fmt(wait_of(i, a, b, cost))
    out[#out + 1] = fmt(full_in(i, a, b))
  end
  return out
end

-- Every limit is asked before any is charged: a refusal takes from none.
local wait = 0
for i = 1, n do
  local needed = wait_of(i, tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i]), cost)
  if needed > wait then wait = needed end
end

local code = 1
if wait > 0 then
  if mode ~= 'wait' or (max_wait and wait > max_wait + TOLERANCE) then
    return {0, fmt(wait)}
  end
  code = 2
end

-- Taken now, even for a call that runs later, so whoever comes next queues behind it.
local longest = 0
for i = 1, n do
  local a, b = tonumber(ARGV[5 + 2 * i]), tonumber(ARGV[6 + 2 * i])
  take(i, a, b, now + wait)
  local left = full_in(i, a, b)
  if left > longest then longest = left end
end
redis.call('HSET', state, 'now', fmt(now))
-- Forgotten once it would read full again: nothing is lost, and no key lives forever.
local ttl = math.floor(longest * 1000) + 1000
redis.call('PEXPIRE', state, ttl)
if algorithm == 'sliding_window' then
  for i = 1, n do
    redis.call('PEXPIRE', KEYS[1 + i], ttl)
  end
end
return {code, fmt(wait)}
