package keystore

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/keyward/keyward"
)

// Dev is dev mode: no authentication at all. Every request, with a key or
// without one, is VALID as identity "dev" (DevKeyID) with role root. It
// exists for local development only, so it can only be made by NewDev, on
// a loopback listener. The zero value verifies nothing: VerifyKey returns
// an error.
type Dev struct {
	key *keyward.Key
}

var _ keyward.KeyVerifier = (*Dev)(nil)

// NewDev returns the dev mode verifier for a server listening on
// listenAddr (host:port), and logs a loud warning on logger (nil means
// slog.Default()) each time: call it at every start. It refuses, with
// EINVALID and a message naming the settings and the fix, unless
// CheckDevListen accepts listenAddr. Callers that bind first should pass the
// listener's own address (ln.Addr().String()), which is an IP.
func NewDev(listenAddr string, logger *slog.Logger) (*Dev, error) {
	if err := CheckDevListen(listenAddr); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger.With("component", "keystore").Warn(
		"DEV MODE: AUTHENTICATION IS OFF. Every request is let through as key dev with role root, with or without a key. Never use dev mode outside local development: turn off dev_mode (--dev) and configure keys.",
		"listen", listenAddr)
	return &Dev{key: &keyward.Key{ID: DevKeyID, Role: keyward.RoleRoot}}, nil
}

// CheckDevListen returns nil if listenAddr (host:port) is a loopback
// address: 127.0.0.0/8, ::1 or localhost. An empty host (":8080") listens on
// every interface and is refused, as is any other host name. The error is
// EINVALID and names the settings and the fix.
func CheckDevListen(listenAddr string) error {
	host, _, err := net.SplitHostPort(listenAddr)
	if err == nil && isLoopback(host) {
		return nil
	}
	return keyward.Errorf(keyward.EINVALID,
		"dev mode (dev_mode, --dev) turns authentication off, so it is only allowed on a loopback listener, and listen is %q: listen on 127.0.0.1:PORT or [::1]:PORT (listen, --listen), or turn dev mode off and configure keys",
		listenAddr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// VerifyKey implements keyward.KeyVerifier: every key, the empty key
// included, is VALID as identity "dev" with role root. It returns an error
// only for a request that cannot be verified (VerifyRequest.CompileNeeds)
// and on the zero Dev.
func (d *Dev) VerifyKey(_ context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	if d.key == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "keystore: Dev not made by keystore.NewDev")
	}
	q, err := r.CompileNeeds(&queries)
	if err != nil {
		return nil, err
	}
	return decide(d.key, r, q), nil
}
