-- One circuit-breaker decision on the state a fleet shares.
--
-- KEYS[1]: the breaker's state (a hash): "st" state, "oa" when the open period began,
--          "ot" how long it lasts (grown by open_for_multiplier after failed probing),
--          "g" the half-open period's number (only ever grows), "pf" probes in flight,
--          "ps" successful probes, "hd" the half-open deadline (set by the first probe),
--          "run" consecutive failures, "n"/"cf"/"cs" calls, failures and slow calls in
--          the window, "ws" the window's shape, "now" the latest time any decision saw.
-- KEYS[2]: the window: for a count window a string of one byte per call slot ('0' + 1
--          for a failure + 2 for a slow call), written round-robin at n % size; for a
--          time window a list of "second calls failures slow" entries, oldest first.
-- ARGV: mode ("admit", "record", "read", "force", "reset"), now ("" for the server's
--       TIME), window ("count"/"time"), window_size, minimum_calls, failure_rate,
--       failure_threshold ("" for none), slow rule on ("1"/"0"), slow_call_rate,
--       open_for, half_open_max_calls, success_threshold, half_open_timeout, ttl (ms),
--       open_for_multiplier, max_open_for ("" failure_rate: no rate rule); "record" adds outcome (0 success, 1 failure, 2 ignored), slow ("1"/"0") and the
--       probe's period number ("" for a call admitted while closed).
-- Returns {state, retry_after, probe, admitted, failure_rate, slow_call_rate, then the
-- transitions this run made as old, new pairs}. retry_after is "" while closed or
-- forced open; probe "" unless a probe was admitted; the rates "" unless read and the
-- window holds minimum_calls. Numbers travel as strings: Redis truncates Lua numbers.
--
-- The rules are the in-memory breaker's (hazina/_breaker/policy.py), step for step.

-- A forced-open breaker outlives any idle period an operator would expect.
local FORCED_TTL = 7 * 24 * 3600 * 1000

local S, W = KEYS[1], KEYS[2]
local mode = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1e6
end
local window = ARGV[3]
local size = tonumber(ARGV[4])
local minimum = tonumber(ARGV[5])
local failure_rate = tonumber(ARGV[6])
local threshold = tonumber(ARGV[7])
local slow_rule = ARGV[8] == '1'
local slow_rate = tonumber(ARGV[9])
local open_for = tonumber(ARGV[10])
local max_probes = tonumber(ARGV[11])
local success_threshold = tonumber(ARGV[12])
local half_open_timeout = tonumber(ARGV[13])
local ttl = tonumber(ARGV[14])
local multiplier = tonumber(ARGV[15])
local max_open_for = tonumber(ARGV[16])
local shape = window .. ':' .. ARGV[4]

local f = redis.call('HMGET', S, 'st', 'oa', 'g', 'pf', 'ps', 'hd', 'now', 'run', 'n', 'cf',
  'cs', 'ws', 'ot')
-- Time never runs backwards for a breaker, whatever clock the caller brings.
local seen = tonumber(f[7])
if seen and seen > now then
  now = seen
end
local st = f[1] or 'closed'
local opened_at = tonumber(f[2]) or 0
local gen = tonumber(f[3]) or 0
local in_flight = tonumber(f[4]) or 0
local probe_successes = tonumber(f[5]) or 0
local deadline = tonumber(f[6])
local run = tonumber(f[8]) or 0
local n = tonumber(f[9]) or 0
local cf = tonumber(f[10]) or 0
local cs = tonumber(f[11]) or 0
-- The current open period's length; a breaker stored before it had one uses open_for.
local open_time = tonumber(f[13]) or open_for

local function fmt(x)
  return string.format('%.17g', x)
end

local function clear_window()
  n, cf, cs, run = 0, 0, 0, 0
  redis.call('DEL', W)
end

-- A new window shape (a reconfigured breaker) starts a fresh window, never misreads one.
if f[12] and f[12] ~= shape then
  clear_window()
end

local changes = {}

local function move(new, at)
  local old = st
  if new == 'open' then
    opened_at = at
    -- Reopening after failed probing: still down, so probe less often; a trip from
    -- closed starts over.
    if old == 'half_open' then
      open_time = math.min(open_time * multiplier, max_open_for)
    else
      open_time = open_for
    end
  elseif new == 'half_open' then
    gen = gen + 1
    in_flight, probe_successes, deadline = 0, 0, nil
  end
  if new ~= 'half_open' then
    -- Every period starts with an empty window and no run of failures.
    clear_window()
  end
  st = new
  if old ~= new then
    changes[#changes + 1] = old
    changes[#changes + 1] = new
  end
end

-- The transitions that time alone causes.
local function advance()
  if st == 'half_open' and deadline and now >= deadline then
    -- Found late or not, the new open period starts at the deadline.
    move('open', deadline)
  end
  if st == 'open' and now >= opened_at + open_time then
    move('half_open', now)
  end
end

local function parse(entry)
  local second, calls, failures, slow = string.match(entry, '^(%S+) (%S+) (%S+) (%S+)$')
  return tonumber(second), tonumber(calls), tonumber(failures), tonumber(slow)
end

-- Drop the time window's buckets that have left it (amortised O(1): each bucket once).
local function expire()
  local first_inside = math.floor(now) - size + 1
  while true do
    local head = redis.call('LINDEX', W, 0)
    if not head then
      -- Nothing left (or the list was evicted): the totals must agree.
      n, cf, cs = 0, 0, 0
      return
    end
    local second, calls, failures, slow = parse(head)
    if second >= first_inside then
      return
    end
    redis.call('LPOP', W)
    n, cf, cs = n - calls, cf - failures, cs - slow
  end
end

local function note(failure, slow)
  if window == 'count' then
    local slot = n % size
    if n >= size then
      local old = tonumber(redis.call('GETRANGE', W, slot, slot)) or 0
      cf = cf - old % 2
      cs = cs - math.floor(old / 2)
    end
    redis.call('SETRANGE', W, slot, tostring(failure + 2 * slow))
  else
    expire()
    local second = math.floor(now)
    local tail = redis.call('LINDEX', W, -1)
    local at, calls, failures, slows
    if tail then
      at, calls, failures, slows = parse(tail)
    end
    if at == second then
      redis.call('LSET', W, -1, string.format('%d %d %d %d', second, calls + 1,
        failures + failure, slows + slow))
    else
      redis.call('RPUSH', W, string.format('%d 1 %d %d', second, failure, slow))
    end
  end
  n, cf, cs = n + 1, cf + failure, cs + slow
end

local function counts()
  if window == 'count' then
    if n < size then
      return n, cf, cs
    end
    return size, cf, cs
  end
  expire()
  return n, cf, cs
end

local function judge_closed(failure, slow)
  note(failure, slow)
  if failure == 1 then
    run = run + 1
  else
    -- A success takes a place in the window, so it breaks a run of failures.
    run = 0
    if slow == 0 then
      return
    end
  end
  if failure == 1 and threshold and run >= threshold then
    move('open', now)
    return
  end
  local calls, failures, slows = counts()
  if calls >= minimum and ((failure_rate and failures / calls >= failure_rate)
      or (slow_rule and slows / calls >= slow_rate)) then
    move('open', now)
  end
end

local function judge_probe(outcome, slow)
  if in_flight > 0 then
    in_flight = in_flight - 1
  end
  if outcome == 2 then
    return
  end
  -- A slow probe means the dependency has not recovered yet.
  if outcome == 1 or slow == 1 then
    move('open', now)
    return
  end
  probe_successes = probe_successes + 1
  if probe_successes >= success_threshold then
    move('closed', now)
  end
end

local probe, admitted, rates = '', '0', false
if mode == 'admit' then
  advance()
  if st == 'closed' then
    admitted = '1'
  elseif st == 'half_open' and in_flight < max_probes then
    in_flight = in_flight + 1
    if not deadline then
      deadline = now + half_open_timeout
    end
    probe, admitted = tostring(gen), '1'
  end
elseif mode == 'record' then
  advance()
  local outcome, slow, of = tonumber(ARGV[17]), tonumber(ARGV[18]), ARGV[19]
  if of ~= '' then
    -- A probe of an earlier period (or from before a reset) counts for nothing.
    if tonumber(of) == gen and st == 'half_open' then
      judge_probe(outcome, slow)
    end
  elseif outcome ~= 2 and st == 'closed' then
    judge_closed(outcome, slow)
  end
elseif mode == 'read' then
  advance()
  rates = true
elseif mode == 'force' then
  move('forced_open', now)
elseif mode == 'reset' then
  local old = st
  st = 'closed'
  gen = gen + 1
  in_flight, probe_successes, deadline = 0, 0, nil
  open_time = open_for
  clear_window()
  if old ~= 'closed' then
    changes[#changes + 1] = old
    changes[#changes + 1] = 'closed'
  end
end

local retry_after = ''
if st == 'open' then
  retry_after = fmt(math.max(0, opened_at + open_time - now))
elseif st == 'half_open' then
  retry_after = deadline and fmt(math.max(0, deadline - now)) or '0'
end

local failure_share, slow_share = '', ''
if rates then
  local calls, failures, slows = counts()
  if calls >= minimum and calls > 0 then
    failure_share, slow_share = fmt(failures / calls), fmt(slows / calls)
  end
end

redis.call('HSET', S, 'st', st, 'oa', fmt(opened_at), 'g', tostring(gen), 'pf',
  tostring(in_flight), 'ps', tostring(probe_successes), 'run', tostring(run), 'n', fmt(n),
  'cf', tostring(cf), 'cs', tostring(cs), 'ws', shape, 'now', fmt(now), 'ot', fmt(open_time))
if deadline then
  redis.call('HSET', S, 'hd', fmt(deadline))
else
  redis.call('HDEL', S, 'hd')
end
if st == 'forced_open' and ttl < FORCED_TTL then
  ttl = FORCED_TTL
end
-- Refreshed by every decision: a breaker in use never expires, an idle one is forgotten.
redis.call('PEXPIRE', S, ttl)
redis.call('PEXPIRE', W, ttl)

local answer = {st, retry_after, probe, admitted, failure_share, slow_share}
for _, change in ipairs(changes) do
  answer[#answer + 1] = change
end
return answer
