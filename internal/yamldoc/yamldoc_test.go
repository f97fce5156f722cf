package yamldoc

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

type block struct {
	Window time.Duration `yaml:"window"`
	Names  []string      `yaml:"names"`
}

type doc struct {
	Listen  string         `yaml:"listen"`
	Count   int            `yaml:"count"`
	On      *bool          `yaml:"on"`
	Block   block          `yaml:"block"`
	Routes  []block        `yaml:"routes"`
	Secrets map[int]string `yaml:"secrets"`
	Skipped string         `yaml:"-"`
}

func parse(t *testing.T, src string) []Problem {
	t.Helper()
	n, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	return Decode(n, &d)
}

func TestDecodeFillsAndKeepsDefaults(t *testing.T) {
	n, err := Parse([]byte("count: 3\nblock: {window: 30s}\nsecrets: {2: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := doc{Listen: "default"}
	if probs := Decode(n, &d); probs != nil {
		t.Fatal(probs)
	}
	if d.Listen != "default" || d.Count != 3 || d.Block.Window != 30*time.Second || d.Secrets[2] != "x" {
		t.Errorf("decoded %+v", d)
	}
}

func TestDecodeReportsUnknownKeysAndTypes(t *testing.T) {
	probs := parse(t, `listen: x
skipped: 1
count: "secret-value"
block:
  window: soon
  extra: 1
routes:
  - names: one
secrets: {abc: x}
`)
	want := []Problem{
		{Line: 2, Path: "skipped", Unknown: true},
		{Line: 3, Path: "count", Want: "a whole number"},
		{Line: 5, Path: "block.window", Want: "a duration such as 30s"},
		{Line: 6, Path: "block.extra", Unknown: true},
		{Line: 8, Path: "routes[0].names", Want: "a list"},
		{Line: 9, Path: "secrets", Want: "keys that are a whole number"},
	}
	if len(probs) != len(want) {
		t.Fatalf("problems = %+v, want %+v", probs, want)
	}
	for i := range want {
		if probs[i] != want[i] {
			t.Errorf("problem %d = %+v, want %+v", i, probs[i], want[i])
		}
	}
}

func TestDecodeLeavesTargetOnProblems(t *testing.T) {
	n, _ := Parse([]byte("listen: changed\ncount: many\n"))
	d := doc{Listen: "kept"}
	if probs := Decode(n, &d); len(probs) != 1 || d.Listen != "kept" {
		t.Errorf("problems %+v, listen %q", probs, d.Listen)
	}
}

func TestDecodeTopLevelMustBeMapping(t *testing.T) {
	probs := parse(t, "- a\n- b\n")
	if len(probs) != 1 || probs[0].Path != "" || probs[0].Want != "a mapping of settings" {
		t.Errorf("problems = %+v", probs)
	}
}

func TestParse(t *testing.T) {
	if n, err := Parse(nil); n != nil || err != nil {
		t.Errorf("empty: %v, %v", n, err)
	}
	_, err := Parse([]byte("a: 1\nb: [\"hex:secret\"\n"))
	if err == nil || strings.Contains(err.Error(), "\n") || strings.HasPrefix(err.Error(), "yaml:") || !strings.Contains(err.Error(), "line") {
		t.Errorf("syntax error = %v, want one line naming the line", err)
	}
}

func TestDecodeMergeKeysAndRepeatedKeys(t *testing.T) {
	n, err := Parse([]byte("base: &b {window: 30s}\nblock:\n  <<: *b\n  names: [a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var withBase struct {
		Base  block `yaml:"base"`
		Block block `yaml:"block"`
	}
	if probs := Decode(n, &withBase); probs != nil || withBase.Block.Window != 30*time.Second {
		t.Errorf("merge key: %+v, %+v", probs, withBase)
	}
	n, _ = Parse([]byte("base: &b {extra: 1}\nblock:\n  <<: *b\n"))
	if probs := Decode(n, &withBase); len(probs) != 2 || !probs[0].Unknown || probs[0].Path != "base.extra" || !probs[1].Unknown || probs[1].Path != "block.extra" {
		t.Errorf("merged unknown key: %+v", probs)
	}
	probs := parse(t, "listen: a\ncount: 1\nlisten: b\n")
	if len(probs) != 1 || probs[0] != (Problem{Line: 3, Path: "listen", Repeated: true}) {
		t.Errorf("repeated key: %+v", probs)
	}
}

// even is a type with a YAML form of its own: an even number.
type even int

func (e *even) UnmarshalYAML(n *yaml.Node) error {
	var v int
	if err := n.Decode(&v); err != nil || v%2 != 0 {
		return errors.New("not even")
	}
	*e = even(v)
	return nil
}

func (e *even) YAMLDescription() string { return "an even number" }

// TestDecodeDescribedType: a type that unmarshals itself is checked by
// decoding it, and its problem says the form its Describer gives.
func TestDecodeDescribedType(t *testing.T) {
	var d struct {
		N even `yaml:"n"`
	}
	n, err := Parse([]byte("n: 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if probs := Decode(n, &d); probs != nil || d.N != 4 {
		t.Fatalf("n: 4: %v, %d", probs, d.N)
	}
	if n, err = Parse([]byte("n: 3\n")); err != nil {
		t.Fatal(err)
	}
	if probs := Decode(n, &d); len(probs) != 1 || probs[0].Want != "an even number" || probs[0].Path != "n" {
		t.Fatalf("n: 3: %+v, want one problem wanting an even number", probs)
	}
}
