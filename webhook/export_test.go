package webhook

// Internals for tests.
var SendReason = sendReason

const (
	MaxLimited  = maxLimited
	SignalQueue = signalQueue
)

// Dropped returns how many signals were not announced.
func (s *Sender) Dropped() int64 { return s.dropped.Load() }
