package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

func (a *app) devCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Development and benchmarking helpers",
	}
	cmd.AddCommand(a.seedCommand())
	return cmd
}

func (a *app) seedCommand() *cobra.Command {
	var (
		n       int
		account string
		sample  int
		workers int
	)
	cmd := &cobra.Command{
		Use:   "seed --keys N [--account NAME] [--print-sample N]",
		Short: "Load N keys straight into the configured store (benchmarks)",
		Long: `Create an account (or reuse the one named --account) and load --keys N
account_admin keys into it, directly in the configured store (--store or
--data), not over HTTP. Keys are hashed with the configured pepper, so they
verify on any instance sharing it. Secrets are not printed, except the first
--print-sample N, one per line on stdout after the progress, for benchmarks.
Progress goes to stderr: a bar on a terminal, a line every 5s otherwise,
with the keys per second. Batches of 1000 keys are one transaction each:
one COPY on PostgreSQL, prepared multi-row INSERTs on SQLite, whose writer
then uses a 1 GiB page cache.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n <= 0 {
				return usageErrorf("--keys must be a positive number")
			}
			if sample < 0 || sample > n {
				return usageErrorf("--print-sample must be between 0 and --keys")
			}
			if workers <= 0 {
				return usageErrorf("--workers must be positive")
			}
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			log := cfg.Logger(a.stderr)
			c, err := server.Open(cmd.Context(), cfg, nil, log, false)
			if err != nil {
				return err
			}
			secrets, err := a.seed(cmd.Context(), c, account, n, sample, workers)
			if cerr := c.Close(cmd.Context(), log); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			for _, s := range secrets {
				fmt.Fprintln(a.stdout, s)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&n, "keys", 0, "number of keys to create")
	f.StringVar(&account, "account", "seed", "name of the account the keys belong to (created if missing)")
	f.IntVar(&sample, "print-sample", 0, "print the secrets of the first N keys on stdout")
	f.IntVar(&workers, "workers", 4, "concurrent key generators and writers (SQLite serialises the writes)")
	config.AddFlags(f, "data", "store", "pepper-file", "log-level", "log-format")
	return cmd
}

// seedBatch is the number of keys per Store.CreateKeys call (one
// transaction: one COPY on PostgreSQL, prepared multi-row INSERTs on
// SQLite) and per progress step.
const seedBatch = 1000

// seedWriteCache is the SQLite writer's page cache while seeding: enough to
// hold the keys' indexes of a few million keys (random hashes and ids).
const seedWriteCache = 1 << 30

// writeCacher is a store whose writer's page cache can grow for a bulk load
// (sqlite.Store).
type writeCacher interface {
	SetWriteCache(ctx context.Context, n int64) error
}

func (a *app) seed(ctx context.Context, c *server.Core, accountName string, n, sample, workers int) ([]string, error) {
	acc, err := seedAccount(ctx, c.Store, accountName)
	if err != nil {
		return nil, err
	}
	if wc, ok := c.Store.(writeCacher); ok {
		if err := wc.SetWriteCache(ctx, seedWriteCache); err != nil {
			return nil, err
		}
	}
	var (
		mu      sync.Mutex
		secrets []string
		done    atomic.Int64
	)
	prog := newProgress(a.stderr, n)
	defer prog.finish(&done)
	stopProg := prog.run(&done)
	defer stopProg()

	batches := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		for start := 0; start < n; start += seedBatch {
			select {
			case batches <- start:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for start := range batches {
				keys := make([]*keyward.Key, 0, seedBatch)
				now := time.Now().UTC()
				for i := start; i < min(start+seedBatch, n); i++ {
					k := &keyward.Key{
						ID:          apikey.NewID("key"),
						Prefix:      apikey.DefaultPrefix(keyward.RoleAccountAdmin, acc.KeyPrefix),
						Name:        fmt.Sprintf("seed %d", i),
						Role:        keyward.RoleAccountAdmin,
						AccountID:   acc.ID,
						Permissions: []string{},
						CreatedAt:   now,
						UpdatedAt:   now,
					}
					secret, err := apikey.Generate(k.Prefix)
					if err != nil {
						return err
					}
					raw := secret.Reveal()
					k.Hash = c.Hasher.Hash(raw)
					k.PepperVersion = c.Hasher.Current()
					k.Start = apikey.Start(raw)
					if i < sample {
						mu.Lock()
						secrets = append(secrets, raw)
						mu.Unlock()
					}
					keys = append(keys, k)
				}
				if err := c.Store.CreateKeys(gctx, keyward.Change{}, keys); err != nil {
					return fmt.Errorf("seeding keys: %w", err)
				}
				done.Add(int64(len(keys)))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return secrets, nil
}

// seedAccount returns the account named name, creating it if missing.
func seedAccount(ctx context.Context, store keyward.Store, name string) (*keyward.Account, error) {
	now := time.Now().UTC()
	acc := &keyward.Account{ID: apikey.NewID("acc"), Name: name, CreatedAt: now, UpdatedAt: now}
	err := store.CreateAccount(ctx, keyward.Change{}, acc)
	if err == nil || keyward.ErrorCode(err) != keyward.ECONFLICT {
		return acc, err
	}
	p := keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		accs, next, err := store.Accounts(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, a := range accs {
			if a.Name == name {
				return a, nil
			}
		}
		if next == "" {
			return nil, keyward.Errorf(keyward.ECONFLICT, "account %q exists but cannot be found", name)
		}
		p.After = next
	}
}

// progress reports a count towards a total: a bar redrawn in place on a
// terminal, a line every 5s otherwise.
type progress struct {
	w     io.Writer
	total int
	tty   bool
	start time.Time
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, total: total, tty: tty, start: time.Now()}
}

// run reports until the returned function is called.
func (p *progress) run(done *atomic.Int64) func() {
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.report(int(done.Load()), false)
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

func (p *progress) finish(done *atomic.Int64) { p.report(int(done.Load()), true) }

func (p *progress) report(n int, final bool) {
	el := time.Since(p.start)
	rate := float64(n) / max(el.Seconds(), 0.001)
	if !p.tty {
		fmt.Fprintf(p.w, "seeded %d/%d keys (%.0f/s, %s)\n", n, p.total, rate, el.Round(time.Second))
		return
	}
	const width = 40
	filled := width * n / max(p.total, 1)
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d keys %.0f/s%s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, p.total, rate, end)
}
