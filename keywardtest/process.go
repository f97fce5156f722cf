package keywardtest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// WaitTimeout bounds every wait of Lines.WaitLine.
const WaitTimeout = 30 * time.Second

// Lines is a concurrency-safe writer (a process's stdout or stderr, a
// logger's output) that keeps what is written and lets a test wait for a
// line without sleeping.
type Lines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed (and replaced) on every write
}

// NewLines returns an empty Lines.
func NewLines() *Lines { return &Lines{changed: make(chan struct{})} }

// Write implements io.Writer.
func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// String returns everything written so far.
func (l *Lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// WaitLine returns the first complete line that match accepts. It fails the
// test when exited (nil: never) is closed first, or after WaitTimeout.
func (l *Lines) WaitLine(t testing.TB, what string, exited <-chan struct{}, match func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		text, changed := l.buf.String(), l.changed
		l.mu.Unlock()
		if i := strings.LastIndexByte(text, '\n'); i >= 0 {
			for _, line := range strings.Split(text[:i], "\n") {
				if match(line) {
					return line
				}
			}
		}
		select {
		case <-changed:
		case <-exited:
			t.Fatalf("the process exited before %s; output:\n%s", what, text)
		case <-deadline.C:
			t.Fatalf("no %s after %s; output:\n%s", what, WaitTimeout, text)
		}
	}
}

// Binary is the keyward binary that end-to-end tests run, built once by
// their TestMain with BuildBinary.
type Binary struct {
	// Path is the built binary; empty when the tests cannot run.
	Path string
	skip string // why they cannot
	err  error  // why the build failed
	dir  string
}

// BuildBinary builds cmd/keyward into a temporary directory. Call it from
// TestMain after flag.Parse, and Remove when the tests are done. It builds
// nothing for "go test -list" or -short, and where the end-to-end tests
// cannot run (Windows: they send SIGTERM; no go command).
func BuildBinary() *Binary {
	b := &Binary{}
	goTool, lookErr := exec.LookPath("go")
	switch {
	case flag.Lookup("test.list") != nil && flag.Lookup("test.list").Value.String() != "":
		return b // go test -list runs no test
	case testing.Short():
		b.skip = "-short: not building keyward"
		return b
	case runtime.GOOS == "windows":
		b.skip = "the end-to-end tests send SIGTERM: Unix only"
		return b
	case lookErr != nil:
		b.skip = "no go command to build keyward with"
		return b
	}
	dir, err := os.MkdirTemp("", "keyward-e2e-")
	if err != nil {
		b.err = err
		return b
	}
	b.dir = dir
	path := filepath.Join(dir, "keyward")
	if out, err := exec.Command(goTool, "build", "-o", path, "github.com/keyward/keyward/cmd/keyward").CombinedOutput(); err != nil {
		b.err = fmt.Errorf("go build ./cmd/keyward: %v\n%s", err, out)
		return b
	}
	b.Path = path
	return b
}

// Require returns the binary's path, skipping the test when it cannot run
// and failing it when the build failed.
func (b *Binary) Require(t testing.TB) string {
	t.Helper()
	if b.err != nil {
		t.Fatal(b.err)
	}
	if b.Path == "" {
		t.Skip(b.skip)
	}
	return b.Path
}

// Remove deletes the built binary.
func (b *Binary) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
