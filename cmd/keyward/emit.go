package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
	"github.com/spf13/cobra"
)

// Formats of --emit.
const (
	emitMCP  = "mcp"
	emitEnv  = "env"
	emitCurl = "curl"
)

// emitFlags are the --emit and --emit-url flags of "keys create" and
// "keys rotate": print a client configuration holding the new key instead
// of the key's fields.
type emitFlags struct {
	format string
	url    string
}

func (e *emitFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.format, "emit", "", "print a ready client configuration with the new key instead of its fields: mcp (an MCP server entry), env (KEYWARD_URL and KEYWARD_API_KEY lines) or curl (a curl command)")
	f.StringVar(&e.url, "emit-url", "", "the URL the client calls, written into the --emit output: your service or the gateway in front of it (default: the keyward URL; curl then calls /v1/whoami)")
}

// check validates the flags; it runs before the key is created, so a typo
// cannot cost a secret that is shown only once.
func (e *emitFlags) check(cmd *cobra.Command, a *app) error {
	switch e.format {
	case "", emitMCP, emitEnv, emitCurl:
	default:
		return usageErrorf("--emit %q: use mcp, env or curl", e.format)
	}
	if e.format == "" {
		if cmd.Flags().Changed("emit-url") {
			return usageErrorf("--emit-url needs --emit mcp, env or curl")
		}
		return nil
	}
	if a.output == "json" {
		return usageErrorf("give --emit or --output json, not both")
	}
	if cmd.Flags().Changed("emit-url") {
		u, err := url.Parse(e.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageErrorf("--emit-url %q: use an http or https URL, e.g. https://memory.example.com/mcp", e.url)
		}
	}
	return nil
}

// show prints k: its fields, or the configuration asked for by --emit.
func (e *emitFlags) show(a *app, k *keyward.CreatedKey) error {
	if e.format == "" {
		return a.showCreatedKey(k)
	}
	target := e.url
	if target == "" {
		target = firstNonEmpty(a.url, a.getenv("KEYWARD_URL"), client.DefaultURL)
		if e.format == emitCurl {
			target = strings.TrimRight(target, "/") + "/v1/whoami"
		}
	}
	return emit(a.stdout, e.format, k, target)
}

// emit writes a client configuration of format for key k calling target.
func emit(w io.Writer, format string, k *keyward.CreatedKey, target string) error {
	name := k.Name
	if name == "" {
		name = k.ID
	}
	switch format {
	case emitMCP:
		type server struct {
			Type    string            `json:"type"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		}
		cfg := struct {
			MCPServers map[string]server `json:"mcpServers"`
		}{map[string]server{name: {Type: "http", URL: target, Headers: map[string]string{"Authorization": "Bearer " + k.Secret}}}}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg)
	case emitEnv:
		_, err := fmt.Fprintf(w, "# keyward key %s %q: shown once, keyward keeps only its hash\nKEYWARD_URL=%s\nKEYWARD_API_KEY=%s\n",
			k.ID, name, shellQuote(target), shellQuote(k.Secret))
		return err
	case emitCurl:
		_, err := fmt.Fprintf(w, "curl -H %s %s\n", shellQuote("Authorization: Bearer "+k.Secret), shellQuote(target))
		return err
	}
	return usageErrorf("--emit %q: use mcp, env or curl", format)
}

// shellSafe matches words a POSIX shell and dotenv files read as written.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell (and dotenv files) when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
