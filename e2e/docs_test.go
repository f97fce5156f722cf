package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
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

// TestCIInstallsTools keeps the Caddy and gitleaks releases .ci/run
// installs equal to the ones the skip messages name.
func TestCIInstallsTools(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"github.com/caddyserver/caddy/v2/cmd/caddy@" + caddyVersion, "github.com/zricethezav/gitleaks/v8@" + gitleaksVersion} {
		if !strings.Contains(string(b), "go install "+tool) {
			t.Errorf(".ci/run does not install %s: update the version constant or .ci/run", tool)
		}
	}
}

// TestDocLinks: every relative link in README.md and docs/*.md names a file
// of the repository, and every #anchor a heading of the page it points to
// (as GitHub renders them), so the design of record has no dead ends.
func TestDocLinks(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join("..", "README.md"))
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		a := map[string]bool{}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fenced := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				fenced = !fenced
			}
			if fenced || !strings.HasPrefix(line, "#") {
				continue
			}
			slug := headingSlug(strings.TrimLeft(line, "# "))
			for n, s := 1, slug; ; n++ {
				if !a[s] {
					a[s] = true
					break
				}
				s = slug + "-" + strconv.Itoa(n)
			}
		}
		anchors[path] = a
		return a
	}
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				rel, err := filepath.Rel("..", path)
				if err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("%s links to %s, outside the repository", page, target)
					continue
				}
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s links to %s, which does not exist", page, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchorsOf(path)[anchor] {
				t.Errorf("%s links to %s, but %s has no heading with that anchor", page, target, path)
			}
		}
	}
}

// headingSlug is the anchor GitHub gives a heading: lower case, spaces as
// hyphens, punctuation other than hyphens and underscores dropped.
func headingSlug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
