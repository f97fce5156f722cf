-- Applies the refills due at now to a key's credits, then adds delta (a
-- spend when negative, a top-up when positive) if the result stays between
-- 0 and the maximum; with ARGV[7] 1, a negative delta larger than what
-- remains leaves 0 instead (a decrement). The refill is a transcription of keyward.Credits.At
-- (credits.go): change both together.
--
-- KEYS[1]   the key's counter, a hash: r remaining, t refilled at (Unix µs),
--           v version
-- ARGV[1]   delta; 0 applies the due refills alone (and bumps v)
-- ARGV[2]   now, Unix µs (the caller's clock)
-- ARGV[3]   refill amount, 0 for none
-- ARGV[4]   refill interval, µs
-- ARGV[5]   idle TTL, ms
-- ARGV[6]   the maximum of remaining (keyward.MaxCredits)
-- ARGV[7]   1 to clamp a negative delta at what remains, else 0
-- ARGV[8]   the start of a monthly refill's period holding now, Unix µs,
--           0 for none (the interval is then 0: the caller's calendar)
-- ARGV[9-11] optional: r, t and v to create the counter with if it is
--           absent
--
-- Returns {applied, r, t, v, changed} (applied and changed 1 or 0; changed
-- when v was bumped), or {-1} if the counter is absent and ARGV[9-11] are
-- not given. Every number stays below 2^53, exact in Lua's doubles.
local r, t, v
local write = false
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'v')
if h[1] then
  r, t, v = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
elseif ARGV[9] then
  r, t, v = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
  write = true
else
  return {-1}
end
local delta = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local interval = tonumber(ARGV[4])
local start = tonumber(ARGV[8])
local changed = 0
if amount > 0 and interval > 0 and now - t >= interval then
  local elapsed = now - t
  -- fmod is exact, where a floor of the quotient may round.
  t = t + elapsed - math.fmod(elapsed, interval)
  if r < amount then r = amount end
  changed = 1
elseif amount > 0 and start > t then
  t = start
  if r < amount then r = amount end
  changed = 1
end
if ARGV[7] == '1' and delta < -r then delta = -r end
local applied = 0
-- Compared so, not as r + delta, which could pass 2^53 and round.
if delta >= -r and delta <= tonumber(ARGV[6]) - r then
  applied = 1
  r = r + delta
  changed = 1
end
if changed == 1 then
  v = v + 1
  write = true
end
if write then
  -- %d: a number argument would be formatted with %.17g.
  redis.call('HSET', KEYS[1], 'r', string.format('%d', r), 't', string.format('%d', t), 'v', string.format('%d', v))
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {applied, r, t, v, changed}
