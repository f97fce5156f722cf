package postgres

import (
	"time"

	"github.com/keyward/keyward"
)

// SetPingInterval shortens the listener's health check, so a test can find
// a silent connection dead quickly. Call it before Subscribe.
func (b *NotifyBus) SetPingInterval(d time.Duration) { b.pingInterval = d }

// NotifyPayloads exposes the splitting of an invalidation into payloads.
func NotifyPayloads(inv keyward.Invalidation, max int) ([]string, error) {
	return notifyPayloads(inv, max)
}
