// Command keyward is the keyward API key service: "keyward serve" runs the
// server; the other commands are clients of its HTTP API, plus offline
// bootstrap and configuration checks. See docs/cli.md.
package main

import (
	"context"
	"os"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version string

func main() {
	m := &Main{Version: version}
	os.Exit(m.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
