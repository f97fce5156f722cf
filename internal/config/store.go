package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/redis"
)

// storeExample shows a store URL in messages.
const storeExample = "postgres://keyward:PASSWORD@db.internal:5432/keyward"

// UsesPostgres reports whether the store setting selects PostgreSQL.
func (c *Config) UsesPostgres() bool { return hasScheme(c.Store, "postgres", "postgresql") }

// StoreName describes the store for logs, without a password.
func (c *Config) StoreName() string {
	if c.UsesPostgres() {
		return RedactURL(c.Store)
	}
	return "sqlite " + c.DatabasePath()
}

// validateStore checks store, store_replicas, redis, redis_channel and bus_down_cache_ttl.
// Messages never quote a URL: it may hold a password.
func (c *Config) validateStore(add func(key, format string, args ...any)) {
	if c.Store != "" && !c.UsesPostgres() {
		add("store", "%s is not a store keyward knows: leave it empty for SQLite in the data directory, or set a PostgreSQL URL, e.g. %s", describeValue(c.Store), storeExample)
	} else if c.Store != "" {
		if _, err := url.Parse(c.Store); err != nil {
			add("store", "is not a valid URL: write it as %s (percent-encode special characters in the password)", storeExample)
		}
	}
	for i, r := range c.StoreReplicas {
		switch _, err := url.Parse(r); {
		case !c.UsesPostgres():
			add("store_replicas", "read replicas need a PostgreSQL store: set store to the primary's URL, e.g. %s, or unset store_replicas", storeExample)
			return
		case !hasScheme(r, "postgres", "postgresql"):
			add("store_replicas", "entry %d: %s is not a PostgreSQL URL: name a streaming replica of the store, e.g. postgres://keyward:PASSWORD@replica1.internal:5432/keyward", i+1, describeValue(r))
		case err != nil:
			add("store_replicas", "entry %d is not a valid URL: write it as postgres://keyward:PASSWORD@replica1.internal:5432/keyward (percent-encode special characters in the password)", i+1)
		case r == c.Store:
			add("store_replicas", "entry %d is the store itself: list only read replicas (hot standbys) of it", i+1)
		}
	}
	if c.Redis != "" {
		if !hasScheme(c.Redis, "redis", "rediss", "unix") {
			add("redis", "%s is not a Redis URL: use redis://[:PASSWORD@]HOST:6379/0, or rediss:// for TLS", describeValue(c.Redis))
		} else if client, err := redis.Open(c.Redis); err != nil {
			add("redis", "%s", keyward.ErrorMessage(err))
		} else {
			client.Close()
		}
	}
	switch {
	case c.BusChannel == "" || c.Redis != "":
	case !c.UsesPostgres():
		add("bus_channel", "is set but there is no bus to name: set redis or a PostgreSQL store too, or unset bus_channel")
	case !notifyChannel.MatchString(c.BusChannel):
		add("bus_channel", "%q cannot name a PostgreSQL LISTEN/NOTIFY channel: use lower case letters, digits and underscores, not starting with a digit, at most 63 characters", c.BusChannel)
	}
	if c.BusDownCacheTTL < minCacheTTL || c.BusDownCacheTTL > c.CacheTTL {
		add("bus_down_cache_ttl", "%s is out of range: use between %s and cache_ttl (%s), e.g. %s", c.BusDownCacheTTL, minCacheTTL, c.CacheTTL, max(minCacheTTL, min(bus.DefaultDegradedTTL, c.CacheTTL)))
	}
}

// notifyChannel is what postgres.NewNotifyBus accepts as a channel.
var notifyChannel = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// hasScheme reports whether s is a URL with one of schemes.
func hasScheme(s string, schemes ...string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return false
	}
	for _, want := range schemes {
		if strings.EqualFold(scheme, want) {
			return true
		}
	}
	return false
}

// describeValue names what s looks like without repeating it.
func describeValue(s string) string {
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		return fmt.Sprintf("a URL with scheme %q", scheme)
	}
	return "the value"
}

// redactURLs is RedactURL of each of urls.
func redactURLs(urls []string) []string {
	out := make([]string, len(urls))
	for i, u := range urls {
		out[i] = RedactURL(u)
	}
	return out
}

// RedactURL returns s with the password of its user info and of its
// password query parameters replaced by xxxxx, for logs and config check.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(not a URL)"
	}
	q := u.Query()
	redacted := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
			redacted = true
		}
	}
	if redacted {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
