package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/client"
	"github.com/spf13/cobra"
)

// Formats of --emit.
const (
	emitMCP  = "mcp"
	emitEnv  = "env"
	emitCurl = "curl"
)

// Headers --emit-header chooses between.
const (
	emitHeaderAuthorization = "authorization"
	emitHeaderAPIKey        = "x-api-key"
)

// defaultEmitEnv is the variable a stdio MCP server gets the key in.
const defaultEmitEnv = "KEYWARD_API_KEY"

// emitFlags are the --emit flags of "keys create" and "keys rotate": print
// a client configuration holding the new key instead of the key's fields.
type emitFlags struct {
	format  string
	url     string
	header  string   // emitHeaderAuthorization or emitHeaderAPIKey
	command string   // a stdio MCP server's program
	args    []string // and its arguments
	env     string   // the variable it gets the key in
}

func (e *emitFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.format, "emit", "", "print a ready client configuration with the new key instead of its fields: mcp (an MCP server entry), env (KEYWARD_URL and KEYWARD_API_KEY lines) or curl (a curl command)")
	f.StringVar(&e.url, "emit-url", "", "the URL the client calls, written into the --emit output: your service or the gateway in front of it (required by --emit mcp unless --emit-command; env and curl default to the keyward URL, curl then calling /v1/whoami)")
	f.StringVar(&e.header, "emit-header", emitHeaderAuthorization, "header that carries the key in --emit mcp and curl: authorization (Authorization: Bearer KEY) or x-api-key (X-API-Key: KEY)")
	f.StringVar(&e.command, "emit-command", "", "--emit mcp: a stdio MCP server started as this program, with the key in its environment (instead of --emit-url)")
	f.StringArrayVar(&e.args, "emit-arg", nil, "--emit mcp with --emit-command: an argument of the program (repeatable)")
	f.StringVar(&e.env, "emit-env", defaultEmitEnv, "--emit mcp with --emit-command: the environment variable that holds the key")
}

// envName matches a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// check validates the flags; it runs before the key is created, so a typo
// cannot cost a secret that is shown only once.
func (e *emitFlags) check(cmd *cobra.Command, a *app) error {
	changed := cmd.Flags().Changed
	switch e.format {
	case "", emitMCP, emitEnv, emitCurl:
	default:
		return usageErrorf("--emit %q: use mcp, env or curl", e.format)
	}
	if e.format == "" {
		for _, f := range [...]string{"emit-url", "emit-header", "emit-command", "emit-arg", "emit-env"} {
			if changed(f) {
				return usageErrorf("--%s needs --emit mcp, env or curl", f)
			}
		}
		return nil
	}
	if a.output == "json" {
		return usageErrorf("give --emit or --output json, not both")
	}
	if changed("emit-url") {
		u, err := url.Parse(e.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageErrorf("--emit-url %q: use an http or https URL, e.g. https://memory.example.com/mcp", e.url)
		}
	}
	switch e.header {
	case emitHeaderAuthorization, emitHeaderAPIKey:
	default:
		return usageErrorf("--emit-header %q: use authorization or x-api-key", e.header)
	}
	stdio := changed("emit-command")
	switch {
	case e.format != emitMCP && (stdio || changed("emit-arg") || changed("emit-env")):
		return usageErrorf("--emit-command, --emit-arg and --emit-env describe a stdio MCP server: use them with --emit mcp")
	case e.format == emitEnv && changed("emit-header"):
		return usageErrorf("--emit-header chooses the header of --emit mcp and curl; --emit env writes KEYWARD_API_KEY")
	case e.format != emitMCP:
		return nil
	case stdio && changed("emit-url"):
		return usageErrorf("--emit mcp: give --emit-url (a server reached over HTTP) or --emit-command (a stdio server), not both")
	case stdio && changed("emit-header"):
		return usageErrorf("--emit-header is for an MCP server reached over HTTP: a stdio server gets the key in --emit-env")
	case stdio && strings.TrimSpace(e.command) == "":
		return usageErrorf("--emit-command is empty: name the program that starts the MCP server, e.g. npx")
	case stdio && !envName.MatchString(e.env):
		return usageErrorf("--emit-env %q: use an environment variable name such as %s", e.env, defaultEmitEnv)
	case !stdio && (changed("emit-arg") || changed("emit-env")):
		return usageErrorf("--emit-arg and --emit-env need --emit-command")
	case !stdio && !changed("emit-url"):
		return usageErrorf("--emit mcp needs --emit-url URL (the MCP server clients call: your service or the gateway in front of it) or --emit-command PROGRAM (a stdio server started with the key in its environment)")
	}
	return nil
}

// show prints k: its fields, or the configuration asked for by --emit.
func (e *emitFlags) show(a *app, k *keyward.CreatedKey) error {
	if e.format == "" {
		return a.showCreatedKey(k)
	}
	target := e.url
	if target == "" && e.format != emitMCP {
		target = firstNonEmpty(a.url, a.getenv("KEYWARD_URL"), client.DefaultURL)
		if e.format == emitCurl {
			target = strings.TrimRight(target, "/") + "/v1/whoami"
		}
	}
	return e.emit(a.stdout, k, target)
}

// keyHeader returns the header carrying secret, as chosen by --emit-header.
func (e *emitFlags) keyHeader(secret string) (name, value string) {
	if e.header == emitHeaderAPIKey {
		return apikey.HeaderAPIKey, secret
	}
	return apikey.HeaderAuthorization, "Bearer " + secret
}

// mcpServer is one entry of an MCP client's mcpServers: over HTTP (Type
// "http", URL, Headers) or stdio (Type "stdio", Command, Args, Env).
type mcpServer struct {
	Type    string            `json:"type"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

// emit writes the client configuration of e's format for key k calling
// target (an MCP server over stdio has none).
func (e *emitFlags) emit(w io.Writer, k *keyward.CreatedKey, target string) error {
	name := k.Name
	if name == "" {
		name = k.ID
	}
	switch e.format {
	case emitMCP:
		srv := mcpServer{Type: "http", URL: target}
		if e.command != "" {
			srv = mcpServer{Type: "stdio", Command: e.command, Args: e.args, Env: map[string]string{e.env: k.Secret}}
		} else {
			h, v := e.keyHeader(k.Secret)
			srv.Headers = map[string]string{h: v}
		}
		cfg := struct {
			MCPServers map[string]mcpServer `json:"mcpServers"`
		}{map[string]mcpServer{name: srv}}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(cfg)
	case emitEnv:
		_, err := fmt.Fprintf(w, "# keyward key %s %q: shown once, keyward keeps only its hash\nKEYWARD_URL=%s\nKEYWARD_API_KEY=%s\n",
			k.ID, name, shellQuote(target), shellQuote(k.Secret))
		return err
	case emitCurl:
		h, v := e.keyHeader(k.Secret)
		_, err := fmt.Fprintf(w, "curl -H %s %s\n", shellQuote(h+": "+v), shellQuote(target))
		return err
	}
	return usageErrorf("--emit %q: use mcp, env or curl", e.format)
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
