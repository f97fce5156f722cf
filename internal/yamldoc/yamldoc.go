// Package yamldoc reads the YAML files keyward's operators write
// (keyward.yaml and keystore files) and reports their mistakes by line and
// setting name, never quoting a value: a value could be a pepper or a key.
//
// Parse turns a syntax error into one line. Decode walks the node tree
// against the Go type it fills, so unknown keys and values of the wrong
// type are found structurally rather than read back from the YAML
// library's message text.
package yamldoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one mistake in a document.
type Problem struct {
	// Line is the 1-based line of the offending key or value; 0 if unknown.
	Line int
	// Path names the setting, its keys joined by dots and sequence
	// indexes in brackets: "gateway.routes[0].upstream".
	Path string
	// Unknown is true when Path names a key the target has no field for,
	// Repeated when its mapping sets Path twice (Line is the second);
	// otherwise the value at Path has the wrong type and Want says what
	// it should be.
	Unknown  bool
	Repeated bool
	// Want describes the expected value: "a duration", "a list", ...
	Want string
}

// Message returns err, an error of the YAML library, as one line without
// its "yaml: " prefix. Syntax errors carry no value of the document.
func Message(err error) string {
	return strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " ")
}

// Parse returns the root node of the first document in b, or nil when b
// holds no document. A syntax error comes back as one line (Message).
func Parse(b []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, errors.New(Message(err))
	}
	if len(doc.Content) != 1 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// Decode fills v, a non-nil pointer, from n. It first checks n against v's
// type and returns every problem it finds, leaving v untouched; with none
// it decodes. A null n leaves v as it is.
func Decode(n *yaml.Node, v any) []Problem {
	if n == nil || isNull(n) {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("yamldoc: Decode needs a non-nil pointer")
	}
	var probs []Problem
	check(n, rv.Type().Elem(), "", &probs)
	if len(probs) > 0 {
		return probs
	}
	if err := n.Decode(v); err != nil {
		// check accepts only what decodes, so this is a case it does
		// not model; say where without the library's text (it quotes
		// values).
		return []Problem{{Line: n.Line, Want: "a value of the documented type"}}
	}
	return nil
}

// Describer is implemented by a type with a YAML form of its own (one
// that unmarshals itself): it says how its values are written, for the
// problem of a value that is not one ("a size such as 512MiB").
type Describer interface{ YAMLDescription() string }

var (
	nodeType        = reflect.TypeFor[yaml.Node]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	describerType   = reflect.TypeFor[Describer]()
)

// check appends the problems of n as a value of type t at path.
func check(n *yaml.Node, t reflect.Type, path string, probs *[]Problem) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return
	}
	if t == nodeType || t.Kind() == reflect.Interface {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		checkLeaf(n, t, path, probs)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			*probs = append(*probs, Problem{Line: n.Line, Path: path, Want: "a mapping of settings"})
			return
		}
		fields := yamlFields(t)
		for k, val := range pairs(n, t, path, probs) {
			ft, ok := fields[k.Value]
			if !ok || k.Kind != yaml.ScalarNode {
				*probs = append(*probs, Problem{Line: k.Line, Path: join(path, k.Value), Unknown: true})
				continue
			}
			check(val, ft, join(path, k.Value), probs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			*probs = append(*probs, Problem{Line: n.Line, Path: path, Want: "a mapping"})
			return
		}
		for k, val := range pairs(n, t, path, probs) {
			if !decodes(k, t.Key()) {
				*probs = append(*probs, Problem{Line: k.Line, Path: path, Want: "keys that are " + describe(t.Key())})
				continue
			}
			check(val, t.Elem(), join(path, k.Value), probs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			*probs = append(*probs, Problem{Line: n.Line, Path: path, Want: "a list"})
			return
		}
		for i, e := range n.Content {
			check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), probs)
		}
	default:
		checkLeaf(n, t, path, probs)
	}
}

// pairs yields the keys and values of mapping n, a value of type t at
// path. The mappings a merge key (<<) brings in are checked as values of t
// in their own right, as the YAML library merges them; a key the mapping
// sets twice is a problem.
func pairs(n *yaml.Node, t reflect.Type, path string, probs *[]Problem) func(func(k, v *yaml.Node) bool) {
	return func(yield func(k, v *yaml.Node) bool) {
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				merged := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode {
					merged = v.Content
				}
				for _, m := range merged {
					check(m, t, path, probs)
				}
				continue
			}
			if k.Kind == yaml.ScalarNode && seen[k.Value] {
				*probs = append(*probs, Problem{Line: k.Line, Path: join(path, k.Value), Repeated: true})
				continue
			}
			seen[k.Value] = true
			if !yield(k, v) {
				return
			}
		}
	}
}

// checkLeaf reports n unless it decodes as a t.
func checkLeaf(n *yaml.Node, t reflect.Type, path string, probs *[]Problem) {
	if !decodes(n, t) {
		*probs = append(*probs, Problem{Line: n.Line, Path: path, Want: describe(t)})
	}
}

// decodes says whether n decodes as a value of type t; the library's
// error is only a yes or no here.
func decodes(n *yaml.Node, t reflect.Type) bool {
	return n.Decode(reflect.New(t).Interface()) == nil
}

// describe names what a value of type t looks like in YAML.
func describe(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(describerType) {
		return reflect.New(t).Interface().(Describer).YAMLDescription()
	}
	if t.PkgPath() == "time" && t.Name() == "Duration" {
		return "a duration such as 30s"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a value of the documented type"
}

// yamlFields maps the YAML keys of struct type t to their field types,
// as the YAML library reads them: the tag's name, else the lower-cased
// field name; "-" and unexported fields are skipped, ",inline" structs
// merged.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}
