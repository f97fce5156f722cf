// Package bustest is the executable specification of keyward.Bus: Run
// checks delivery, then runs two keyward instances (two verify.Engines with
// their bus.Broadcasters on one SQLite store) over the bus under test and,
// for a bus behind a network service, cuts the service with a proxy to check
// the outage behaviour. Every Bus implementation calls Run from its tests.
// Import it only from tests.
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// Backend describes the bus under test.
type Backend struct {
	// Target is the host:port of the service the buses talk through, for
	// the outage test, or "" for an in-process bus (no outage test).
	Target string
	// Open returns a Bus on channel that connects to addr (Target, or a
	// proxy in front of it; "" for an in-process bus) and logs to log.
	// Buses opened with one channel deliver to each other. Channels are
	// lower case letters, digits and underscores, unique to each test.
	// Open registers the cleanup of what it opens.
	Open func(t testing.TB, channel, addr string, log *slog.Logger) keyward.Bus
}

// waitTimeout bounds every wait for a condition.
const waitTimeout = 15 * time.Second

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	t.Run("Delivery", func(t *testing.T) { testDelivery(t, b) })
	t.Run("LargeInvalidation", func(t *testing.T) { testLarge(t, b) })
	t.Run("SubscribeStops", func(t *testing.T) { testStops(t, b) })
	t.Run("TwoInstances", func(t *testing.T) { testTwoInstances(t, b) })
	t.Run("Outage", func(t *testing.T) {
		if b.Target == "" {
			t.Skip("an in-process bus has no outage")
		}
		testOutage(t, b)
	})
}

// Channel returns a channel name no other test uses.
func Channel(t testing.TB) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	return "kwtest_" + hex.EncodeToString(b[:])
}

// recorder is a subscription whose events a test can wait for.
type recorder struct {
	mu           sync.Mutex
	received     []keyward.Invalidation
	connected    int
	disconnected []error
	done         chan error
}

// subscribe subscribes to bus until the test ends and waits until it is
// connected.
func subscribe(t testing.TB, bus keyward.Bus) *recorder {
	t.Helper()
	r := &recorder{done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		r.done <- bus.Subscribe(ctx, keyward.BusHandler{
			Receive: func(inv keyward.Invalidation) {
				r.mu.Lock()
				r.received = append(r.received, inv)
				r.mu.Unlock()
			},
			Connected: func() {
				r.mu.Lock()
				r.connected++
				r.mu.Unlock()
			},
			Disconnected: func(err error) {
				r.mu.Lock()
				r.disconnected = append(r.disconnected, err)
				r.mu.Unlock()
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Subscribe returned %v after its context was done, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Subscribe did not return within %v of its context being done", waitTimeout)
		}
	})
	waitFor(t, "the subscription to connect", func() bool { return r.state().connected > 0 })
	return r
}

type recorderState struct {
	received     []keyward.Invalidation
	connected    int
	disconnected int
}

func (r *recorder) state() recorderState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recorderState{slices.Clone(r.received), r.connected, len(r.disconnected)}
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func hashes(n int, seed byte) []keyward.KeyHash {
	hs := make([]keyward.KeyHash, n)
	for i := range hs {
		rand.Read(hs[i][:])
		hs[i][0] = seed
	}
	return hs
}

func testDelivery(t *testing.T, b Backend) {
	ch := Channel(t)
	log := slog.New(slog.DiscardHandler)
	pub, sub := b.Open(t, ch, b.Target, log), b.Open(t, ch, b.Target, log)
	own, other := subscribe(t, pub), subscribe(t, sub)
	// Another channel hears nothing.
	elseBus := b.Open(t, Channel(t), b.Target, log)
	elsewhere := subscribe(t, elseBus)

	want := []keyward.Invalidation{
		{Origin: "inst_a", KeyHashes: hashes(2, 1)},
		{Origin: "inst_a", AccountID: "acc_1"},
		{Origin: "inst_a", KeyHashes: hashes(1, 2), AccountID: "acc_2"},
	}
	for _, inv := range want {
		if err := pub.Publish(t.Context(), inv); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	for name, r := range map[string]*recorder{"the publisher's own subscription": own, "another subscription": other} {
		waitFor(t, name+" to receive every message", func() bool { return len(r.state().received) >= len(want) })
		got := r.state().received
		for _, w := range want {
			if !slices.ContainsFunc(got, func(g keyward.Invalidation) bool { return equal(g, w) }) {
				t.Errorf("%s did not receive %+v; got %+v", name, w, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s received %d messages, want %d", name, len(got), len(want))
		}
	}
	// A marker published on the other channel after the messages: once it
	// has arrived, any of them sent to that channel would have too.
	marker := keyward.Invalidation{Origin: "inst_b", AccountID: "acc_marker"}
	if err := elseBus.Publish(t.Context(), marker); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	waitFor(t, "the subscription on another channel to receive its marker", func() bool { return len(elsewhere.state().received) > 0 })
	if got := elsewhere.state().received; len(got) != 1 || !equal(got[0], marker) {
		t.Errorf("a subscription on another channel received %+v, want only its marker %+v", got, marker)
	}
	if s := other.state(); s.connected != 1 || s.disconnected != 0 {
		t.Errorf("a healthy subscription connected %d times and disconnected %d times, want 1 and 0", s.connected, s.disconnected)
	}
}

// testLarge: an invalidation of many keys (an account with many keys
// deleted) arrives whole, whatever the bus's message size limit; it may be
// split into several messages.
func testLarge(t *testing.T, b Backend) {
	ch := Channel(t)
	log := slog.New(slog.DiscardHandler)
	pub, sub := b.Open(t, ch, b.Target, log), b.Open(t, ch, b.Target, log)
	r := subscribe(t, sub)
	inv := keyward.Invalidation{Origin: "inst_a", KeyHashes: hashes(2000, 3), AccountID: "acc_big"}
	if err := pub.Publish(t.Context(), inv); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	seen := make(map[keyward.KeyHash]bool)
	account := false
	waitFor(t, "every hash", func() bool {
		clear(seen)
		account = false
		for _, got := range r.state().received {
			if got.Origin != inv.Origin {
				t.Fatalf("a part has origin %q, want %q", got.Origin, inv.Origin)
			}
			for _, h := range got.KeyHashes {
				seen[h] = true
			}
			account = account || got.AccountID == inv.AccountID
		}
		return len(seen) == len(inv.KeyHashes) && account
	})
}

func testStops(t *testing.T, b Backend) {
	bus := b.Open(t, Channel(t), b.Target, slog.New(slog.DiscardHandler))
	if err := bus.Subscribe(t.Context(), keyward.BusHandler{}); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("Subscribe without Receive = %v, want EINVALID", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	connected := make(chan struct{})
	go func() {
		done <- bus.Subscribe(ctx, keyward.BusHandler{
			Receive:   func(keyward.Invalidation) {},
			Connected: func() { close(connected) },
		})
	}()
	select {
	case <-connected:
	case <-time.After(waitTimeout):
		t.Fatalf("Subscribe did not connect within %v", waitTimeout)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Subscribe = %v when its context is done, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Subscribe did not return within %v of its context being done", waitTimeout)
	}
}

func equal(a, b keyward.Invalidation) bool {
	return a.Origin == b.Origin && a.AccountID == b.AccountID && slices.Equal(a.KeyHashes, b.KeyHashes)
}
