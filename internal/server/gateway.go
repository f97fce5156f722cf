package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/internal/config"
)

// newForwardAuth is serve's /v1/forward-auth over v with the configured
// routes.
func newForwardAuth(cfg *config.Config, v keyward.KeyVerifier, log *slog.Logger) (http.Handler, error) {
	gc, errs := cfg.GatewayConfig()
	if len(errs) > 0 {
		return nil, &config.Error{Errors: errs}
	}
	gc.Verifier, gc.Logger = v, log
	fa, err := gateway.NewForwardAuth(gc)
	if err != nil {
		return nil, &config.Error{Errors: config.GatewayErrors(err, config.YAMLName)}
	}
	return fa, nil
}

// GatewayServer is a running gateway listener.
type GatewayServer struct {
	gw  *gateway.Gateway
	srv *http.Server
	ln  net.Listener
	err chan error
}

// ListenGateway binds addr for a gateway over cfg; start serves it.
func ListenGateway(ctx context.Context, addr string, cfg gateway.Config, log *slog.Logger, name func(string) string, listenSetting string) (*GatewayServer, error) {
	g, err := gateway.New(cfg)
	if err != nil {
		return nil, &config.Error{Errors: config.GatewayErrors(err, name)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		g.Close()
		return nil, config.Errorf(listenSetting, "cannot listen on %s: %v", addr, err)
	}
	srv := g.Server(addr)
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	return &GatewayServer{gw: g, srv: srv, ln: ln, err: make(chan error, 1)}, nil
}

// Addr is the address the gateway accepts connections on.
func (s *GatewayServer) Addr() string { return s.ln.Addr().String() }

// Err delivers the error that ended serving, once Start ran.
func (s *GatewayServer) Err() <-chan error { return s.err }

// Start serves the gateway in the background and logs where.
func (s *GatewayServer) Start(log *slog.Logger) {
	go func() { s.err <- s.srv.Serve(s.ln) }()
	addr := s.ln.Addr().String()
	if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) {
		log.Warn("gateway serving plain HTTP on a non-loopback address: put it behind a TLS-terminating proxy", "addr", addr)
	}
	log.Info("gateway listening", "addr", addr, "url", "http://"+addr)
}

// Shutdown stops accepting, waits for requests in flight until ctx ends
// (timeout, the shutdown_timeout it was given, is for the message), then
// closes upstream connections.
func (s *GatewayServer) Shutdown(ctx context.Context, timeout time.Duration) error {
	defer s.gw.Close()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
		return CutOff("shutting down the gateway", err, timeout)
	}
	return nil
}
