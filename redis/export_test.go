package redis

import "time"

// SetPingInterval shortens the subscription's health check, so a test can
// find a silent connection dead quickly. Call it before Subscribe.
func (b *Bus) SetPingInterval(d time.Duration) { b.pingInterval = d }
