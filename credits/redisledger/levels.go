package redisledger

import (
	"context"
	"fmt"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/credits"
)

// Shared credits (docs/abuse-protection.md#shared-limits): the counters of
// a user's and an account's meters live beside the keys' counters, at
// <prefix>{<account id>}:<id>, and are written back like them. A spend of
// several levels is one script over all their counters. On a Redis Cluster
// that script must find them in one hash slot: a user's and its account's
// counters always are, but a key's own counter sits in the slot of its id,
// so on a Cluster a key may carry credits of its own, or draw on shared
// ones, not both (such a spend answers UNAVAILABLE).

// SpendLevels implements keyward.CreditLedger. A counter that does not
// exist is created from the store, as Spend creates a key's.
func (l *Ledger) SpendLevels(ctx context.Context, k *keyward.Key, cost int64, now time.Time) (keyward.LevelSpend, error) {
	refs := k.CreditLevels()
	if len(refs) == 0 {
		return keyward.LevelSpend{}, nil
	}
	if err := credits.CheckCost(cost); err != nil {
		return keyward.LevelSpend{}, err
	}
	holders := make([]holder, len(refs))
	refills := make([]*keyward.CreditRefill, len(refs))
	for i, r := range refs {
		holders[i] = holder{r.Level, r.ID, k.AccountID}
		switch r.Level {
		case keyward.LevelUser:
			refills[i] = k.UserMeter.Credits.Refill
		case keyward.LevelAccount:
			refills[i] = k.AccountMeter.Credits.Refill
		default:
			refills[i] = k.Credits.Refill
		}
	}
	inits := make([]*keyward.Credits, len(refs))
	// Each round creates at most one missing counter; a level whose
	// credits the store no longer holds is left out.
	for range 2*len(refs) + 1 {
		cs, refused, missing, err := l.runSpendLevels(ctx, holders, refills, inits, cost, now)
		if err != nil {
			return keyward.LevelSpend{}, err
		}
		if missing < 0 {
			return credits.LevelOutcome(refs, cs, refused), nil
		}
		c, err := l.stored(ctx, holders[missing])
		if err != nil {
			return keyward.LevelSpend{}, err
		}
		if c == nil {
			holders = append(holders[:missing], holders[missing+1:]...)
			refs = append(refs[:missing], refs[missing+1:]...)
			refills = append(refills[:missing], refills[missing+1:]...)
			inits = append(inits[:missing], inits[missing+1:]...)
			if len(refs) == 0 {
				return keyward.LevelSpend{}, nil
			}
			continue
		}
		refills[missing], inits[missing] = c.Refill, c
	}
	return keyward.LevelSpend{}, keyward.Errorf(keyward.EINTERNAL, "redisledger: the credit counters of key %s were not created", k.ID)
}

// stored returns h's credits as the store holds them, nil if none.
func (l *Ledger) stored(ctx context.Context, h holder) (*keyward.Credits, error) {
	if h.Level == keyward.LevelKey {
		k, err := l.store.Key(ctx, h.ID)
		if err != nil {
			return nil, fmt.Errorf("redisledger: read key %s to create its credit counter: %w", h.ID, err)
		}
		return k.Credits, nil
	}
	m, err := l.store.Meter(ctx, h.ID)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisledger: read the shared credits of %s to create their counter: %w", h.ID, err)
	}
	return m.Credits, nil
}

// runSpendLevels runs the spendlevels script once. missing is the index of
// a counter that does not exist and has no init (nothing was spent), else
// -1; refused is the index of the first counter with too few, -1 when cost
// was spent.
func (l *Ledger) runSpendLevels(ctx context.Context, hs []holder, refills []*keyward.CreditRefill, inits []*keyward.Credits, cost int64, now time.Time) (cs []*keyward.Credits, refused, missing int, err error) {
	keys := make([]string, len(hs))
	args := make([]any, 3, 3+6*len(hs))
	args[0], args[1], args[2] = cost, now.UnixMicro(), l.ttlMS
	for i, h := range hs {
		keys[i] = l.counterKey(h)
		amount, interval, start := refillArgs(refills[i], now)
		args = append(args, amount, interval, start)
		if c := inits[i]; c != nil {
			args = append(args, c.Remaining, c.RefilledAt.UnixMicro(), c.Version)
		} else {
			args = append(args, -1, 0, 0)
		}
	}
	res, err := spendLevels.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil {
		return nil, -1, -1, unavailable(err, hs[0].ID)
	}
	if len(res) == 2 && res[0] == -1 {
		return nil, -1, int(res[1]) - 1, nil
	}
	if len(res) != 1+4*len(hs) {
		return nil, -1, -1, keyward.WrapError(keyward.EINTERNAL, fmt.Errorf("script returned %d values for %d counters", len(res), len(hs)), "redisledger: credits of key %s", hs[0].ID)
	}
	cs = make([]*keyward.Credits, len(hs))
	for i, h := range hs {
		r := res[1+4*i:]
		cs[i] = &keyward.Credits{Remaining: r[0], RefilledAt: time.UnixMicro(r[1]).UTC(), Version: r[2]}
		if r[3] == 1 || inits[i] != nil {
			l.markDirty(h)
		}
	}
	return cs, int(res[0]) - 1, -1, nil
}

// MeterCredits implements keyward.CreditLedger: the counter in Redis if
// there is one, else the store's credits, with the refills due at now.
func (l *Ledger) MeterCredits(ctx context.Context, id string, now time.Time) (*keyward.Credits, error) {
	m, err := l.store.Meter(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("redisledger: shared credits of %s: %w", id, err)
	}
	if m.Credits == nil {
		return nil, nil
	}
	vals, err := l.client.HMGet(ctx, l.counterKey(holder{m.Level, m.ID, m.AccountID}), "r", "t", "v").Result()
	if err != nil {
		return nil, unavailable(err, id)
	}
	c := *m.Credits
	if w, ok, err := parseCounter(id, vals); err != nil {
		return nil, err
	} else if ok {
		c.Remaining, c.RefilledAt, c.Version = w.Remaining, w.RefilledAt, w.Version
	}
	c = c.At(now)
	return &c, nil
}

// SetMeter implements keyward.CreditLedger: the counter is set (or
// removed) first, then the store, as SetCredits does for a key.
func (l *Ledger) SetMeter(ctx context.Context, ch keyward.Change, m *keyward.Meter, now time.Time) (*keyward.Meter, error) {
	out, err := credits.PrepareMeter(ctx, l.store, m, now)
	if err != nil {
		return nil, err
	}
	key := l.counterKey(holder{m.Level, m.ID, m.AccountID})
	if out.Credits == nil {
		if err := l.client.Del(ctx, key).Err(); err != nil {
			return nil, unavailable(err, m.ID)
		}
	} else {
		v, err := setScript.Run(ctx, l.client, []string{key}, out.Credits.Remaining, now.UnixMicro(), out.Credits.Version-1, l.ttlMS).Int64()
		if err != nil {
			return nil, unavailable(err, m.ID)
		}
		out.Credits.Version = v
	}
	if err := l.store.SetMeter(ctx, ch, out); err != nil {
		return nil, fmt.Errorf("redisledger: set shared limits of %s: %w", m.ID, err)
	}
	return out, nil
}

// DeleteMeter implements keyward.CreditLedger: the counter is removed,
// then the meter.
func (l *Ledger) DeleteMeter(ctx context.Context, ch keyward.Change, m *keyward.Meter) error {
	if err := l.client.Del(ctx, l.counterKey(holder{m.Level, m.ID, m.AccountID})).Err(); err != nil {
		return unavailable(err, m.ID)
	}
	if err := l.store.DeleteMeter(ctx, ch, m.ID); err != nil {
		return fmt.Errorf("redisledger: remove shared limits of %s: %w", m.ID, err)
	}
	return nil
}
