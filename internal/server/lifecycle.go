package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/lifecycle"
)

// newLifecycle returns the lifecycle runner of c.
func (c *Core) newLifecycle(cfg *config.Config, log *slog.Logger) (*lifecycle.Runner, error) {
	lc := lifecycle.Config{Store: c.Store, Actions: c.Admin.Jobs(), Settings: cfg.Lifecycle.Settings, Logger: log}
	if r, ok := c.ledger.(lifecycle.Refiller); ok {
		lc.Credits = r
	}
	return lifecycle.New(lc)
}

// startLifecycle runs the lifecycle jobs until the returned stop, unless
// they are disabled on this instance (runner nil).
func (c *Core) startLifecycle(cfg *config.Config, log *slog.Logger) (*lifecycle.Runner, func(), error) {
	if cfg.Lifecycle.Disabled {
		log.Info("lifecycle jobs are disabled on this instance (lifecycle.disabled)")
		return nil, func() {}, nil
	}
	r, err := c.newLifecycle(cfg, log)
	if err != nil {
		return nil, nil, fmt.Errorf("starting the lifecycle jobs: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	return r, func() { cancel(); <-done }, nil
}

// RunJobs runs every job, or job, once.
func RunJobs(ctx context.Context, c *Core, cfg *config.Config, log *slog.Logger, job string) ([]lifecycle.Result, error) {
	r, err := c.newLifecycle(cfg, log)
	if err != nil {
		return nil, err
	}
	if job == "" {
		return r.RunOnce(ctx)
	}
	res, err := r.RunJob(ctx, job)
	return []lifecycle.Result{res}, err
}
