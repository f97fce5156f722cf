package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

const emitSecret = "kw_user_3vQb7Hq0N8y4J2kLm9XcA1sT5uVwYz0bC6dE8fG2hJ4kL0mN1pQ"

// mcpConfig is the shape --emit mcp prints.
type mcpConfig struct {
	MCPServers map[string]mcpServer `json:"mcpServers"`
}

func TestEmit(t *testing.T) {
	k := &keyward.CreatedKey{Key: keyward.Key{ID: "key_1", Name: "claude"}, Secret: emitSecret}
	unnamed := &keyward.CreatedKey{Key: keyward.Key{ID: "key_2"}, Secret: emitSecret}
	for _, tt := range []struct {
		name   string
		format string
		key    *keyward.CreatedKey
		url    string
		want   string
		flags  emitFlags // header, command, args, env
	}{
		{"mcp", emitMCP, k, "https://memory.example.com/mcp?a=1&b=2", `{
  "mcpServers": {
    "claude": {
      "type": "http",
      "url": "https://memory.example.com/mcp?a=1&b=2",
      "headers": {
        "Authorization": "Bearer ` + emitSecret + `"
      }
    }
  }
}
`, emitFlags{}},
		{"env", emitEnv, k, "https://api.example.com", `# keyward key key_1 "claude": shown once, keyward keeps only its hash
KEYWARD_URL=https://api.example.com
KEYWARD_API_KEY=` + emitSecret + "\n", emitFlags{}},
		{"env quotes what a shell would split", emitEnv, unnamed, "https://api.example.com/?a=1&b='2'", `# keyward key key_2 "key_2": shown once, keyward keeps only its hash
KEYWARD_URL='https://api.example.com/?a=1&b='\''2'\'''
KEYWARD_API_KEY=` + emitSecret + "\n", emitFlags{}},
		{"curl", emitCurl, k, "https://api.example.com/notes?x=1", `curl -H 'Authorization: Bearer ` + emitSecret + `' 'https://api.example.com/notes?x=1'` + "\n", emitFlags{}},
		{"mcp with X-API-Key", emitMCP, k, "https://memory.example.com/mcp", `{
  "mcpServers": {
    "claude": {
      "type": "http",
      "url": "https://memory.example.com/mcp",
      "headers": {
        "X-API-Key": "` + emitSecret + `"
      }
    }
  }
}
`, emitFlags{header: emitHeaderAPIKey}},
		{"curl with X-API-Key", emitCurl, k, "https://api.example.com/", `curl -H 'X-API-Key: ` + emitSecret + `' https://api.example.com/` + "\n", emitFlags{header: emitHeaderAPIKey}},
		{"mcp over stdio", emitMCP, k, "", `{
  "mcpServers": {
    "claude": {
      "type": "stdio",
      "command": "npx",
      "args": [
        "-y",
        "@example/memory-mcp"
      ],
      "env": {
        "MEMORY_API_KEY": "` + emitSecret + `"
      }
    }
  }
}
`, emitFlags{command: "npx", args: []string{"-y", "@example/memory-mcp"}, env: "MEMORY_API_KEY"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			e := tt.flags
			e.format = tt.format
			if e.header == "" {
				e.header = emitHeaderAuthorization
			}
			if err := e.emit(&b, tt.key, tt.url); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}

	// Without a name the MCP server is named after the key id.
	var b bytes.Buffer
	(&emitFlags{format: emitMCP, header: emitHeaderAuthorization}).emit(&b, unnamed, "http://127.0.0.1:8080")
	var cfg mcpConfig
	if err := json.Unmarshal(b.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	if s, ok := cfg.MCPServers["key_2"]; !ok || s.Headers["Authorization"] != "Bearer "+emitSecret {
		t.Errorf("config = %+v", cfg)
	}
}

// TestKeysEmit creates and rotates keys with --emit against a real server
// and uses the keys found in the output.
func TestKeysEmit(t *testing.T) {
	s := startServer(t, nil)
	root := s.rootKey

	// mcp: the entry is named after --name; the key in its header works.
	out := s.ok(t, root, "keys", "create", "--role", "root", "--name", "claude", "--emit", "mcp",
		"--emit-url", "https://memory.example.com/mcp")
	var cfg mcpConfig
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("--emit mcp printed %q: %v", out, err)
	}
	srv, ok := cfg.MCPServers["claude"]
	key, _ := strings.CutPrefix(srv.Headers["Authorization"], "Bearer ")
	if !ok || srv.URL != "https://memory.example.com/mcp" || srv.Type != "http" || key == "" {
		t.Fatalf("--emit mcp printed %s", out)
	}
	var id keyward.Identity
	s.okJSON(t, key, &id, "whoami")
	if id.Role != keyward.RoleRoot {
		t.Errorf("the emitted key is %+v", id)
	}

	// env: the URL defaults to the keyward URL; the lines configure the CLI.
	out = s.ok(t, root, "keys", "create", "--role", "root", "--emit", "env")
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	if env["KEYWARD_URL"] != s.url || env["KEYWARD_API_KEY"] == "" {
		t.Fatalf("--emit env printed %q", out)
	}
	r := runCLI(t, env, "whoami", "-o", "json")
	if r.code != 0 {
		t.Errorf("whoami with the emitted env: %+v", r)
	}

	// curl: by default it calls whoami on keyward.
	out = s.ok(t, root, "keys", "create", "--role", "root", "--emit", "curl")
	if !strings.HasPrefix(out, "curl -H 'Authorization: Bearer kw_root_") || !strings.HasSuffix(out, " "+s.url+"/v1/whoami\n") {
		t.Errorf("--emit curl printed %q", out)
	}

	// rotate: the new key is emitted; the entry keeps the key's name.
	var old keyward.CreatedKey
	s.okJSON(t, root, &old, "keys", "create", "--role", "root", "--name", "ci")
	out = s.ok(t, root, "keys", "rotate", old.ID, "--emit", "mcp", "--emit-url", s.url)
	cfg = mcpConfig{}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("rotate --emit mcp printed %q: %v", out, err)
	}
	rotated, _ := strings.CutPrefix(cfg.MCPServers["ci"].Headers["Authorization"], "Bearer ")
	if rotated == "" || rotated == old.Secret || cfg.MCPServers["ci"].URL != s.url {
		t.Fatalf("rotate --emit mcp printed %s", out)
	}
	s.okJSON(t, rotated, &id, "whoami")
	s.fails(t, ExitUnauthorized, old.Secret, "whoami")

	// X-API-Key: the entry carries the key in that header; it works.
	out = s.ok(t, root, "keys", "create", "--role", "root", "--name", "viking", "--emit", "mcp",
		"--emit-url", "https://memory.example.com/mcp", "--emit-header", "x-api-key")
	cfg = mcpConfig{}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("--emit-header x-api-key printed %q: %v", out, err)
	}
	viking := cfg.MCPServers["viking"]
	if viking.Headers["X-API-Key"] == "" || viking.Headers["Authorization"] != "" || len(viking.Headers) != 1 {
		t.Fatalf("--emit-header x-api-key printed %s", out)
	}
	s.okJSON(t, viking.Headers["X-API-Key"], &id, "whoami")

	// stdio: the entry starts a program with the key in its environment.
	out = s.ok(t, root, "keys", "create", "--role", "root", "--name", "local", "--emit", "mcp",
		"--emit-command", "npx", "--emit-arg", "-y", "--emit-arg", "@example/memory-mcp")
	cfg = mcpConfig{}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("--emit-command printed %q: %v", out, err)
	}
	local := cfg.MCPServers["local"]
	if local.Type != "stdio" || local.Command != "npx" || strings.Join(local.Args, " ") != "-y @example/memory-mcp" ||
		local.URL != "" || len(local.Headers) != 0 || len(local.Env) != 1 || local.Env["KEYWARD_API_KEY"] == "" {
		t.Fatalf("--emit-command printed %s", out)
	}
	s.okJSON(t, local.Env["KEYWARD_API_KEY"], &id, "whoami")

	// Bad flags are refused before a key is created.
	var before keyward.KeyList
	s.okJSON(t, root, &before, "keys", "list")
	for _, args := range [][]string{
		{"keys", "create", "--role", "root", "--emit", "yaml"},
		{"keys", "create", "--role", "root", "--emit", "mcp", "-o", "json"},
		{"keys", "create", "--role", "root", "--emit-url", "https://x.example.com"},
		{"keys", "create", "--role", "root", "--emit", "mcp", "--emit-url", "memory.example.com"},
		{"keys", "rotate", old.ID, "--emit", "yaml"},
		// --emit mcp never points at keyward itself by default.
		{"keys", "create", "--role", "root", "--emit", "mcp"},
		{"keys", "rotate", old.ID, "--emit", "mcp"},
		{"keys", "create", "--role", "root", "--emit", "mcp", "--emit-url", "https://x.example.com", "--emit-command", "npx"},
		{"keys", "create", "--role", "root", "--emit", "mcp", "--emit-url", "https://x.example.com", "--emit-header", "cookie"},
		{"keys", "create", "--role", "root", "--emit", "mcp", "--emit-command", "npx", "--emit-header", "x-api-key"},
		{"keys", "create", "--role", "root", "--emit", "mcp", "--emit-command", "npx", "--emit-env", "NOT-A-NAME"},
		{"keys", "create", "--role", "root", "--emit", "mcp", "--emit-url", "https://x.example.com", "--emit-arg", "x"},
		{"keys", "create", "--role", "root", "--emit", "env", "--emit-command", "npx"},
		{"keys", "create", "--role", "root", "--emit", "env", "--emit-header", "x-api-key"},
		{"keys", "create", "--role", "root", "--emit-header", "x-api-key"},
	} {
		if msg := s.fails(t, ExitUsage, root, args...); !strings.Contains(msg, "emit") {
			t.Errorf("keyward %s: %s", strings.Join(args, " "), msg)
		}
	}
	var after keyward.KeyList
	s.okJSON(t, root, &after, "keys", "list")
	if len(after.Items) != len(before.Items) {
		t.Errorf("refused commands created keys: %d before, %d after", len(before.Items), len(after.Items))
	}
}
