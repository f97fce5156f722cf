package keywardtest

import (
	"os"
	"strconv"
	"testing"
)

// PostgresURL returns the URL of the PostgreSQL database for integration
// tests, from KEYWARD_TEST_POSTGRES_URL. Unset, the test is skipped with a
// message saying how to run it, or fails when CI is true, so that CI cannot
// pass by skipping.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return envURL(t, "KEYWARD_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// RedisURL returns the URL of the Redis server for integration tests, from
// KEYWARD_TEST_REDIS_URL, skipping or failing like PostgresURL.
func RedisURL(t testing.TB) string {
	t.Helper()
	return envURL(t, "KEYWARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
}

func envURL(t testing.TB, name, example string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s is not set and CI is true: integration tests must run in CI (set %s=%s)", name, name, example)
	}
	t.Skipf("integration test: set %s to run it, e.g. %s=%s", name, name, example)
	return ""
}
