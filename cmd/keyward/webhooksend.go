package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/webhook"
)

// startSender runs the webhook sender of c until the returned stop.
func startSender(cfg *Config, c *core, log *slog.Logger) (*webhook.Sender, func(), error) {
	wc, err := cfg.senderConfig()
	if err != nil {
		return nil, nil, err
	}
	wc.Store, wc.Opener, wc.Logger, wc.TracerProvider = c.store, c.keyring, log, cfg.tracer
	s, err := webhook.New(wc)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	return s, func() { cancel(); <-done }, nil
}
