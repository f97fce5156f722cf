package keyward

import (
	"net/netip"
	"time"
)

// SignalKind says what a Signal reports.
type SignalKind uint8

// The kinds of Signal.
const (
	// SignalFailure is one verification that answered neither VALID nor
	// UNAVAILABLE (MALFORMED, NOT_FOUND, REVOKED, IP_BLOCKED, ...).
	SignalFailure SignalKind = iota + 1
	// SignalNetwork is one valid use of a key from a network (an IPv4 /24
	// or IPv6 /64) other than that of its previous valid use.
	SignalNetwork
	// SignalUsage is Count valid uses of a key since its previous usage
	// signal, reported in batches (about once a second).
	SignalUsage
	// SignalQuotaExhausted is a valid use that spent a key's last credit:
	// its next use is refused with USAGE_EXCEEDED until a refill or
	// top-up.
	SignalQuotaExhausted
)

// Signal is a verification outcome reported off the hot path to abuse
// detection (brute-force blocking, anomaly rules). It holds no secret.
type Signal struct {
	Kind     SignalKind
	At       time.Time
	Decision Decision
	// IP is the client address; zero when unknown, and for SignalUsage.
	IP netip.Addr
	// KeyID and AccountID name the key, when one was found.
	KeyID     string
	AccountID string
	// Count is how many verifications the signal stands for: 1, or the
	// uses of a SignalUsage.
	Count int64
	// Limit is the rate limit that refused a SignalFailure of
	// DecisionRateLimited; zero otherwise.
	Limit RateLimit
}

// SignalSink receives signals. Signal is called on the verification path:
// it must not block (drop, and count what is dropped, when behind) and must
// not keep s beyond the call other than by copy.
type SignalSink interface {
	Signal(s Signal)
}
