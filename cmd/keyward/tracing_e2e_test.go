package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// otlpSpan is one span an OTLP receiver got, flattened.
type otlpSpan struct {
	name, traceID, spanID, parentID, kind string
	attrs                                 map[string]string
	events                                []string
	// values holds every attribute value of the span, its events and its
	// resource, for the scan for secrets.
	values []string
}

// otlpReceiver collects the spans exported to it, over HTTP (POST
// /v1/traces) or gRPC (the collector's TraceService).
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []otlpSpan
	requests atomic.Int64
}

func (o *otlpReceiver) add(req *coltracepb.ExportTraceServiceRequest) {
	o.requests.Add(1)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		var resource []string
		for _, kv := range rs.GetResource().GetAttributes() {
			resource = append(resource, anyValue(kv.Value))
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := otlpSpan{name: s.Name, traceID: hex.EncodeToString(s.TraceId), spanID: hex.EncodeToString(s.SpanId),
					parentID: hex.EncodeToString(s.ParentSpanId), kind: s.Kind.String(), attrs: map[string]string{}, values: resource}
				for _, kv := range s.Attributes {
					sp.attrs[kv.Key] = anyValue(kv.Value)
					sp.values = append(sp.values, kv.Key+"="+anyValue(kv.Value))
				}
				for _, ev := range s.Events {
					sp.events = append(sp.events, ev.Name)
					for _, kv := range ev.Attributes {
						sp.values = append(sp.values, kv.Key+"="+anyValue(kv.Value))
					}
				}
				sp.values = append(sp.values, s.Name, s.GetStatus().GetMessage())
				o.spans = append(o.spans, sp)
			}
		}
	}
}

// Export implements the gRPC TraceService.
func (o *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	o.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// ServeHTTP implements OTLP/HTTP with protobuf bodies.
func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.add(&req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	}
	return v.String()
}

// startOTLP starts a receiver for protocol (grpc or http/protobuf) and
// returns it with its endpoint URL.
func startOTLP(t *testing.T, protocol string) (*otlpReceiver, string) {
	t.Helper()
	o := &otlpReceiver{}
	if protocol == "grpc" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(srv, o)
		go srv.Serve(ln)
		t.Cleanup(srv.Stop)
		return o, "http://" + ln.Addr().String()
	}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return o, srv.URL
}

// startBinaryEnv is startBinary with env added to its environment.
func startBinaryEnv(t *testing.T, data string, env []string, args ...string) *proc {
	t.Helper()
	return startBinaryWith(t, data, baseEnv(env...), args...)
}

// headerRecorder is an HTTP server that answers 200 and keeps the
// traceparent of each request.
type headerRecorder struct {
	mu     sync.Mutex
	parent []string
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.parent = append(h.parent, r.Header.Get("Traceparent"))
	h.mu.Unlock()
	io.Copy(io.Discard, r.Body)
}

func (h *headerRecorder) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.parent...)
}

// tracedRequest sends method url with a sampled traceparent of trace
// traceID and parent span parentID, as key.
func tracedRequest(t *testing.T, method, url, key, traceID, parentID string, body io.Reader) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// tracingConfig writes a config with a gateway to upstream and webhooks to
// loopback, polled often.
func tracingConfig(t *testing.T, upstream string) string {
	t.Helper()
	config := filepath.Join(t.TempDir(), "keyward.yaml")
	if err := os.WriteFile(config, []byte(`gateway_listen: 127.0.0.1:0
gateway:
  routes:
    - prefix: /
      upstream: `+upstream+`
webhooks:
  allow_networks: [127.0.0.0/8]
  poll_interval: 20ms
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return config
}

// TestTracingOTLP runs keyward serve exporting to an OTLP receiver the
// test started, over each protocol, and checks what arrives: the admin
// API's, verification's, the gateway's and a webhook delivery's spans,
// their parents (the caller's traceparent; the upstream and the webhook
// receiver get a child's), their attributes, trace ids in the request's
// log lines, and no key or secret in any attribute or log line.
func TestTracingOTLP(t *testing.T) {
	requireBinary(t)
	for _, protocol := range []string{"http/protobuf", "grpc"} {
		t.Run(strings.ReplaceAll(protocol, "/", "-"), func(t *testing.T) { testTracingOTLP(t, protocol) })
	}
}

func testTracingOTLP(t *testing.T, protocol string) {
	recv, endpoint := startOTLP(t, protocol)
	upstream := &headerRecorder{}
	up := httptest.NewServer(upstream)
	defer up.Close()
	hooks := &headerRecorder{}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	p := startBinaryEnv(t, filepath.Join(t.TempDir(), "data"), []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
		// Every root span, so the webhook delivery (no caller) is traced
		// too; the requests carry sampled traceparents.
		"OTEL_TRACES_SAMPLER=parentbased_always_on", "OTEL_SERVICE_NAME=keyward-test",
	}, "--config", tracingConfig(t, up.URL))
	if !strings.Contains(p.stderr.String(), `"msg":"tracing: exporting spans over OTLP"`) || !strings.Contains(p.stderr.String(), `"protocol":"`+protocol+`"`) {
		t.Errorf("no log line says where spans go:\n%s", p.stderr)
	}
	gateway := gatewayURL(t, p)
	root := rootKey(t, p)

	var hook keyward.CreatedWebhookEndpoint
	binaryJSON(t, p.url, root, &hook, "webhooks", "create", "--url", hookSrv.URL+"/hook?token=hook-url-token", "--event", keyward.EventKeyCreated)
	var acc keyward.Account
	binaryJSON(t, p.url, root, &acc, "accounts", "create", "--name", "acme")
	var key keyward.CreatedKey
	binaryJSON(t, p.url, root, &key, "keys", "create", "--account", acc.ID, "--role", "account_admin", "--name", "traced",
		"--secret-meta", `{"dsn":"postgres://app:secret-meta-password@db/app"}`)
	waitDeliveries(t, p.url, root, hook.Endpoint.ID, func(ds []*keyward.WebhookDelivery) bool {
		return len(ds) == 1 && ds[0].State == keyward.DeliveryDelivered
	})

	const (
		adminTrace   = "0af7651916cd43dd8448eb211c80319c"
		keyAsIDTrace = "1af7651916cd43dd8448eb211c80319c"
		verifyTrace  = "2af7651916cd43dd8448eb211c80319c"
		gwTrace      = "3af7651916cd43dd8448eb211c80319c"
		refusedTrace = "4af7651916cd43dd8448eb211c80319c"
		callerSpan   = "b7ad6b7169203331"
	)
	if s := tracedRequest(t, "GET", p.url+"/v1/keys/"+key.ID, root, adminTrace, callerSpan, nil); s != http.StatusOK {
		t.Fatalf("GET key: %d", s)
	}
	if s := tracedRequest(t, "GET", p.url+"/v1/keys/"+key.Secret, root, keyAsIDTrace, callerSpan, nil); s != http.StatusNotFound {
		t.Fatalf("GET key by its secret: %d", s)
	}
	if s := tracedRequest(t, "POST", p.url+"/v1/keys/verify", root, verifyTrace, callerSpan, strings.NewReader(`{"key":"`+key.Secret+`"}`)); s != http.StatusOK {
		t.Fatalf("verify: %d", s)
	}
	if s := tracedRequest(t, "GET", gateway+"/work", key.Secret, gwTrace, callerSpan, nil); s != http.StatusOK {
		t.Fatalf("gateway: %d", s)
	}
	badKey, _ := apikey.Generate(apikey.PrefixUser)
	if s := tracedRequest(t, "GET", p.url+"/v1/whoami", badKey.Reveal(), refusedTrace, callerSpan, nil); s != http.StatusUnauthorized {
		t.Fatalf("whoami with an unknown key: %d", s)
	}
	p.stop(t) // flushes the last spans

	recv.mu.Lock()
	spans := recv.spans
	recv.mu.Unlock()
	byID := map[string]otlpSpan{}
	for _, s := range spans {
		byID[s.spanID] = s
	}
	// find returns the one span named name in trace, failing otherwise.
	find := func(trace, name string) otlpSpan {
		t.Helper()
		var found []otlpSpan
		for _, s := range spans {
			if s.traceID == trace && s.name == name {
				found = append(found, s)
			}
		}
		if len(found) != 1 {
			var names []string
			for _, s := range spans {
				if s.traceID == trace {
					names = append(names, s.name)
				}
			}
			t.Fatalf("trace %s: %d spans named %q, want 1; its spans: %v", trace, len(found), name, names)
		}
		return found[0]
	}
	wantParent := func(child, parent otlpSpan) {
		t.Helper()
		if child.parentID != parent.spanID {
			t.Errorf("span %q: parent %s, want %q (%s)", child.name, child.parentID, parent.name, parent.spanID)
		}
	}

	// The admin API: a server span named by the route pattern, the child
	// of the caller's span, with the caller's authentication inside.
	get := find(adminTrace, "GET /v1/keys/{id}")
	if get.parentID != callerSpan || get.kind != "SPAN_KIND_SERVER" || get.attrs["http.route"] != "GET /v1/keys/{id}" ||
		get.attrs["http.response.status_code"] != "200" || get.attrs["http.request.method"] != "GET" {
		t.Errorf("admin span: %+v", get)
	}
	auth := find(adminTrace, "keyward.verify")
	wantParent(auth, get)
	if auth.attrs["keyward.decision"] != "VALID" || len(auth.events) != 1 || !strings.HasPrefix(auth.events[0], "cache.") {
		t.Errorf("authentication span: %+v", auth)
	}
	// The store's queries (SQLite here) are client spans of the request.
	queried := false
	for _, s := range spans {
		if s.traceID == adminTrace && s.name == "sqlite SELECT" && s.parentID == get.spanID {
			queried = s.kind == "SPAN_KIND_CLIENT" && s.attrs["db.system.name"] == "sqlite"
		}
	}
	if !queried {
		t.Errorf("no sqlite SELECT client span under %q", get.name)
	}
	// A key pasted where an id belongs: the span has the pattern only.
	find(keyAsIDTrace, "GET /v1/keys/{id}")

	// Verification: the caller's key and the verified key (cached when
	// it was created).
	vs := find(verifyTrace, "POST /v1/keys/verify")
	if vs.parentID != callerSpan {
		t.Errorf("verify span parent %s, want the caller's %s", vs.parentID, callerSpan)
	}
	verified := false
	for _, s := range spans {
		if s.traceID == verifyTrace && s.name == "keyward.verify" {
			wantParent(s, vs)
			verified = verified || s.attrs["keyward.key_id"] == key.ID
		}
	}
	if !verified {
		t.Errorf("no verification span of %s", key.ID)
	}

	// The gateway: its server span is the caller's child, the upstream
	// call its child, and the upstream got that call's traceparent.
	gw := find(gwTrace, "gateway /")
	if gw.parentID != callerSpan || gw.attrs["http.response.status_code"] != "200" {
		t.Errorf("gateway span: %+v", gw)
	}
	wantParent(find(gwTrace, "keyward.verify"), gw)
	call := find(gwTrace, "gateway upstream")
	wantParent(call, gw)
	if call.kind != "SPAN_KIND_CLIENT" || call.attrs["server.address"] != "127.0.0.1" || call.attrs["http.response.status_code"] != "200" {
		t.Errorf("upstream call span: %+v", call)
	}
	if got, want := upstream.got(), "00-"+gwTrace+"-"+call.spanID+"-01"; len(got) != 1 || got[0] != want {
		t.Errorf("upstream got traceparent %q, want [%s]", got, want)
	}

	// The webhook delivery: a root span, its POST a child, and the
	// receiver got the POST's traceparent.
	var deliver otlpSpan
	for _, s := range spans {
		if s.name == "keyward.webhook.deliver" {
			deliver = s
		}
	}
	if deliver.spanID == "" || deliver.parentID != "" || deliver.attrs["keyward.webhook.event_type"] != keyward.EventKeyCreated ||
		deliver.attrs["keyward.webhook.endpoint_id"] != hook.Endpoint.ID || deliver.attrs["keyward.webhook.state"] != string(keyward.DeliveryDelivered) {
		t.Fatalf("webhook delivery span: %+v", deliver)
	}
	post := find(deliver.traceID, "webhook POST")
	wantParent(post, deliver)
	if got, want := hooks.got(), "00-"+deliver.traceID+"-"+post.spanID+"-01"; len(got) != 1 || got[0] != want {
		t.Errorf("webhook receiver got traceparent %q, want [%s]", got, want)
	}

	// The log line of the refused request carries its trace and span ids.
	refused := find(refusedTrace, "GET /v1/whoami")
	if !strings.Contains(p.stderr.String(), `"trace_id":"`+refusedTrace+`"`) {
		t.Errorf("no log line with the refused request's trace_id:\n%s", p.stderr)
	}
	// An unknown key misses the cache and asks the store.
	refusal := find(refusedTrace, "keyward.verify")
	wantParent(refusal, refused)
	if refusal.attrs["keyward.decision"] != "NOT_FOUND" || len(refusal.events) != 1 || refusal.events[0] != "cache.miss" {
		t.Errorf("verification of an unknown key: %+v", refusal)
	}
	lookup := find(refusedTrace, "keyward.store.key_by_hash")
	wantParent(lookup, refusal)
	if lookup.attrs["keyward.found"] != "false" {
		t.Errorf("store lookup: %+v", lookup)
	}
	if !strings.Contains(p.stderr.String(), `"span_id":"`+refusal.spanID+`"`) && !strings.Contains(p.stderr.String(), `"span_id":"`+refused.spanID+`"`) {
		t.Errorf("no log line with the refused request's span_id:\n%s", p.stderr)
	}

	// No key, secret or URL token anywhere.
	secrets := map[string]string{"root key": root, "key": key.Secret, "unknown key": badKey.Reveal(),
		"webhook secret": hook.Secret, "webhook URL token": "hook-url-token", "secret metadata": "secret-meta-password"}
	for _, s := range spans {
		for _, v := range s.values {
			for what, secret := range secrets {
				if strings.Contains(v, secret) {
					t.Errorf("span %q holds the %s: %q", s.name, what, v)
				}
			}
		}
		if s.attrs["service.name"] != "" {
			t.Errorf("span %q has a service.name attribute of its own", s.name)
		}
	}
	for what, secret := range secrets {
		if strings.Contains(p.stderr.String(), secret) {
			t.Errorf("the log holds the %s", what)
		}
	}
}

// TestTracingOff: without the OTEL_* variables that ask for it, or with
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none beside an endpoint,
// keyward exports nothing and contacts no receiver, and the gateway passes
// a client's traceparent to the upstream as it came.
func TestTracingOff(t *testing.T) {
	requireBinary(t)
	recv, endpoint := startOTLP(t, "http/protobuf")
	for _, env := range [][]string{
		nil,
		{"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_SDK_DISABLED=true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_TRACES_EXPORTER=none"},
	} {
		upstream := &headerRecorder{}
		up := httptest.NewServer(upstream)
		p := startBinaryEnv(t, filepath.Join(t.TempDir(), "data"), env, "--config", tracingConfig(t, up.URL))
		gateway := gatewayURL(t, p)
		root := rootKey(t, p)
		const sent = "00-5af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		req, _ := http.NewRequest("GET", gateway+"/work", nil)
		req.Header.Set("Authorization", "Bearer "+root)
		req.Header.Set("Traceparent", sent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		p.stop(t)
		up.Close()
		if got := upstream.got(); len(got) != 1 || got[0] != sent {
			t.Errorf("env %q: upstream got traceparent %q, want %q as sent", env, got, sent)
		}
		if strings.Contains(p.stderr.String(), "exporting spans") || strings.Contains(p.stderr.String(), `"trace_id"`) {
			t.Errorf("env %q: tracing is on:\n%s", env, p.stderr)
		}
	}
	if n := recv.requests.Load(); n != 0 {
		t.Errorf("the receiver was contacted %d times with tracing off", n)
	}
}
