package main

import (
	"net"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	s := startServer(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := runCLI(t, nil, "healthcheck", "--url", s.url+path); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Errorf("healthcheck %s: exit %d, stdout %q, stderr %q", path, r.code, r.stdout, r.stderr)
		}
	}

	// A server that answers something other than 200 is not healthy.
	args := []string{"healthcheck", "--url", s.url + "/no-such-page"}
	if msg := checkFails(t, runCLI(t, nil, args...), ExitUnavailable, args); !strings.Contains(msg, "404") {
		t.Errorf("healthcheck of a 404: %q", msg)
	}

	// Nothing listening: unavailable, saying which URL.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/healthz"
	l.Close()
	args = []string{"healthcheck", "--url", closed}
	if msg := checkFails(t, runCLI(t, nil, args...), ExitUnavailable, args); !strings.Contains(msg, closed+" did not answer") {
		t.Errorf("healthcheck of a closed port: %q", msg)
	}

	// Bad flags are usage errors.
	for _, args := range [][]string{
		{"healthcheck", "--url", "127.0.0.1:8080/healthz"},
		{"healthcheck", "--url", "ftp://127.0.0.1/healthz"},
		{"healthcheck", "--url", s.url + "/healthz", "--timeout", "0s"},
		{"healthcheck", "extra"},
	} {
		checkFails(t, runCLI(t, nil, args...), ExitUsage, args)
	}
}
