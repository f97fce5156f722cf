package admin

import (
	"context"
	"time"

	"github.com/keyward/keyward"
)

// Jobs makes the lifecycle jobs' changes (lifecycle.Actions), each through
// the service of its domain, as keyward itself: key expiries, rotation
// notices and retention (Keys), expired IP rules (Abuse), due credentials
// (Credentials) and audit checkpoints (Audit).
type Jobs struct {
	keys  *Keys
	abuse *Abuse
	creds *Credentials
	audit *Audit
}

// Jobs returns the lifecycle jobs' changes made by s.
func (s Services) Jobs() Jobs {
	return Jobs{keys: s.Keys, abuse: s.Abuse, creds: s.Credentials, audit: s.Audit}
}

// AnnounceExpired is Keys.AnnounceExpired.
func (j Jobs) AnnounceExpired(ctx context.Context, k *keyward.Key, now time.Time) error {
	return j.keys.AnnounceExpired(ctx, k, now)
}

// AnnounceRotationDue is Keys.AnnounceRotationDue.
func (j Jobs) AnnounceRotationDue(ctx context.Context, d *keyward.RotationDue, now time.Time) error {
	return j.keys.AnnounceRotationDue(ctx, d, now)
}

// ScheduleExpiry is Keys.ScheduleExpiry.
func (j Jobs) ScheduleExpiry(ctx context.Context, d *keyward.RotationDue, now time.Time) (*keyward.Key, error) {
	return j.keys.ScheduleExpiry(ctx, d, now)
}

// DeleteRetiredKey is Keys.DeleteRetiredKey.
func (j Jobs) DeleteRetiredKey(ctx context.Context, k *keyward.Key, before time.Time) error {
	return j.keys.DeleteRetiredKey(ctx, k, before)
}

// DeleteExpiredIPRule is Abuse.DeleteExpiredIPRule.
func (j Jobs) DeleteExpiredIPRule(ctx context.Context, r *keyward.IPRule) error {
	return j.abuse.DeleteExpiredIPRule(ctx, r)
}

// RetireDueCredential is Credentials.RetireDueCredential.
func (j Jobs) RetireDueCredential(ctx context.Context, c *keyward.ManagedCredential, now time.Time) error {
	return j.creds.RetireDueCredential(ctx, c, now)
}

// PublishAuditCheckpoint is Audit.PublishAuditCheckpoint.
func (j Jobs) PublishAuditCheckpoint(ctx context.Context, now time.Time) (bool, error) {
	return j.audit.PublishAuditCheckpoint(ctx, now)
}
