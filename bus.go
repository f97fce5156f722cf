package keyward

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Invalidation tells other instances that cached state is stale: the keys
// with the given hashes, and every key of an account, must be reloaded from
// the store on their next verification. It carries no key state, only names,
// so a receiver always reloads the committed state.
//
// Its JSON form is compact and stable (hashes in unpadded base64url):
//
//	{"origin":"inst_…","hashes":["q83v…"],"account_id":"acc_…"}
//
// Decoders ignore unknown fields, so fields can be added later.
type Invalidation struct {
	// Origin names the instance that published it, so that instance can
	// ignore its own messages (it has already applied the change).
	Origin string
	// KeyHashes are keys whose cached entries, positive or negative, are
	// stale.
	KeyHashes []KeyHash
	// AccountID, when set, names an account whose keys are all stale.
	AccountID string
}

// Empty reports whether inv invalidates nothing.
func (inv Invalidation) Empty() bool { return len(inv.KeyHashes) == 0 && inv.AccountID == "" }

type invalidationJSON struct {
	Origin    string   `json:"origin,omitempty"`
	Hashes    []string `json:"hashes,omitempty"`
	AccountID string   `json:"account_id,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (inv Invalidation) MarshalJSON() ([]byte, error) {
	w := invalidationJSON{Origin: inv.Origin, AccountID: inv.AccountID}
	if len(inv.KeyHashes) > 0 {
		w.Hashes = make([]string, len(inv.KeyHashes))
		for i, h := range inv.KeyHashes {
			w.Hashes[i] = base64.RawURLEncoding.EncodeToString(h[:])
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler. A hash that is not 32 bytes of
// base64url is an error: a receiver must not silently skip a stale key.
func (inv *Invalidation) UnmarshalJSON(b []byte) error {
	var w invalidationJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	out := Invalidation{Origin: w.Origin, AccountID: w.AccountID}
	if len(w.Hashes) > 0 {
		out.KeyHashes = make([]KeyHash, len(w.Hashes))
		for i, s := range w.Hashes {
			n, err := base64.RawURLEncoding.Decode(out.KeyHashes[i][:], []byte(s))
			if err != nil || n != len(KeyHash{}) || base64.RawURLEncoding.EncodedLen(n) != len(s) {
				return fmt.Errorf("invalidation: hash %d is not 32 bytes of unpadded base64url", i)
			}
		}
	}
	*inv = out
	return nil
}

// Bus carries invalidations between the keyward instances that share a
// store (docs/architecture.md, verification pipeline). Implementations: bus.Local (in process),
// redis.Bus (pub/sub), postgres.NotifyBus (LISTEN/NOTIFY), sqlite.Bus (a
// polled table, between the processes on one SQLite file).
//
// Delivery is at most once, in no guaranteed order, and best effort: a
// message published while a subscriber is disconnected is lost for it. The
// cache TTL bounds how long a lost message can leave a stale entry, and a
// subscriber drops its whole cache whenever its subscription is established
// (BusHandler.Connected), so an outage costs reloads, never stale answers
// beyond the TTL.
type Bus interface {
	// Publish sends inv to every subscriber, the publisher's own
	// subscription included. It returns EUNAVAILABLE (or another error)
	// when the message could not be handed to the bus; the caller logs it
	// and carries on, since the change it describes is already committed.
	Publish(ctx context.Context, inv Invalidation) error
	// Subscribe delivers invalidations to h until ctx is done, then returns
	// nil. It connects, reconnects after every failure (with backoff) and
	// reports each transition to h, so it returns an error only when it
	// cannot subscribe at all (EINVALID for a bad argument).
	Subscribe(ctx context.Context, h BusHandler) error
}

// BusHandler receives what a Bus subscription delivers. Its functions are
// called from one goroutine, one at a time, and must return quickly.
type BusHandler struct {
	// Receive is called with each invalidation, the subscriber's own
	// included. Required. The hashes must not be modified.
	Receive func(Invalidation)
	// Connected is called each time the subscription is established: the
	// first time and after every outage. Messages published while the
	// subscriber was not listening are lost, so the receiver drops its
	// whole cache here. Optional.
	Connected func()
	// Disconnected is called once when the subscription is lost, or when
	// the first attempt to establish it fails, with the cause. The bus keeps
	// retrying and calls Connected when it succeeds. Optional.
	Disconnected func(err error)
}

// Resubscribe runs the reconnect loop every Bus.Subscribe shares: it calls
// session until ctx ends, with exponential backoff and jitter between
// failed sessions (from minBackoff to maxBackoff), and calls h.Disconnected
// once per outage. session reports whether it got as far as subscribing
// (and so called h.Connected), which resets the backoff. Resubscribe
// returns nil when ctx ends.
func Resubscribe(ctx context.Context, h BusHandler, minBackoff, maxBackoff time.Duration, log *slog.Logger,
	session func(context.Context, BusHandler) (established bool, err error)) error {
	down := false // Disconnected was called and Connected not since
	backoff := minBackoff
	for {
		established, err := session(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		if established {
			down, backoff = false, minBackoff
		}
		log.Debug("bus subscription failed; retrying", "err", err, "retry_in", backoff)
		if !down {
			down = true
			if h.Disconnected != nil {
				h.Disconnected(err)
			}
		}
		// Jitter spreads the reconnections of many instances.
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
