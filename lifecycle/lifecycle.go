// Package lifecycle runs keyward's lifecycle jobs (docs/lifecycle.md):
//
//   - expiry announces each key that expired, once (key.expired);
//   - rotation announces each key past the max age of its rotation policy,
//     once (key.rotation_due), and, when the policy has a notice period,
//     makes the key expire at its end;
//   - cleanup deletes keys revoked or expired longer than the key
//     retention, and IP rules expired longer than the IP rule retention
//     (usage rows are deleted by package usage, by their own retention);
//   - refill stores the credit refills that are due, so that key lists show
//     them.
//
// Every job runs on one instance at a time: a run first takes the job's
// lock (Store.TryLock: a PostgreSQL advisory lock, or a lease row on
// SQLite), and an instance that finds it held skips the run. Each change is
// also safe to attempt twice: announcements are recorded as key notices in
// the transaction of their webhook event and audit entry, and a notice
// recorded already refuses the second attempt, so even runs that overlap
// (a lease that ran out) announce each thing once.
//
// Jobs decide with an injected clock (Config.Now), so tests simulate days
// by calling RunOnce with the clock moved on.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
)

// The jobs, in the order RunOnce runs them. Their names are those of their
// locks (prefixed "lifecycle.") and metrics.
const (
	JobExpiry   = "expiry"
	JobRotation = "rotation"
	JobCleanup  = "cleanup"
	JobRefill   = "refill"
	// JobCheckpoint publishes a signed checkpoint of the audit log's head
	// (the audit.checkpoint event).
	JobCheckpoint = "checkpoint"
)

// Jobs lists the jobs in the order RunOnce runs them.
var Jobs = []string{JobExpiry, JobRotation, JobCleanup, JobRefill, JobCheckpoint}

// Defaults of Config.
const (
	DefaultExpiryInterval   = time.Minute
	DefaultRotationInterval = 5 * time.Minute
	DefaultCleanupInterval  = time.Hour
	DefaultRefillInterval   = 5 * time.Minute
	// DefaultCheckpointInterval is how often the audit log's head is
	// published.
	DefaultCheckpointInterval = time.Hour
	DefaultBatchSize          = 200
)

// Actions makes the jobs' changes, each with its audit entry and webhook
// event in one transaction, telling caches of changed keys; admin.Jobs
// implements it. A change that another instance made first, or whose
// object is gone, returns ECONFLICT or ENOTFOUND and is skipped.
type Actions interface {
	// AnnounceExpired announces that k expired.
	AnnounceExpired(ctx context.Context, k *keyward.Key, now time.Time) error
	// AnnounceRotationDue announces that a key is due for rotation.
	AnnounceRotationDue(ctx context.Context, d *keyward.RotationDue, now time.Time) error
	// ScheduleExpiry makes a key announced due expire at d.ExpireAt();
	// it returns the key if it changed.
	ScheduleExpiry(ctx context.Context, d *keyward.RotationDue, now time.Time) (*keyward.Key, error)
	// DeleteRetiredKey deletes k if it is still revoked or expired at or
	// before before.
	DeleteRetiredKey(ctx context.Context, k *keyward.Key, before time.Time) error
	// DeleteExpiredIPRule deletes an expired rule.
	DeleteExpiredIPRule(ctx context.Context, r *keyward.IPRule) error
	// RetireDueCredential revokes at its provider a managed credential
	// that expired or whose rotation grace ended, if it still is.
	RetireDueCredential(ctx context.Context, c *keyward.ManagedCredential, now time.Time) error
	// PublishAuditCheckpoint publishes a signed checkpoint of the audit
	// log's newest entry as the audit.checkpoint event, and reports
	// whether there was one (an empty log has none).
	PublishAuditCheckpoint(ctx context.Context, now time.Time) (bool, error)
}

// Refiller stores the credit refills due at now of a key, through the
// credit ledger that holds the live count (credits.StoreLedger,
// redisledger.Ledger), and reports whether one was due.
type Refiller interface {
	RefillCredits(ctx context.Context, keyID string, now time.Time) (bool, error)
}

// Settings are what keyward.yaml's lifecycle block configures: how often
// each job runs and how long what it deletes is kept.
type Settings struct {
	// ExpiryInterval, RotationInterval, CleanupInterval, RefillInterval
	// and CheckpointInterval are how often Run runs each job.
	ExpiryInterval     time.Duration `yaml:"expiry_interval"`
	RotationInterval   time.Duration `yaml:"rotation_interval"`
	CleanupInterval    time.Duration `yaml:"cleanup_interval"`
	RefillInterval     time.Duration `yaml:"refill_interval"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// KeyRetention is how long keys are kept after they were revoked or
	// expired; 0 keeps them forever. Root keys are never deleted.
	KeyRetention time.Duration `yaml:"key_retention"`
	// IPRuleRetention is how long IP rules are kept after they expired; 0
	// keeps them forever.
	IPRuleRetention time.Duration `yaml:"ip_rule_retention"`
	// WebhookRetention is how long finished webhook events (all their
	// deliveries delivered or failed) and their delivery log are kept; 0
	// keeps them forever.
	WebhookRetention time.Duration `yaml:"webhook_retention"`
}

// Config configures a Runner. Zero intervals and batch size take their
// defaults.
type Config struct {
	// Store finds the work of the jobs and holds their locks.
	Store keyward.LifecycleStore
	// Actions makes the changes.
	Actions Actions
	// Credits is the credit ledger; nil turns the refill job off.
	Credits Refiller
	// Settings are the intervals of the jobs and the retentions.
	Settings
	// BatchSize is how many items a job reads at a time.
	BatchSize int
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Result is what one run of a job did.
type Result struct {
	Job string `json:"job"`
	// Ran is false when the job's lock was held (by another instance):
	// the run was skipped.
	Ran bool `json:"ran"`
	// Changes counts what the run changed, by action (see Actions):
	// key_expired, key_rotation_due, key_expiry_scheduled, key_deleted,
	// ip_rule_deleted, webhook_events_deleted, credits_refilled,
	// credential_retired, audit_checkpoint_published.
	Changes map[string]int `json:"changes,omitempty"`
	// Skipped counts items another instance dealt with first, or that
	// were gone or changed when their turn came.
	Skipped int `json:"skipped,omitempty"`
}

// The actions counted in Result.Changes and the changes metric.
const (
	actionExpired   = "key_expired"
	actionDue       = "key_rotation_due"
	actionScheduled = "key_expiry_scheduled"
	actionKeyDelete = "key_deleted"
	actionRuleDel   = "ip_rule_deleted"
	actionRefilled  = "credits_refilled"
	actionEventsDel = "webhook_events_deleted"
	// actionCredential counts managed credentials revoked at their
	// provider: expired, or past their rotation grace.
	actionCredential = "credential_retired"
	actionCheckpoint = "audit_checkpoint_published"
)

var actions = []string{actionExpired, actionDue, actionScheduled, actionKeyDelete, actionRuleDel, actionEventsDel, actionRefilled, actionCredential, actionCheckpoint}

// Runner runs the lifecycle jobs. It is a prometheus.Collector.
type Runner struct {
	cfg  Config
	jobs map[string]func(ctx context.Context, r *Result) error
	log  *slog.Logger

	m struct {
		runs, skipped, errors map[string]*atomic.Int64 // by job
		changes               map[string]*atomic.Int64 // by action
	}
}

// New returns a Runner. EINVALID if the store or actions are missing or a
// setting is negative.
func New(cfg Config) (*Runner, error) {
	switch {
	case cfg.Store == nil || cfg.Actions == nil:
		return nil, keyward.Errorf(keyward.EINVALID, "lifecycle: a store and actions are required")
	case cfg.ExpiryInterval < 0 || cfg.RotationInterval < 0 || cfg.CleanupInterval < 0 || cfg.RefillInterval < 0 || cfg.CheckpointInterval < 0:
		return nil, keyward.Errorf(keyward.EINVALID, "lifecycle: job intervals must be positive")
	case cfg.KeyRetention < 0 || cfg.IPRuleRetention < 0 || cfg.WebhookRetention < 0 || cfg.BatchSize < 0:
		return nil, keyward.Errorf(keyward.EINVALID, "lifecycle: retentions and batch size must not be negative")
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&cfg.ExpiryInterval, DefaultExpiryInterval)
	set(&cfg.RotationInterval, DefaultRotationInterval)
	set(&cfg.CleanupInterval, DefaultCleanupInterval)
	set(&cfg.RefillInterval, DefaultRefillInterval)
	set(&cfg.CheckpointInterval, DefaultCheckpointInterval)
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Runner{cfg: cfg, log: cfg.Logger.With("component", "lifecycle")}
	r.jobs = map[string]func(context.Context, *Result) error{
		JobExpiry: r.expiry, JobRotation: r.rotation, JobCleanup: r.cleanup, JobRefill: r.refill,
		JobCheckpoint: r.checkpoint,
	}
	counters := func(names []string) map[string]*atomic.Int64 {
		m := make(map[string]*atomic.Int64, len(names))
		for _, n := range names {
			m[n] = new(atomic.Int64)
		}
		return m
	}
	r.m.runs, r.m.skipped, r.m.errors = counters(Jobs), counters(Jobs), counters(Jobs)
	r.m.changes = counters(actions)
	return r, nil
}

// now returns the clock's time as stores keep it: UTC, microseconds.
func (r *Runner) now() time.Time { return r.cfg.Now().UTC().Truncate(time.Microsecond) }

// RunOnce runs every job once, in the order of Jobs, and returns what each
// did. It stops at the first job that fails, returning the results so far
// and the error.
func (r *Runner) RunOnce(ctx context.Context) ([]Result, error) {
	results := make([]Result, 0, len(Jobs))
	for _, job := range Jobs {
		res, err := r.RunJob(ctx, job)
		results = append(results, res)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// JobTimeout bounds one run of a job. A job works in batches, each
// committed, so a run cut short leaves what it did and the next run goes
// on from there. Without the bound, a job whose statement was lost in a
// network partition (nothing tells either side) would hold its database
// connection forever, and a few such jobs would leave the pool to nobody
// else, key lookups included, long after the partition healed.
const JobTimeout = 30 * time.Second

// RunJob runs the named job once, if its lock is free, for at most
// JobTimeout. EINVALID for an unknown job.
func (r *Runner) RunJob(ctx context.Context, job string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, JobTimeout)
	defer cancel()
	res := Result{Job: job, Changes: map[string]int{}}
	run, ok := r.jobs[job]
	if !ok {
		return res, keyward.Errorf(keyward.EINVALID, "lifecycle: unknown job %q: use one of %v", job, Jobs)
	}
	release, ok, err := r.cfg.Store.TryLock(ctx, "lifecycle."+job)
	if err != nil {
		r.m.errors[job].Add(1)
		return res, fmt.Errorf("lifecycle: %s: %w", job, err)
	}
	if !ok {
		r.m.skipped[job].Add(1)
		r.log.DebugContext(ctx, "job skipped: another instance runs it", "job", job)
		return res, nil
	}
	defer release()
	res.Ran = true
	r.m.runs[job].Add(1)
	err = run(ctx, &res)
	for action, n := range res.Changes {
		r.m.changes[action].Add(int64(n))
	}
	if err != nil {
		r.m.errors[job].Add(1)
		return res, fmt.Errorf("lifecycle: %s: %w", job, err)
	}
	if len(res.Changes) > 0 {
		r.log.InfoContext(ctx, "job done", "job", job, "changes", res.Changes, "skipped", res.Skipped)
	}
	return res, nil
}

// Run runs each job every its interval (and once at the start) until ctx
// ends. Errors are logged and counted; the next run tries again.
func (r *Runner) Run(ctx context.Context) {
	intervals := map[string]time.Duration{
		JobExpiry: r.cfg.ExpiryInterval, JobRotation: r.cfg.RotationInterval,
		JobCleanup: r.cfg.CleanupInterval, JobRefill: r.cfg.RefillInterval,
		JobCheckpoint: r.cfg.CheckpointInterval,
	}
	var wg sync.WaitGroup
	for _, job := range Jobs {
		wg.Go(func() {
			t := time.NewTicker(intervals[job])
			defer t.Stop()
			for {
				if _, err := r.RunJob(ctx, job); err != nil && ctx.Err() == nil {
					r.log.ErrorContext(ctx, "lifecycle job failed; retrying at its next run", "job", job, "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// each works through the items list returns, a batch at a time, calling do
// for each and counting its outcome in res under action: a change, or a
// skip for ECONFLICT and ENOTFOUND. It stops at the first other error.
func each[T any](ctx context.Context, r *Runner, res *Result, action string, list func(after string, limit int) ([]T, error), id func(T) string, do func(T) (bool, error)) error {
	after := ""
	for {
		items, err := list(after, r.cfg.BatchSize)
		if err != nil {
			return err
		}
		for _, it := range items {
			changed, err := do(it)
			switch keyward.ErrorCode(err) {
			case "":
				if changed {
					res.Changes[action]++
				} else {
					res.Skipped++
				}
			case keyward.ECONFLICT, keyward.ENOTFOUND:
				res.Skipped++
			default:
				return fmt.Errorf("%s %s: %w", action, id(it), err)
			}
		}
		if len(items) < r.cfg.BatchSize || ctx.Err() != nil {
			return ctx.Err()
		}
		after = id(items[len(items)-1])
	}
}

func keyID(k *keyward.Key) string            { return k.ID }
func dueKeyID(d *keyward.RotationDue) string { return d.Key.ID }
func ruleID(rule *keyward.IPRule) string     { return rule.ID }
func changed(err error) (bool, error)        { return err == nil, err }
func identity(id string) string              { return id }

// expiry announces the keys that expired, and revokes at their providers
// the managed credentials that expired or whose rotation grace ended.
func (r *Runner) expiry(ctx context.Context, res *Result) error {
	now := r.now()
	err := each(ctx, r, res, actionExpired,
		func(after string, limit int) ([]*keyward.Key, error) {
			return r.cfg.Store.ExpiredKeys(ctx, now, after, limit)
		}, keyID,
		func(k *keyward.Key) (bool, error) { return changed(r.cfg.Actions.AnnounceExpired(ctx, k, now)) })
	if err != nil {
		return err
	}
	return each(ctx, r, res, actionCredential,
		func(after string, limit int) ([]*keyward.ManagedCredential, error) {
			return r.cfg.Store.CredentialsDue(ctx, now, after, limit)
		}, func(c *keyward.ManagedCredential) string { return c.ID },
		func(c *keyward.ManagedCredential) (bool, error) {
			err := r.cfg.Actions.RetireDueCredential(ctx, c, now)
			switch keyward.ErrorCode(err) {
			case keyward.EUPSTREAM, keyward.EUPSTREAMTIMEOUT:
				// One provider down must not hold up the others: this
				// credential is tried again on the next run.
				r.m.errors[JobExpiry].Add(1)
				r.log.WarnContext(ctx, "revoking a due credential at its provider failed; retrying on the next run",
					"credential", c.ID, "connection", c.ProviderID, "err", err)
				return false, nil
			}
			return changed(err)
		})
}

// rotation announces the keys due for rotation, then schedules the expiry
// of those whose policy asks for it.
func (r *Runner) rotation(ctx context.Context, res *Result) error {
	now := r.now()
	err := each(ctx, r, res, actionDue,
		func(after string, limit int) ([]*keyward.RotationDue, error) {
			return r.cfg.Store.RotationDueKeys(ctx, now, after, limit)
		}, dueKeyID,
		func(d *keyward.RotationDue) (bool, error) {
			return changed(r.cfg.Actions.AnnounceRotationDue(ctx, d, now))
		})
	if err != nil {
		return err
	}
	return each(ctx, r, res, actionScheduled,
		func(after string, limit int) ([]*keyward.RotationDue, error) {
			return r.cfg.Store.ExpiryDueKeys(ctx, after, limit)
		}, dueKeyID,
		func(d *keyward.RotationDue) (bool, error) {
			k, err := r.cfg.Actions.ScheduleExpiry(ctx, d, now)
			return k != nil, err
		})
}

// cleanup deletes the keys, IP rules and webhook events past their
// retention.
func (r *Runner) cleanup(ctx context.Context, res *Result) error {
	now := r.now()
	if keep := r.cfg.WebhookRetention; keep > 0 {
		n, err := r.cfg.Store.DeleteWebhookEventsBefore(ctx, now.Add(-keep))
		if err != nil {
			return fmt.Errorf("%s: %w", actionEventsDel, err)
		}
		res.Changes[actionEventsDel] += int(n)
	}
	if keep := r.cfg.KeyRetention; keep > 0 {
		before := now.Add(-keep)
		err := each(ctx, r, res, actionKeyDelete,
			func(after string, limit int) ([]*keyward.Key, error) {
				return r.cfg.Store.RetiredKeys(ctx, before, after, limit)
			}, keyID,
			func(k *keyward.Key) (bool, error) { return changed(r.cfg.Actions.DeleteRetiredKey(ctx, k, before)) })
		if err != nil {
			return err
		}
	}
	if keep := r.cfg.IPRuleRetention; keep > 0 {
		before := now.Add(-keep)
		return each(ctx, r, res, actionRuleDel,
			func(after string, limit int) ([]*keyward.IPRule, error) {
				return r.cfg.Store.ExpiredIPRules(ctx, before, after, limit)
			}, ruleID,
			func(rule *keyward.IPRule) (bool, error) { return changed(r.cfg.Actions.DeleteExpiredIPRule(ctx, rule)) })
	}
	return nil
}

// refill stores the credit refills that are due.
func (r *Runner) refill(ctx context.Context, res *Result) error {
	if r.cfg.Credits == nil {
		return nil
	}
	now := r.now()
	return each(ctx, r, res, actionRefilled,
		func(after string, limit int) ([]string, error) {
			return r.cfg.Store.CreditRefillsDue(ctx, now, after, limit)
		}, identity,
		func(id string) (bool, error) { return r.cfg.Credits.RefillCredits(ctx, id, now) })
}

// checkpoint publishes a signed checkpoint of the audit log's head.
func (r *Runner) checkpoint(ctx context.Context, res *Result) error {
	published, err := r.cfg.Actions.PublishAuditCheckpoint(ctx, r.now())
	if published {
		res.Changes[actionCheckpoint]++
	}
	return err
}
