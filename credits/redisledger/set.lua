-- Sets a key's credits: remaining r, refilled at now, and a version above
-- both the counter's and a floor the caller computes (credits.NextVersion:
-- the stored version and now).
--
-- KEYS[1]  the key's counter, a hash: r remaining, t refilled at (Unix µs),
--          v version
-- ARGV[1]  remaining
-- ARGV[2]  now, Unix µs
-- ARGV[3]  the version floor
-- ARGV[4]  idle TTL, ms
--
-- Returns the new version.
local v = tonumber(redis.call('HGET', KEYS[1], 'v')) or 0
v = math.max(v, tonumber(ARGV[3])) + 1
redis.call('HSET', KEYS[1], 'r', ARGV[1], 't', ARGV[2], 'v', string.format('%d', v))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return v
