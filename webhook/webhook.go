// Package webhook delivers keyward's events to webhook endpoints.
//
// Events reach the outbox (keyward.WebhookStore) in the transaction of the
// change they announce. A Sender, running on every instance, fans them out
// to the endpoints that want them, claims due deliveries with a lease and
// POSTs each one, signed by the Standard Webhooks scheme (package
// signature). A delivery that fails is retried with exponential backoff and
// jitter, or after the Retry-After the endpoint asked for, up to
// Config.MaxAttempts; an endpoint answering 410 Gone is disabled, and its
// deliveries, the one that met the 410 included, wait for it to be enabled
// again. Redirects are not followed, and internal addresses are refused
// (Guard).
//
// Delivery is at least once: an instance that dies after a receiver got a
// delivery but before recording it sends it again after the lease. Every
// attempt of an event carries the same webhook-id, by which receivers drop
// repeats.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/tracing"
	"github.com/keyward/keyward/webhook/signature"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Opener opens sealed endpoint secrets (keyring.Keyring).
type Opener interface {
	Open(version int, sealed, additionalData []byte) ([]byte, error)
}

// Settings are what keyward.yaml's webhooks block configures besides
// the networks endpoints may be on. Zero values take the defaults named.
type Settings struct {
	// Timeout bounds one attempt, connection to response (10s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how many attempts a delivery gets before it fails
	// for good (12: with the default backoff, about 1.5 days).
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBase is the delay after the first failed attempt, doubled after
	// each further one (30s), up to RetryMax (6h). Each delay is jittered:
	// a random time between half of it and all of it.
	RetryBase time.Duration `yaml:"retry_base"`
	RetryMax  time.Duration `yaml:"retry_max"`
	// PollInterval is how often the outbox is checked (1s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Concurrency is how many deliveries are sent at once (8).
	Concurrency int `yaml:"concurrency"`
}

// Config configures a Sender. Zero durations and counts take the defaults
// named.
type Config struct {
	// Store holds the outbox, the endpoints and the deliveries.
	Store keyward.WebhookStore
	// Opener opens the endpoints' sealed secrets.
	Opener Opener
	// Guard decides which addresses deliveries may reach.
	Guard Guard
	// Settings are the timeouts, retries and concurrency of deliveries.
	Settings
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider traces each attempt as the span
	// keyward.webhook.deliver with the POST as its client span (package
	// tracing); the receiver gets its traceparent. Nil: no tracing.
	TracerProvider trace.TracerProvider
}

// maxRetryAfter caps the wait an endpoint's Retry-After may ask for.
const maxRetryAfter = 24 * time.Hour

// Validate returns EINVALID for a setting out of range; the message names
// the setting as keyward.yaml spells it in its webhooks: block.
func (c *Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Timeout}, {"retry_base", c.RetryBase}, {"retry_max", c.RetryMax}, {"poll_interval", c.PollInterval}} {
		if d.v < 0 {
			return keyward.Errorf(keyward.EINVALID, "%s is negative: give a duration such as 10s, or leave it out for the default", d.name)
		}
	}
	if c.MaxAttempts < 0 || c.Concurrency < 0 {
		return keyward.Errorf(keyward.EINVALID, "max_attempts and concurrency must be positive: leave them out for the defaults")
	}
	if c.RetryBase > 0 && c.RetryMax > 0 && c.RetryMax < c.RetryBase {
		return keyward.Errorf(keyward.EINVALID, "retry_max (%s) is below retry_base (%s): raise retry_max", c.RetryMax, c.RetryBase)
	}
	return nil
}

func (c *Config) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Timeout, 10*time.Second)
	def(&c.RetryBase, 30*time.Second)
	def(&c.RetryMax, 6*time.Hour)
	def(&c.PollInterval, time.Second)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 12
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// batch bounds the events dispatched, and the events of signals
// appended, at a time.
const batch = 100

// Sender delivers events (see the package comment). It is a
// prometheus.Collector.
type Sender struct {
	cfg    Config
	client *http.Client
	lease  time.Duration
	log    *slog.Logger
	tracer trace.Tracer // nil: tracing is off

	attempts [outcomeCount]atomic.Int64
	// signals queues the signals of the hot path that become events
	// (Signal) for the next RunOnce; dropped counts those it had no room
	// for.
	signals chan keyward.Signal
	dropped atomic.Int64

	// limited coalesces key.rate_limited: a key and limit announced at
	// t are not announced again before until[...] (t plus the limit's
	// window). At most maxLimited entries; earliest is the soonest of
	// their ends, before which pruning frees nothing.
	limitedMu sync.Mutex
	limited   map[limitedKey]time.Time
	earliest  time.Time
}

// limitedKey names a rate limit of a key.
type limitedKey struct{ keyID, limit string }

// signalQueue bounds the signals waiting for RunOnce.
const signalQueue = 1024

// maxLimited bounds the keys and limits key.rate_limited remembers as
// announced within their window: about a megabyte. A key refused when it
// is full is not announced, and counted as dropped.
const maxLimited = 10000

// Signal implements keyward.SignalSink: a SignalQuotaExhausted becomes a
// quota.exhausted event, and a refusal by a rate limit (SignalFailure of
// DecisionRateLimited) a key.rate_limited event, at most one per key and
// limit per window of the limit on this instance, written to the outbox by
// the next RunOnce. Other signals are ignored. It never blocks: when the
// queue is full the signal is dropped and counted.
func (s *Sender) Signal(sig keyward.Signal) {
	switch {
	case sig.Kind == keyward.SignalQuotaExhausted:
	case sig.Kind == keyward.SignalFailure && sig.Decision == keyward.DecisionRateLimited && sig.KeyID != "":
		if !s.firstLimited(sig) {
			return
		}
	default:
		return
	}
	select {
	case s.signals <- sig:
	default:
		s.dropped.Add(1)
	}
}

// firstLimited reports whether sig is the first refusal of its key by its
// limit within the limit's window, and if so remembers it.
func (s *Sender) firstLimited(sig keyward.Signal) bool {
	k := limitedKey{sig.KeyID, sig.Limit.Name}
	s.limitedMu.Lock()
	defer s.limitedMu.Unlock()
	if until, ok := s.limited[k]; ok && sig.At.Before(until) {
		return false
	}
	if len(s.limited) >= maxLimited && !sig.At.Before(s.earliest) {
		s.earliest = time.Time{}
		for key, until := range s.limited {
			switch {
			case !sig.At.Before(until):
				delete(s.limited, key)
			case s.earliest.IsZero() || until.Before(s.earliest):
				s.earliest = until
			}
		}
	}
	if _, ok := s.limited[k]; !ok && len(s.limited) >= maxLimited {
		s.dropped.Add(1)
		return false
	}
	until := sig.At.Add(max(time.Duration(sig.Limit.Window), time.Second))
	if s.earliest.IsZero() || until.Before(s.earliest) {
		s.earliest = until
	}
	s.limited[k] = until
	return true
}

// announceSignals writes the events of the queued signals to the outbox.
func (s *Sender) announceSignals(ctx context.Context) error {
	var events []*keyward.Event
	for len(events) < batch {
		var sig keyward.Signal
		select {
		case sig = <-s.signals:
		default:
			return s.appendSignaled(ctx, events)
		}
		typ, data := keyward.EventQuotaExhausted, map[string]any{"key_id": sig.KeyID, "account_id": sig.AccountID, "remaining": 0}
		if sig.Kind != keyward.SignalQuotaExhausted {
			typ, data = keyward.EventKeyRateLimited, map[string]any{"key_id": sig.KeyID, "account_id": sig.AccountID, "limit": sig.Limit}
		}
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		events = append(events, &keyward.Event{ID: apikey.NewID("msg"), Type: typ,
			Time: sig.At.UTC().Truncate(time.Microsecond), AccountID: sig.AccountID, Data: b})
	}
	return s.appendSignaled(ctx, events)
}

// appendSignaled writes the events of signals to the outbox; when it
// cannot, they are counted as dropped.
func (s *Sender) appendSignaled(ctx context.Context, events []*keyward.Event) error {
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.cfg.Store.AppendEvents(ctx, events) })
	if err != nil {
		s.dropped.Add(int64(len(events)))
	}
	return err
}

// New returns a Sender, or EINVALID for a bad Config.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil || cfg.Opener == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "webhook: Config.Store and Config.Opener are required")
	}
	cfg.defaults()
	dialer := &net.Dialer{Timeout: cfg.Timeout, Control: cfg.Guard.control}
	transport := &http.Transport{
		// No proxy: it would dial the target instead of the guarded dialer.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	tracer := tracing.Tracer(cfg.TracerProvider)
	return &Sender{
		cfg:    cfg,
		tracer: tracer,
		client: &http.Client{
			Transport: tracing.Transport(tracer, "webhook POST", transport),
			Timeout:   cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		// A lease outlives the attempt it covers, with room for the
		// database round trips around it.
		lease:   2*cfg.Timeout + 5*time.Second,
		log:     cfg.Logger.With("component", "webhook"),
		signals: make(chan keyward.Signal, signalQueue),
		limited: make(map[limitedKey]time.Time),
	}, nil
}

// Run sends deliveries until ctx is done, checking the outbox every
// PollInterval. Errors are logged and retried on the next tick. When ctx
// is done it writes the events of the queued signals (quota.exhausted,
// key.rate_limited) to the outbox, for the next start to deliver.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "delivering webhooks", "err", err)
		}
		select {
		case <-ctx.Done():
			if err := s.announceSignals(context.WithoutCancel(ctx)); err != nil {
				s.log.ErrorContext(ctx, "writing quota.exhausted and key.rate_limited events at shutdown: they are lost", "err", err)
			}
			return
		case <-t.C:
		}
	}
}

// StoreTimeout bounds each of the sender's store calls: a statement lost in
// a network partition (nothing tells either side) would otherwise hold its
// database connection forever. A delivery whose outcome could not be
// written is sent again when its lease ends, as after a crash.
const StoreTimeout = 30 * time.Second

// bounded runs call with ctx bounded by StoreTimeout.
func bounded[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, StoreTimeout)
	defer cancel()
	return call(ctx)
}

// RunOnce writes the events of the queued signals to the outbox,
// dispatches the outbox's new events and sends the deliveries due now,
// until none is left, and returns how many attempts it made.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	for len(s.signals) > 0 {
		if err := s.announceSignals(ctx); err != nil {
			return 0, err
		}
	}
	for {
		n, err := bounded(ctx, func(ctx context.Context) (int, error) { return s.cfg.Store.DispatchEvents(ctx, s.cfg.Now(), batch) })
		if err != nil {
			return 0, err
		}
		if n < batch {
			break
		}
	}
	// Claim only what is sent at once, so every delivery is attempted
	// well within its lease.
	total := 0
	for {
		ds, err := bounded(ctx, func(ctx context.Context) ([]*keyward.WebhookDelivery, error) {
			return s.cfg.Store.ClaimDeliveries(ctx, s.cfg.Now(), s.lease, s.cfg.Concurrency)
		})
		if err != nil || len(ds) == 0 {
			return total, err
		}
		total += len(ds)
		var wg sync.WaitGroup
		errs := make([]error, len(ds))
		for i, d := range ds {
			wg.Go(func() {
				o := s.attempt(ctx, d)
				_, errs[i] = bounded(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, s.cfg.Store.FinishDelivery(ctx, o) })
			})
		}
		wg.Wait()
		for _, err := range errs {
			// ENOTFOUND: the endpoint was deleted meanwhile, or the lease
			// was taken over.
			if err != nil && keyward.ErrorCode(err) != keyward.ENOTFOUND {
				return total, err
			}
		}
		if len(ds) < s.cfg.Concurrency {
			return total, nil
		}
	}
}

// Payload is the body of a delivery: the event's type, time and data, as
// the Standard Webhooks spec suggests.
type Payload struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// spanDeliver names the span of one delivery attempt.
const spanDeliver = "keyward.webhook.deliver"

// attempt sends d once and returns what to record, in a span when
// tracing. The span records ids, the event type, the attempt's number and
// outcome: never the endpoint's URL (it may carry a token), its secret or
// the payload.
func (s *Sender) attempt(ctx context.Context, d *keyward.WebhookDelivery) keyward.DeliveryOutcome {
	if s.tracer == nil {
		return s.try(ctx, d)
	}
	ctx, span := s.tracer.Start(ctx, spanDeliver, trace.WithAttributes(
		attribute.String("keyward.webhook.event_id", d.EventID),
		attribute.String("keyward.webhook.event_type", d.Event.Type),
		attribute.String("keyward.webhook.endpoint_id", d.EndpointID),
		attribute.Int("keyward.webhook.attempt", d.Attempts+1)))
	o := s.try(ctx, d)
	span.SetAttributes(attribute.String("keyward.webhook.state", string(o.State)))
	if o.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", o.Status))
	}
	if o.State != keyward.DeliveryDelivered {
		tracing.Error(span, "the attempt failed: "+PublicError(o.Status, o.Error))
	}
	span.End()
	return o
}

// try is attempt without its span.
func (s *Sender) try(ctx context.Context, d *keyward.WebhookDelivery) keyward.DeliveryOutcome {
	start := s.cfg.Now()
	o := keyward.DeliveryOutcome{EventID: d.EventID, EndpointID: d.EndpointID, LeaseUntil: d.LeaseUntil, Time: start}
	status, retryAfter, err := s.send(ctx, d, start)
	o.Duration, o.Status = s.cfg.Now().Sub(start), status
	switch {
	case err == nil:
		o.State, o.NextAttemptAt = keyward.DeliveryDelivered, start
		s.attempts[outcomeDelivered].Add(1)
		return o
	case status == http.StatusGone:
		// The delivery waits with the endpoint's others, due at once, and
		// goes out when the endpoint is enabled again.
		o.Error, o.State, o.NextAttemptAt = err.Error(), keyward.DeliveryPending, start
		o.DisableEndpoint = "the endpoint answered 410 Gone: fix the receiver, then enable the endpoint again"
		s.attempts[outcomeRetry].Add(1)
		s.log.WarnContext(ctx, "webhook endpoint answered 410 Gone: disabled it; its deliveries wait for it to be enabled again",
			"endpoint", d.EndpointID, "event", d.EventID)
		return o
	}
	o.Error = err.Error()
	if d.Attempts+1 >= s.cfg.MaxAttempts {
		o.State, o.NextAttemptAt = keyward.DeliveryFailed, start
		s.attempts[outcomeFailed].Add(1)
		s.log.WarnContext(ctx, "webhook delivery failed for good", "endpoint", d.EndpointID, "event", d.EventID,
			"attempts", d.Attempts+1, "err", err)
		return o
	}
	delay := retryAfter
	if delay <= 0 {
		delay = Backoff(s.cfg.RetryBase, s.cfg.RetryMax, d.Attempts+1, rand.Float64())
	}
	o.State, o.NextAttemptAt = keyward.DeliveryPending, start.Add(delay)
	s.attempts[outcomeRetry].Add(1)
	s.log.InfoContext(ctx, "webhook delivery attempt failed; will retry", "endpoint", d.EndpointID, "event", d.EventID,
		"attempts", d.Attempts+1, "next_attempt_at", o.NextAttemptAt, "err", err)
	return o
}

// Backoff returns the delay before attempt n+1 after n failed ones: base
// doubled n-1 times, at most max, jittered to between half of it and all
// of it by r in [0, 1).
func Backoff(base, max time.Duration, n int, r float64) time.Duration {
	d := max
	if n-1 < 62 && base <= max>>(n-1) {
		d = base << (n - 1)
	}
	return d/2 + time.Duration(r*float64(d/2))
}

// send POSTs d's event, signed, and returns the response status, the
// delay a Retry-After header asks for, and an error unless the endpoint
// answered 2xx. An error without a response starts with one of the
// reasons PublicError shows.
func (s *Sender) send(ctx context.Context, d *keyward.WebhookDelivery, now time.Time) (int, time.Duration, error) {
	secretText, err := s.cfg.Opener.Open(d.Endpoint.SecretVersion, d.Endpoint.SealedSecret, keyward.WebhookSecretAD(d.EndpointID))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: opening the endpoint's secret: %w", reasonInternal, err)
	}
	secret, err := signature.ParseSecret(string(secretText))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", reasonInternal, err)
	}
	body, err := json.Marshal(Payload{Type: d.Event.Type, Timestamp: d.Event.Time, Data: d.Event.Data})
	if err != nil {
		return 0, 0, fmt.Errorf("%s: encoding the payload: %w", reasonInternal, err)
	}
	if err := s.cfg.Guard.CheckURL(d.Endpoint.URL); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", reasonRefused, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: building the request: %w", reasonInternal, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyward-webhooks")
	signature.SetHeaders(req.Header, secret, d.EventID, now, body)
	resp, err := s.client.Do(req)
	if err != nil {
		var ke *keyward.Error
		if errors.As(err, &ke) {
			return 0, 0, fmt.Errorf("%s: %w", reasonRefused, ke) // the guard refused the address
		}
		return 0, 0, fmt.Errorf("%s: sending: %w", sendReason(err), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, 0, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return resp.StatusCode, 0, fmt.Errorf("%s to %q: %s", resp.Status, resp.Header.Get("Location"), redirectAdvice)
	}
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), now), fmt.Errorf("endpoint answered %s", resp.Status)
}

// The reasons an attempt got no response, as every reader of the delivery
// log sees them (PublicError); the errors of send start with them.
const (
	reasonInternal = "keyward could not prepare the delivery"
	reasonRefused  = "the endpoint's address is not allowed (an internal network)"
	reasonDNS      = "the endpoint's host name could not be resolved"
	reasonTimeout  = "the endpoint did not answer in time"
	reasonTLS      = "the TLS handshake with the endpoint failed"
	reasonConnect  = "the endpoint could not be reached"
	// reasonUnknown stands for an error that starts with none of them.
	reasonUnknown = "the attempt failed before the endpoint answered"
)

var reasons = []string{reasonInternal, reasonRefused, reasonDNS, reasonTimeout, reasonTLS, reasonConnect}

// redirectAdvice ends the error of a 3xx answer.
const redirectAdvice = "redirects are not followed; point the endpoint at the final URL"

// sendReason classifies an error of the HTTP client.
func sendReason(err error) string {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		alert   tls.AlertError
		header  tls.RecordHeaderError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &dnsErr):
		return reasonDNS
	case errors.As(err, &certErr), errors.As(err, &alert), errors.As(err, &header):
		return reasonTLS
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return reasonTimeout
	}
	return reasonConnect
}

// PublicError returns what a reader other than root may see of a
// delivery's last error (keyward.WebhookDelivery.LastError) with its last
// status: the endpoint's answer, or the kind of failure without the
// detail (resolver and internal addresses, keyward's own errors), which
// the log and root's readers keep. Empty for no error.
func PublicError(status int, lastError string) string {
	switch {
	case lastError == "":
		return ""
	case status >= 300 && status < 400:
		return fmt.Sprintf("endpoint answered %d %s: %s", status, http.StatusText(status), redirectAdvice)
	case status != 0:
		return fmt.Sprintf("endpoint answered %d %s", status, http.StatusText(status))
	}
	for _, r := range reasons {
		if strings.HasPrefix(lastError, r+": ") {
			return r
		}
	}
	return reasonUnknown
}

// retryAfter returns the delay a Retry-After header value asks for
// (seconds, or an HTTP date), at most maxRetryAfter; 0 if none or invalid.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// The outcomes of attempts, for metrics.
const (
	outcomeDelivered = iota
	outcomeRetry
	outcomeFailed
	outcomeCount
)

var (
	outcomeNames = [outcomeCount]string{"delivered", "retry", "failed"}
	attemptsDesc = prometheus.NewDesc("keyward_webhook_attempts_total",
		"Webhook delivery attempts by outcome: delivered, retry (failed, tried again later, or after a 410 Gone when the endpoint is enabled again), failed (given up).",
		[]string{"outcome"}, nil)
	droppedDesc = prometheus.NewDesc("keyward_webhook_quota_events_dropped_total",
		"quota.exhausted and key.rate_limited events not announced: the queue to the outbox, or the memory of rate-limited keys, was full, or the outbox could not be written.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Sender) Describe(ch chan<- *prometheus.Desc) {
	ch <- attemptsDesc
	ch <- droppedDesc
}

// Collect implements prometheus.Collector.
func (s *Sender) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.dropped.Load()))
	for i, name := range outcomeNames {
		ch <- prometheus.MustNewConstMetric(attemptsDesc, prometheus.CounterValue, float64(s.attempts[i].Load()), name)
	}
}
