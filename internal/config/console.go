package config

import (
	"net/url"
	"strings"
	"time"
)

// Console is the console: block of keyward.yaml: the web console that
// serve mounts at /console (docs/console.md). The zero value serves it with
// the default timeouts.
type Console struct {
	// Disabled turns the console off: /console answers like any unknown
	// path of the API.
	Disabled bool `yaml:"disabled"`
	// IdleTimeout ends a console or portal session after this long
	// without a request; zero: console.DefaultIdleTimeout.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// SessionLifetime ends a session this long after its sign-in, however
	// active; zero: console.DefaultMaxAge.
	SessionLifetime time.Duration `yaml:"session_lifetime"`
	// PublicURL is the address customers' browsers reach keyward at, such
	// as https://keys.example.com: the links of the end-user portal
	// (docs/portal.md) are made on it. Empty: on the address each
	// POST /v1/portal/sessions reached keyward at.
	PublicURL string `yaml:"public_url"`
}

// Bounds of the console's timeouts.
const (
	minConsoleIdle     = time.Minute
	maxConsoleIdle     = 24 * time.Hour
	maxConsoleLifetime = 30 * 24 * time.Hour
)

// validateConsole checks the console block: timeouts in range, a
// lifetime no shorter than the idle timeout it bounds, and a public URL
// that is an http(s) address without more than a path.
func (c *Config) validateConsole(add func(key, format string, args ...any)) {
	cc := c.Console
	if cc.IdleTimeout != 0 && (cc.IdleTimeout < minConsoleIdle || cc.IdleTimeout > maxConsoleIdle) {
		add("console.idle_timeout", "%s is out of range: use between %s and %s, e.g. 30m, or omit it for the default", cc.IdleTimeout, minConsoleIdle, maxConsoleIdle)
	}
	if cc.SessionLifetime != 0 && (cc.SessionLifetime < minConsoleIdle || cc.SessionLifetime > maxConsoleLifetime) {
		add("console.session_lifetime", "%s is out of range: use between %s and %s, e.g. 12h, or omit it for the default", cc.SessionLifetime, minConsoleIdle, maxConsoleLifetime)
	}
	if cc.IdleTimeout != 0 && cc.SessionLifetime != 0 && cc.SessionLifetime < cc.IdleTimeout {
		add("console.session_lifetime", "%s is shorter than console.idle_timeout (%s): use a lifetime at least as long as the idle timeout", cc.SessionLifetime, cc.IdleTimeout)
	}
	if cc.PublicURL != "" {
		u, err := url.Parse(cc.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			add("console.public_url", "%q is not the address of keyward: use an http or https URL such as https://keys.example.com, without a query", cc.PublicURL)
		}
	}
}

// PortalURL returns the base of the portal's links: the public URL
// without a trailing slash, or "" (the address of each request).
func (cc Console) PortalURL() string { return strings.TrimSuffix(cc.PublicURL, "/") }
