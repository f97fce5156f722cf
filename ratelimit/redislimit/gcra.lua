-- GCRA over several buckets of one key, all or nothing. A transcription of
-- gcra in ratelimit/ratelimit.go: change both together.
--
-- KEYS[i]   bucket i: its theoretical arrival time (TAT) in Unix µs
-- ARGV[1]   now, Unix µs (the caller's clock)
-- ARGV[2]   cost
-- ARGV[1+2i] emission interval of limit i in µs (window / limit)
-- ARGV[2+2i] limit i
--
-- Returns {all_allowed, then per bucket: allowed, remaining, reset_after µs,
-- retry_after µs}. Times stay below 2^53 µs, exact in Lua's doubles.
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local all = 1
local tats, nexts = {}, {}
local out = {0}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[1 + 2 * i])
  local limit = tonumber(ARGV[2 + 2 * i])
  local tau = interval * limit
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  if tat > now + tau then tat = now + tau end
  local nxt = tat + cost * interval
  local wait = nxt - tau - now
  local b = 2 + 4 * (i - 1)
  if wait > 0 then
    all = 0
    out[b], out[b + 1], out[b + 2], out[b + 3] = 0, math.floor((tau - (tat - now)) / interval), tat - now, wait
  else
    out[b], out[b + 1], out[b + 2], out[b + 3] = 1, math.floor((tau - (nxt - now)) / interval), nxt - now, 0
  end
  tats[i], nexts[i] = tat, nxt
end
out[1] = all
for i = 1, #KEYS do
  local b = 2 + 4 * (i - 1)
  if all == 1 then
    -- %d: a number argument would be formatted with %.17g. The TTL is
    -- the time until the bucket is full again by the caller's clock, plus
    -- a margin (see the package doc, Keys).
    local ttl = math.max(1, math.ceil((nexts[i] - now) / 1000)) + 5000
    redis.call('SET', KEYS[i], string.format('%d', nexts[i]), 'PX', ttl)
  elseif out[b] == 1 then
    -- This limit admits but another denies: nothing is consumed, so
    -- report the bucket as it is.
    local interval = tonumber(ARGV[1 + 2 * i])
    local tau = interval * tonumber(ARGV[2 + 2 * i])
    out[b + 1], out[b + 2] = math.floor((tau - (tats[i] - now)) / interval), tats[i] - now
  end
end
return out
