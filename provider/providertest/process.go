package providertest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cacheDir returns the directory e2e/provision provisions into:
// $KEYWARD_E2E_CACHE, default $HOME/.cache/keyward-e2e. Without a home
// directory it calls missing.
func cacheDir(t testing.TB, missing func(testing.TB, string)) string {
	t.Helper()
	if cache := os.Getenv("KEYWARD_E2E_CACHE"); cache != "" {
		return cache
	}
	home, err := os.UserHomeDir()
	if err != nil {
		missing(t, fmt.Sprintf("no home directory for the default cache ($HOME/.cache/keyward-e2e): %v", err))
	}
	return filepath.Join(home, ".cache", "keyward-e2e")
}

// missing skips a test whose system is not provisioned, saying why and
// how to provision it, or fails it when CI is true.
func missing(t testing.TB, system, why, how string) {
	t.Helper()
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("real %s required when CI is true: %s: %s", system, why, how)
	}
	t.Skipf("real %s test: %s: %s", system, why, how)
}

// freePort returns a loopback port nothing listens on now. Another process
// may take it before the system under test binds it: callers retry.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// randomHex returns n hex digits of randomness (n even).
func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
