package keywardtest

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// NewRedisClient returns a client of the test Redis (RedisURL), closed when
// the test ends. A non-empty addr replaces the server's address (a closed
// port, to cause an outage), with retries off so errors come at once.
func NewRedisClient(t testing.TB, addr string) goredis.UniversalClient {
	t.Helper()
	opts, err := goredis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("KEYWARD_TEST_REDIS_URL: %v", err)
	}
	if addr != "" {
		opts.Addr = addr
		opts.MaxRetries = -1
		opts.DialerRetries = 1
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}
