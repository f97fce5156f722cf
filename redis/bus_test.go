package redis_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/bus/bustest"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/redis"
	goredis "github.com/redis/go-redis/v9"
)

// open returns a client for the test Redis at addr (host:port) instead of
// the address of KEYWARD_TEST_REDIS_URL, closed when the test ends.
func open(t testing.TB, rawURL, addr string) goredis.UniversalClient {
	t.Helper()
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("KEYWARD_TEST_REDIS_URL: %v", err)
	}
	opts.Addr = addr
	c := goredis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestBus(t *testing.T) {
	rawURL := keywardtest.RedisURL(t)
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatalf("KEYWARD_TEST_REDIS_URL: %v", err)
	}
	if err := open(t, rawURL, opts.Addr).Ping(t.Context()).Err(); err != nil {
		t.Fatalf("Redis at KEYWARD_TEST_REDIS_URL: %v", err)
	}
	bustest.Run(t, bustest.Backend{
		Target: opts.Addr,
		Open: func(t testing.TB, channel, addr string, log *slog.Logger) keyward.Bus {
			return redis.NewBus(open(t, rawURL, addr), channel, log)
		},
	})
}

// TestBusPublishUnavailable: a publish Redis does not take is EUNAVAILABLE.
func TestBusPublishUnavailable(t *testing.T) {
	rawURL := keywardtest.RedisURL(t)
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := keywardtest.NewProxy(t, opts.Addr)
	b := redis.NewBus(open(t, rawURL, proxy.Addr()), bustest.Channel(t), nil)
	if err := b.Publish(t.Context(), keyward.Invalidation{AccountID: "acc_1"}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	proxy.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := b.Publish(ctx, keyward.Invalidation{AccountID: "acc_1"}); keyward.ErrorCode(err) != keyward.EUNAVAILABLE {
		t.Fatalf("Publish with Redis cut = %v, want EUNAVAILABLE", err)
	}
}

// TestBusIgnoresBadMessages: garbage on the channel is skipped, and what
// follows is delivered.
func TestBusIgnoresBadMessages(t *testing.T) {
	rawURL := keywardtest.RedisURL(t)
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	client := open(t, rawURL, opts.Addr)
	ch := bustest.Channel(t)
	b := redis.NewBus(client, ch, slog.New(slog.DiscardHandler))
	got := make(chan keyward.Invalidation, 10)
	connected := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Subscribe(ctx, keyward.BusHandler{
		Receive:   func(inv keyward.Invalidation) { got <- inv },
		Connected: func() { close(connected) },
	})
	<-connected
	for _, p := range []string{"not json", `{"hashes":["short"]}`} {
		if err := client.Publish(ctx, ch, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, keyward.Invalidation{AccountID: "acc_1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case inv := <-got:
		if inv.AccountID != "acc_1" {
			t.Fatalf("received %+v, want the valid message", inv)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the valid message after the bad ones was not delivered")
	}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		url  string
		kind string // "client", "cluster", "" for an error
	}{
		{"redis://127.0.0.1:6379/0", "client"},
		{"rediss://user:pw@redis.example:6380/2?dial_timeout=3s", "client"},
		{"unix:///run/redis.sock?db=1", "client"},
		{"redis://:pw@s1:26379/0?master_name=mymaster&addr=s2:26379&password=secret", "client"},
		{"redis://n1:6379?cluster=true&addr=n2:6379", "cluster"},
		{"redis://n1:6379?cluster=yes", ""},
		{"redis://n1:6379?cluster=true&master_name=m", ""},
		{"redis://h:6379?addr=h2:6379", ""}, // several hosts: say which kind
		{"redis://h:6379?no_such_option=1", ""},
		{"http://h:6379", ""},
		{"redis://user:hunter2@h:port", ""},
	} {
		c, err := redis.Open(tc.url)
		if tc.kind == "" {
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Errorf("Open(%s) = %v, want EINVALID", redis.Redact(tc.url), err)
			} else if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open's error shows the password: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%s): %v", redis.Redact(tc.url), err)
			continue
		}
		_, cluster := c.(*goredis.ClusterClient)
		if cluster != (tc.kind == "cluster") {
			t.Errorf("Open(%s) = %T, want a %s", tc.url, c, tc.kind)
		}
		c.Close()
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:hunter2@h:6379/0":                    "redis://u:xxxxx@h:6379/0",
		"redis://h:6379/0?master_name=m&password=hunt2": "redis://h:6379/0?master_name=m&password=xxxxx",
		"redis://h:6379/0":                              "redis://h:6379/0",
		"redis://u:p@h:po rt":                           "(invalid redis URL)",
	} {
		if got := redis.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBusSilentOutage: a connection that goes silent without being closed
// (a network partition) is found dead by the ping, and re-established once
// the network is back.
func TestBusSilentOutage(t *testing.T) {
	rawURL := keywardtest.RedisURL(t)
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := keywardtest.NewProxy(t, opts.Addr)
	b := redis.NewBus(open(t, rawURL, proxy.Addr()), bustest.Channel(t), slog.New(slog.DiscardHandler))
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
		case <-time.After(10 * time.Second):
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
	select {
	case e := <-events:
		t.Fatalf("unexpected event %q", e)
	default:
	}
}
