package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/httpapi"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const specURL = "https://keyward.test/openapi.json"

// spec is the parsed OpenAPI document and a compiler holding it, shared by
// every test.
var spec = sync.OnceValues(func() (*openapiSpec, error) {
	raw := httpapi.OpenAPI()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	res, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(specURL, res); err != nil {
		return nil, err
	}
	return &openapiSpec{doc: doc, compiler: c, schemas: map[string]*jsonschema.Schema{}}, nil
})

type openapiSpec struct {
	doc      map[string]any
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

// pointer escapes a JSON pointer token.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// lookup walks the document along a JSON pointer.
func (s *openapiSpec) lookup(ptr string) (any, bool) {
	var v any = s.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return v, true
}

// deref follows a local $ref of an object at ptr (a response or request
// body object, which are not schemas) and returns the final pointer.
func (s *openapiSpec) deref(ptr string) string {
	for range 10 {
		v, _ := s.lookup(ptr)
		m, _ := v.(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return ptr
		}
		ptr = strings.TrimPrefix(ref, "#")
	}
	return ptr
}

// schema compiles the schema at ptr.
func (s *openapiSpec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.schemas[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(specURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	s.schemas[ptr] = sch
	return sch, nil
}

// operations returns "METHOD /path" for every operation in the document.
func (s *openapiSpec) operations() []string {
	var ops []string
	for path, item := range s.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "post", "put", "patch", "delete", "head", "options", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

func loadSpec(t *testing.T) *openapiSpec {
	t.Helper()
	s, err := spec()
	if err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	return s
}

// TestOpenAPIRoutes checks that the document describes exactly the routes
// the server registers.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := loadSpec(t)
	ops := s.operations()
	var routes []string
	for _, r := range e.srv.Routes() {
		documented := routeOperations(r, ops)
		if len(documented) == 0 {
			t.Errorf("route %q is not in openapi.json", r)
		}
		routes = append(routes, documented...)
	}
	for _, op := range ops {
		if !slices.Contains(routes, op) {
			t.Errorf("openapi.json has %q, which the server does not serve", op)
		}
	}

	// The served document is the embedded one, and it is valid JSON.
	r := e.send(request{method: "GET", path: "/openapi.json"})
	if r.status != http.StatusOK || !bytes.Equal(r.body, httpapi.OpenAPI()) {
		t.Errorf("GET /openapi.json: status %d, body differs from the embedded document", r.status)
	}
	if v, _ := s.doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}

	// Every schema in components compiles.
	for name := range s.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		if _, err := s.schema(pointer("components", "schemas", name)); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	// Every operation has an operationId, a summary and responses.
	seen := map[string]bool{}
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		v, _ := s.lookup(pointer("paths", path, strings.ToLower(method)))
		o := v.(map[string]any)
		id, _ := o["operationId"].(string)
		if id == "" || seen[id] {
			t.Errorf("%s: operationId %q missing or repeated", op, id)
		}
		seen[id] = true
		if o["summary"] == nil || o["responses"] == nil {
			t.Errorf("%s: summary or responses missing", op)
		}
	}
}

// routeOperations returns the operations of ops ("GET /v1/keys/{id}") that
// route pattern r serves: a pattern's trailing wildcard "{name...}" is the
// document's "{name}", and a pattern without a method serves every method
// documented for its path.
func routeOperations(r string, ops []string) []string {
	r = strings.ReplaceAll(r, "...}", "}")
	if strings.Contains(r, " ") {
		if slices.Contains(ops, r) {
			return []string{r}
		}
		return nil
	}
	var out []string
	for _, op := range ops {
		if _, path, _ := strings.Cut(op, " "); path == r {
			out = append(out, op)
		}
	}
	return out
}

// validateExchanges checks each recorded response (and the body of each
// request that succeeded) against the document: its status must be
// documented for the operation with the media type received, and its body
// must match the schema.
func validateExchanges(t *testing.T, routes []string, xs []exchange) {
	t.Helper()
	s := loadSpec(t)
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r, http.NotFoundHandler())
	}
	for _, x := range xs {
		req, err := http.NewRequest(x.method, "http://keyward.test"+x.path, nil)
		if err != nil {
			t.Errorf("recorded request %s %s: %v", x.method, x.path, err)
			continue
		}
		_, pattern := mux.Handler(req)
		if pattern == "" {
			// Unknown routes and methods: only the problem shape applies.
			validateBody(t, s, x, pointer("components", "schemas", "Problem"))
			continue
		}
		method, path, ok := strings.Cut(pattern, " ")
		path = strings.ReplaceAll(path, "...}", "}")
		if !ok { // a pattern for every method: methods the document
			// cannot name (PROPFIND) answer as GET does
			method, path = x.method, strings.ReplaceAll(pattern, "...}", "}")
			if _, documented := s.lookup(pointer("paths", path, strings.ToLower(method))); !documented {
				method = "GET"
			}
		}
		opPtr := pointer("paths", path, strings.ToLower(method))
		status := strconv.Itoa(x.status)
		respPtr := s.deref(opPtr + pointer("responses", status))
		if _, ok := s.lookup(respPtr); !ok {
			t.Errorf("%s %s answered %d, which openapi.json does not document for %s (body %.200s)", x.method, x.path, x.status, pattern, x.body)
			continue
		}
		content, hasContent := s.lookup(respPtr + "/content")
		if !hasContent {
			if len(x.body) != 0 {
				t.Errorf("%s %s: %d has a body, but openapi.json documents none", x.method, x.path, x.status)
			}
			continue
		}
		mt, _, _ := mime.ParseMediaType(x.contentType)
		if _, ok := content.(map[string]any)[mt]; !ok {
			t.Errorf("%s %s: %d with Content-Type %q, not documented", x.method, x.path, x.status, x.contentType)
			continue
		}
		if strings.Contains(mt, "json") {
			validateBody(t, s, x, respPtr+pointer("content", mt, "schema"))
		}
		if x.status < 300 && len(x.reqBody) > 0 {
			bodyPtr := s.deref(opPtr + "/requestBody")
			if _, ok := s.lookup(bodyPtr); !ok {
				t.Errorf("%s %s: a request body was accepted, but openapi.json documents none", x.method, x.path)
				continue
			}
			validateJSON(t, s, fmt.Sprintf("request of %s %s", x.method, x.path), x.reqBody, bodyPtr+pointer("content", "application/json", "schema"))
		}
	}
}

func validateBody(t *testing.T, s *openapiSpec, x exchange, ptr string) {
	t.Helper()
	validateJSON(t, s, fmt.Sprintf("%d response of %s %s", x.status, x.method, x.path), x.body, ptr)
}

func validateJSON(t *testing.T, s *openapiSpec, what string, body []byte, ptr string) {
	t.Helper()
	sch, err := s.schema(ptr)
	if err != nil {
		t.Errorf("%s: compile %s: %v", what, ptr, err)
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: body is not JSON: %v: %.200s", what, err, body)
		return
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("%s does not match %s: %v\nbody: %.500s", what, ptr, err, body)
	}
}
