// Package redis adapts Redis to keyward with go-redis: the invalidation bus
// on pub/sub (Bus), and later the distributed rate limits and counters
// (docs/architecture.md, storage). Everything takes a goredis.UniversalClient, so a
// standalone server, Sentinel and Cluster all work; Open builds one from a
// URL.
package redis

import (
	"errors"
	"net/url"
	"strconv"

	"github.com/keyward/keyward"
	goredis "github.com/redis/go-redis/v9"
)

// Open returns a client for the Redis deployment that rawURL describes. It
// does not connect: the first command does, and go-redis reconnects by
// itself. Close the client when done. The URL forms, with the options
// go-redis accepts as query parameters (dial_timeout, read_timeout,
// pool_size, max_retries, ...; unknown ones are an error):
//
//	redis://[[user]:password@]host[:port][/db]          a standalone server
//	rediss://...                                          the same over TLS (skip_verify=true to not check the certificate)
//	unix://[[user]:password@]/path/redis.sock?db=N       a standalone server on a Unix socket
//
//	Sentinel: the host is a sentinel, master_name selects the monitored
//	master, more sentinels come as addr parameters; the user and password
//	of the URL are the sentinels', password= (and username=) the master's:
//	redis://[sentinel-user:sentinel-password@]s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379&password=secret
//
//	Cluster: cluster=true; the host and the addr parameters are seed nodes
//	(the cluster has no databases, so no /db):
//	redis://[user:password@]node1:6379?cluster=true&addr=node2:6379&addr=node3:6379
//
// EINVALID for a URL it cannot use; the error never repeats the URL, which
// may hold a password (log Redact(rawURL) instead).
func Open(rawURL string) (goredis.UniversalClient, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	cluster := false
	if v := q.Get("cluster"); v != "" {
		if cluster, err = strconv.ParseBool(v); err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "redis: invalid URL: cluster=%q is not a boolean", v)
		}
		q.Del("cluster")
		u.RawQuery = q.Encode()
	}
	switch {
	case cluster && q.Has("master_name"):
		return nil, keyward.Errorf(keyward.EINVALID, "redis: invalid URL: cluster=true and master_name (Sentinel) exclude each other")
	case cluster:
		opts, err := goredis.ParseClusterURL(u.String())
		if err != nil {
			return nil, invalid(err)
		}
		return goredis.NewClusterClient(opts), nil
	case q.Has("master_name"):
		opts, err := goredis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, invalid(err)
		}
		return goredis.NewFailoverClient(opts), nil
	}
	opts, err := goredis.ParseURL(u.String())
	if err != nil {
		return nil, invalid(err)
	}
	return goredis.NewClient(opts), nil
}

// Redact returns rawURL with its passwords (in the user info and in the
// password and sentinel_password parameters) replaced by xxxxx, for logs.
func Redact(rawURL string) string {
	u, err := parseURL(rawURL)
	if err != nil {
		return "(invalid redis URL)"
	}
	q := u.Query()
	for _, p := range []string{"password", "sentinel_password"} {
		if q.Has(p) {
			q.Set(p, "xxxxx")
		}
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// parseURL parses rawURL without putting it in the error.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, invalid(err)
	}
	return u, nil
}

func invalid(err error) error {
	return keyward.Errorf(keyward.EINVALID, "redis: invalid URL: %v", err)
}
