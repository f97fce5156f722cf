package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/keyward/keyward"
	"github.com/keyward/keyward/bus/bustest"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/postgres"
)

// notifyBus returns a NotifyBus on channel of the test database, reached
// at addr (host:port) instead of the URL's address, closed when the test
// ends.
func notifyBus(t testing.TB, dbURL, channel, addr string, log *slog.Logger) *postgres.NotifyBus {
	t.Helper()
	u, err := url.Parse(withQuery(t, dbURL, "connect_timeout", "2"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	b, err := postgres.NewNotifyBus(u.String(), channel, log)
	if err != nil {
		t.Fatalf("NewNotifyBus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func dbAddr(t testing.TB, dbURL string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

func TestNotifyBus(t *testing.T) {
	t.Parallel()
	dbURL := keywardtest.PostgresURL(t)
	bustest.Run(t, bustest.Backend{
		Target: dbAddr(t, dbURL),
		Open: func(t testing.TB, channel, addr string, log *slog.Logger) keyward.Bus {
			return notifyBus(t, dbURL, channel, addr, log)
		},
	})
}

// TestNotifyBusSilentOutage: a listening connection that goes silent
// without being closed (a network partition) is found dead by the ping, and
// re-established once the network is back.
func TestNotifyBusSilentOutage(t *testing.T) {
	// Not parallel: its pings must be answered within 100ms.
	dbURL := keywardtest.PostgresURL(t)
	proxy := keywardtest.NewProxy(t, dbAddr(t, dbURL))
	b := notifyBus(t, dbURL, bustest.Channel(t), proxy.Addr(), slog.New(slog.DiscardHandler))
	b.SetPingInterval(100 * time.Millisecond)
	events := make(chan string, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Subscribe(ctx, keyward.BusHandler{
		Receive:      func(keyward.Invalidation) {},
		Connected:    func() { events <- "connected" },
		Disconnected: func(error) { events <- "disconnected" },
	})
	next := func(want string) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("event %q, want %q", got, want)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("no %q event", want)
		}
	}
	next("connected")
	// Idle but healthy through several pings, which the proxy sees
	// answered: no reconnection.
	pinged := proxy.Answers() + 5
	keywardtest.WaitFor(t, "five pings answered", func() bool { return proxy.Answers() >= pinged })
	select {
	case e := <-events:
		t.Fatalf("event %q on a healthy idle connection", e)
	default:
	}
	proxy.Stall()
	next("disconnected")
	proxy.Restore()
	next("connected")
}

func TestNotifyPayloadsSplit(t *testing.T) {
	t.Parallel()
	hashes := make([]keyward.KeyHash, 1000)
	for i := range hashes {
		rand.Read(hashes[i][:])
	}
	inv := keyward.Invalidation{Origin: "inst_0123456789", AccountID: "acc_0123456789", KeyHashes: hashes}
	for _, max := range []int{7999, 500} {
		payloads, err := postgres.NotifyPayloads(inv, max)
		if err != nil {
			t.Fatal(err)
		}
		if len(payloads) < 2 {
			t.Fatalf("max %d: %d payload(s), want a split", max, len(payloads))
		}
		var got []keyward.KeyHash
		for _, p := range payloads {
			if len(p) > max {
				t.Errorf("max %d: a payload of %d bytes", max, len(p))
			}
			var part keyward.Invalidation
			if err := json.Unmarshal([]byte(p), &part); err != nil {
				t.Fatal(err)
			}
			if part.Origin != inv.Origin || part.AccountID != inv.AccountID {
				t.Errorf("a part lost its origin or account: %+v", part)
			}
			got = append(got, part.KeyHashes...)
		}
		if len(got) != len(hashes) {
			t.Fatalf("max %d: %d hashes across the parts, want %d", max, len(got), len(hashes))
		}
		for i := range got {
			if got[i] != hashes[i] {
				t.Fatalf("max %d: hash %d differs", max, i)
			}
		}
	}
	small := keyward.Invalidation{Origin: "inst_a", KeyHashes: hashes[:3]}
	if p, err := postgres.NotifyPayloads(small, 7999); err != nil || len(p) != 1 {
		t.Errorf("a small invalidation gives %d payloads, %v; want 1", len(p), err)
	}
	if _, err := postgres.NotifyPayloads(keyward.Invalidation{Origin: string(make([]byte, 100)), KeyHashes: hashes[:1]}, 50); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Errorf("an invalidation whose frame does not fit = %v, want EINVALID", err)
	}
}

func TestNewNotifyBusRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, channel string }{
		{"postgres://h/db", "Not-A-Channel"},
		{"postgres://h/db", "1abc"},
		{"postgres://h:notaport/db", ""},
	} {
		if _, err := postgres.NewNotifyBus(tc.url, tc.channel, nil); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("NewNotifyBus(%q, %q) = %v, want EINVALID", tc.url, tc.channel, err)
		}
	}
}
