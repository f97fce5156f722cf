-- Spends cost from several credit counters (a key's, its user's and its
-- account's), all or nothing: the refills due at now are applied to each
-- (the transcription of keyward.Credits.At in apply.lua: change them
-- together), then cost is taken from every counter if every one holds that
-- much, else from none.
--
-- KEYS[i]       counter i, a hash: r remaining, t refilled at (Unix µs),
--               v version
-- ARGV[1]       cost
-- ARGV[2]       now, Unix µs (the caller's clock)
-- ARGV[3]       idle TTL, ms
-- ARGV[4+6(i-1)..9+6(i-1)]  for counter i: refill amount (0 for none),
--               refill interval µs (0 for a monthly refill), the start of
--               a monthly refill's period holding now (Unix µs, else 0),
--               then r, t and v to create it with if it is absent (r = -1:
--               not given)
--
-- Returns {-1, i} if counter i is absent and not given (nothing changed),
-- else {refused, then per counter r, t, v, changed}: refused is 0 when
-- cost was spent, else the index of the first counter with too few;
-- changed is 1 when v was bumped. Every number stays below 2^53, exact in
-- Lua's doubles.
local cost = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local rs, ts, vs, write, changed = {}, {}, {}, {}, {}
for i = 1, #KEYS do
  local b = 3 + 6 * (i - 1)
  local h = redis.call('HMGET', KEYS[i], 'r', 't', 'v')
  if h[1] then
    rs[i], ts[i], vs[i], write[i] = tonumber(h[1]), tonumber(h[2]), tonumber(h[3]), false
  elseif tonumber(ARGV[b + 4]) >= 0 then
    rs[i], ts[i], vs[i], write[i] = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6]), true
  else
    return {-1, i}
  end
end
local refused = 0
for i = 1, #KEYS do
  local b = 3 + 6 * (i - 1)
  local amount, interval, start = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  changed[i] = 0
  if amount > 0 and interval > 0 and now - ts[i] >= interval then
    local elapsed = now - ts[i]
    -- fmod is exact, where a floor of the quotient may round.
    ts[i] = ts[i] + elapsed - math.fmod(elapsed, interval)
    if rs[i] < amount then rs[i] = amount end
    changed[i] = 1
  elseif amount > 0 and start > ts[i] then
    ts[i] = start
    if rs[i] < amount then rs[i] = amount end
    changed[i] = 1
  end
  if refused == 0 and rs[i] < cost then refused = i end
end
local out = {refused}
for i = 1, #KEYS do
  if refused == 0 then
    rs[i] = rs[i] - cost
    changed[i] = 1
  end
  if changed[i] == 1 then
    vs[i] = vs[i] + 1
    write[i] = true
  end
  if write[i] then
    -- %d: a number argument would be formatted with %.17g.
    redis.call('HSET', KEYS[i], 'r', string.format('%d', rs[i]), 't', string.format('%d', ts[i]), 'v', string.format('%d', vs[i]))
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
  local b = 1 + 4 * (i - 1)
  out[b + 1], out[b + 2], out[b + 3], out[b + 4] = rs[i], ts[i], vs[i], changed[i]
end
return out
