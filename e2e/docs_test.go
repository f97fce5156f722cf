package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsMatchTestdata keeps the configurations docs/forward-auth.md
// shows equal to those the end-to-end tests run: each follows a comment
// "<!-- e2e/testdata/NAME -->" as the next fenced code block.
func TestDocsMatchTestdata(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "forward-auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"keyward.yaml", "nginx-keyward.conf", "Caddyfile"} {
		want, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := docBlock(string(doc), "<!-- e2e/testdata/"+name+" -->")
		if !ok {
			t.Errorf("docs/forward-auth.md has no code block after <!-- e2e/testdata/%s -->", name)
			continue
		}
		if got != string(want) {
			t.Errorf("docs/forward-auth.md shows another %s than e2e/testdata/%s (which the tests run): copy the file into the doc\n--- doc:\n%s\n--- testdata:\n%s", name, name, got, want)
		}
	}
}

// docBlock returns the content of the first fenced code block after marker
// in doc.
func docBlock(doc, marker string) (string, bool) {
	_, after, ok := strings.Cut(doc, marker+"\n")
	if !ok {
		return "", false
	}
	after = strings.TrimLeft(after, "\n")
	if !strings.HasPrefix(after, "```") {
		return "", false
	}
	_, body, ok := strings.Cut(after, "\n") // the fence line
	if !ok {
		return "", false
	}
	body, _, ok = strings.Cut(body, "\n```\n")
	if !ok {
		return "", false
	}
	return body + "\n", true
}

// TestCIInstallsCaddy keeps the Caddy release .ci/run installs equal to the
// one the skip message names.
func TestCIInstallsCaddy(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "github.com/caddyserver/caddy/v2/cmd/caddy@"+caddyVersion) {
		t.Errorf(".ci/run does not install caddy %s: update caddyVersion or .ci/run", caddyVersion)
	}
}
