package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
)

// openapiJSON is the OpenAPI 3.1 document of this API, written by hand;
// a test keeps it in step with the routes and the responses.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns a copy of the OpenAPI 3.1 document served at
// /openapi.json.
func OpenAPI() []byte { return bytes.Clone(openapiJSON) }

// Health is the body of /healthz and of a ready /readyz.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
}

// healthz says the process is up; it touches nothing.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, http.StatusOK, "application/json", Health{Status: "ok", Version: s.version})
}

// readyz says whether the store answers: 503 while it does not. A store
// that answers but refuses writes because its storage is full keeps the
// instance ready (keys still verify, and every instance shares the store,
// so a 503 would take them all out of a balancer at once): the status says
// "storage_full" and the metrics show it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.store != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.readyTimeout)
		err := s.store.Ping(ctx)
		cancel()
		if err != nil {
			s.writeError(w, r, keyward.WrapError(keyward.EUNAVAILABLE, err, "the store is not reachable"))
			return
		}
	}
	status := "ready"
	if sr, ok := s.store.(keyward.StorageReporter); ok && sr.Storage().Full() {
		status = "storage_full"
	}
	writeBody(w, http.StatusOK, "application/json", Health{Status: status, Version: s.version})
}

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openapiJSON)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(openapiJSON)
}

func (s *Server) serveDocs(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(s.docs)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(s.docs)
}

// docsPage renders the OpenAPI document with Redoc loaded from a CDN, and
// lists the operations in plain HTML first, so the page is useful where the
// CDN cannot be reached.
var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} {{.Version}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; }
#fallback { max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
#fallback table { border-collapse: collapse; width: 100%; }
#fallback td, #fallback th { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
#fallback code { font-size: .95em; }
</style>
</head>
<body>
<div id="fallback">
<h1>{{.Title}} {{.Version}}</h1>
<p>{{.Description}}</p>
<p>The machine-readable specification is at <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
<table>
<thead><tr><th>Method</th><th>Path</th><th>Summary</th></tr></thead>
<tbody>
{{range .Operations}}<tr><td><code>{{.Method}}</code></td><td><code>{{.Path}}</code></td><td>{{.Summary}}</td></tr>
{{end}}</tbody>
</table>
</div>
<div id="redoc"></div>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>
<script>
if (window.Redoc) {
  Redoc.init("openapi.json", {}, document.getElementById("redoc"), function () {
    document.getElementById("fallback").style.display = "none";
  });
}
</script>
</body>
</html>
`))

type docsOperation struct{ Method, Path, Summary string }

// renderDocs builds the docs page from the OpenAPI document.
func renderDocs(spec []byte) ([]byte, error) {
	var doc struct {
		Info struct {
			Title, Version, Description string
		}
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, err
	}
	var ops []docsOperation
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			var op struct{ Summary string }
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, err
			}
			ops = append(ops, docsOperation{Method: strings.ToUpper(method), Path: path, Summary: op.Summary})
		}
	}
	slices.SortFunc(ops, func(a, b docsOperation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return slices.Index(httpMethods, strings.ToLower(a.Method)) - slices.Index(httpMethods, strings.ToLower(b.Method))
	})
	var buf bytes.Buffer
	err := docsPage.Execute(&buf, map[string]any{
		"Title":       doc.Info.Title,
		"Version":     doc.Info.Version,
		"Description": doc.Info.Description,
		"Operations":  ops,
	})
	return buf.Bytes(), err
}

// httpMethods are the operation keys of an OpenAPI path item, in display
// order.
var httpMethods = []string{"get", "post", "put", "patch", "delete", "head", "options", "trace"}
