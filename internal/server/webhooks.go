package server

import (
	"context"
	"log/slog"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/webhook"
)

// startSender runs the webhook sender of c until the returned stop.
func startSender(cfg *config.Config, c *Core, log *slog.Logger) (*webhook.Sender, func(), error) {
	wc, err := cfg.SenderConfig()
	if err != nil {
		return nil, nil, err
	}
	wc.Store, wc.Opener, wc.Logger, wc.TracerProvider = c.Store, c.keyring, log, c.tracer
	s, err := webhook.New(wc)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	return s, func() { cancel(); <-done }, nil
}
