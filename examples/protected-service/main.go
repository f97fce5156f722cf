// Command protected-service is a small notes API protected by keyward in
// two lines: a verifier asking a remote keyward (with a cache), and the
// net/http middleware in front of the service's mux.
//
//	KEYWARD_URL=http://127.0.0.1:8080 KEYWARD_API_KEY=<a key with keys:verify> \
//	    go run ./examples/protected-service --listen 127.0.0.1:8081
//
// Clients then call it with their own keyward keys:
//
//	curl -H "Authorization: Bearer $KEY" -d '{"text":"hello"}' http://127.0.0.1:8081/notes
//	curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8081/notes
//
// GET /notes needs the notes:read permission, POST /notes notes:write;
// / and /healthz are open. Notes are kept in memory, per account.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/middleware"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve on")
	keywardURL := flag.String("keyward-url", firstNonEmpty(os.Getenv("KEYWARD_URL"), client.DefaultURL), "URL of the keyward server (env KEYWARD_URL)")
	verifierKey := flag.String("verifier-key", "", "keyward key the service verifies with: root, or one holding keys:verify (env KEYWARD_API_KEY, preferred: flags show in ps)")
	flag.Parse()
	key := firstNonEmpty(*verifierKey, os.Getenv("KEYWARD_API_KEY"))
	if key == "" {
		fmt.Fprintln(os.Stderr, "protected-service: no verifier key: set KEYWARD_API_KEY (or --verifier-key) to a keyward key that may verify keys")
		os.Exit(2)
	}

	// The two lines that protect the service: ask keyward (remembering
	// answers for a few seconds), and refuse requests without a valid key.
	verifier := client.NewCachedVerifier(client.New(*keywardURL, keyward.Secret(key)), client.CacheConfig{})
	handler := middleware.New(verifier, middleware.WithExempt("/", "/healthz"))(newNotes().routes())

	srv := &http.Server{Addr: *listen, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	slog.Info("notes service listening", "addr", *listen, "keyward", *keywardURL)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "protected-service: %v\n", err)
		os.Exit(1)
	}
}

// note is one note, stamped with the identity that wrote it.
type note struct {
	ID        int       `json:"id"`
	Text      string    `json:"text"`
	CreatedBy string    `json:"created_by"` // the key id
	Agent     string    `json:"agent,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// notes keeps each account's notes in memory.
type notes struct {
	mu     sync.Mutex
	next   int
	byAcct map[string][]note
}

func newNotes() *notes { return &notes{byAcct: map[string][]note{}} }

// routes is the service's own mux: nothing in it knows about API keys
// except that RequirePermissions names what each route needs.
func (n *notes) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "notes service: GET /notes (notes:read), POST /notes {\"text\": ...} (notes:write), with Authorization: Bearer <keyward key>")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /notes", middleware.RequirePermissions("notes:read")(http.HandlerFunc(n.list)))
	mux.Handle("POST /notes", middleware.RequirePermissions("notes:write")(http.HandlerFunc(n.create)))
	return mux
}

func (n *notes) list(w http.ResponseWriter, r *http.Request) {
	id := keyward.IdentityFrom(r.Context())
	n.mu.Lock()
	out := append([]note{}, n.byAcct[id.AccountID]...)
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (n *notes) create(w http.ResponseWriter, r *http.Request) {
	id := keyward.IdentityFrom(r.Context())
	var in struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.Text == "" {
		http.Error(w, `body must be {"text": "..."}`, http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	n.next++
	// The identity comes from the verified key, never from the body.
	nt := note{ID: n.next, Text: in.Text, CreatedBy: id.KeyID, Agent: id.Agent, CreatedAt: time.Now().UTC()}
	n.byAcct[id.AccountID] = append(n.byAcct[id.AccountID], nt)
	n.mu.Unlock()
	writeJSON(w, http.StatusCreated, nt)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
