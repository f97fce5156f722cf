package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/httpedge"
)

// Gateway is the gateway block of keyward.yaml: the routes (served by
// "keyward gateway", and by serve on gateway_listen; their permissions and
// exempt paths also apply to /v1/forward-auth) and the proxy's limits.
type Gateway struct {
	// Routes map path prefixes (and hosts) to upstreams.
	Routes []Route `yaml:"routes"`
	// Headers renames the identity headers.
	Headers gateway.HeaderNames `yaml:"headers"`
	// ForwardCredentials sends Authorization and X-API-Key upstream too.
	ForwardCredentials bool `yaml:"forward_credentials"`
	// DialTimeout bounds connecting to an upstream.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for an upstream's headers.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleConnTimeout closes idle upstream connections.
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout"`
	// ReadHeaderTimeout bounds reading a client's request headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle client connections.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds a client's request headers.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request body; negative: no limit.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Route is one route of Gateway: a gateway.Route, whose yaml tags name
// its settings, with the upstream as text (parsed by GatewayConfig).
type Route struct {
	gateway.Route `yaml:",inline"`
	Upstream      string `yaml:"upstream"`
}

func setTrustedProxies(c *Config, v string) error {
	c.TrustedProxies = splitList(v)
	return nil
}

// splitList reads a comma-separated setting: its elements trimmed, empty
// ones dropped.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Challenge returns the WWW-Authenticate value of the
// www_authenticate_scheme and _realm settings.
func (c *Config) Challenge() (string, error) {
	return httpedge.Challenge(c.WWWAuthenticateScheme, c.WWWAuthenticateRealm)
}

// validateChallenge adds the problems of the www_authenticate settings.
// The agent headers are checked with the gateway's settings.
func (c *Config) validateChallenge(add func(key, format string, args ...any)) {
	if _, err := httpedge.Challenge(c.WWWAuthenticateScheme, ""); err != nil {
		add("www_authenticate_scheme", "%s", keyward.ErrorMessage(err))
	}
	if _, err := httpedge.Challenge("", c.WWWAuthenticateRealm); err != nil {
		add("www_authenticate_realm", "%s", keyward.ErrorMessage(err))
	}
}

// TrustedProxyPrefixes parses TrustedProxies; a bare address is a /32 or /128.
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix or an address: use e.g. 10.0.0.0/8 or 127.0.0.1", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// GatewayConfig returns the gateway.Config of c's settings, without a
// verifier or logger; a route's upstream may be nil when forward-auth
// alone uses the routes. Errors name the setting.
func (c *Config) GatewayConfig() (gateway.Config, []*SettingError) {
	var errs []*SettingError
	g := c.Gateway
	cfg := gateway.Config{
		Headers:               g.Headers,
		ForwardCredentials:    g.ForwardCredentials,
		DialTimeout:           g.DialTimeout,
		ResponseHeaderTimeout: g.ResponseHeaderTimeout,
		IdleConnTimeout:       g.IdleConnTimeout,
		ReadHeaderTimeout:     g.ReadHeaderTimeout,
		IdleTimeout:           g.IdleTimeout,
		MaxHeaderBytes:        g.MaxHeaderBytes,
		MaxBodyBytes:          g.MaxBodyBytes,
		AgentHeaders:          c.AgentHeaders,
	}
	// A bad challenge is reported by validateChallenge.
	cfg.Challenge, _ = c.Challenge()
	tp, err := c.TrustedProxyPrefixes()
	if err != nil {
		errs = append(errs, &SettingError{Setting: "trusted_proxies", Problem: err.Error()})
	}
	cfg.TrustedProxies = tp
	for i, r := range g.Routes {
		route := r.Route
		if route.PathPrefix == "" {
			route.PathPrefix = "/"
		}
		if r.Upstream != "" {
			u, err := url.Parse(r.Upstream)
			if err != nil {
				errs = append(errs, &SettingError{Setting: fmt.Sprintf("gateway.routes[%d].upstream", i), Problem: "is not a URL: use e.g. http://127.0.0.1:9000"})
			} else {
				route.Upstream = u
			}
		}
		cfg.Routes = append(cfg.Routes, route)
	}
	return cfg, errs
}

// GatewayErrors turns the *gateway.ConfigError of err into setting errors;
// name maps a gateway field to its setting.
func GatewayErrors(err error, name func(field string) string) []*SettingError {
	var ce *gateway.ConfigError
	if !errors.As(err, &ce) {
		return []*SettingError{{Setting: "gateway", Problem: err.Error()}}
	}
	var out []*SettingError
	for _, f := range ce.Errors {
		if f.Field == "verifier" {
			continue // wired by the command, not configured
		}
		out = append(out, &SettingError{Setting: name(f.Field), Problem: f.Problem})
	}
	return out
}

// YAMLName names a gateway field as a keyward.yaml setting.
func YAMLName(field string) string {
	switch {
	case field == "trusted_proxies" || strings.HasPrefix(field, "trusted_proxies["):
		return "trusted_proxies"
	case field == "routes":
		return "gateway.routes"
	case field == "agent_headers":
		return "agent_headers"
	}
	return "gateway." + field
}

// validateGateway adds the problems of the gateway settings. Routes need
// an upstream only when serve runs the gateway (gateway_listen); without
// it they only give forward-auth its permissions and exempt paths.
func (c *Config) validateGateway(add func(key, format string, args ...any)) {
	if c.GatewayListen != "" {
		if err := CheckListen(c.GatewayListen); err != nil {
			add("gateway_listen", "%q %v", c.GatewayListen, err)
		} else if c.GatewayListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			add("gateway_listen", "%q is also listen: give the gateway its own port, e.g. 127.0.0.1:8081", c.GatewayListen)
		}
		if len(c.Gateway.Routes) == 0 {
			add("gateway_listen", "is set but gateway.routes is empty: add routes (prefix, upstream), or unset gateway_listen")
		}
	}
	cfg, errs := c.GatewayConfig()
	for _, e := range errs {
		add(e.Setting, "%s", e.Problem)
	}
	if len(errs) > 0 {
		return
	}
	needUpstream := c.GatewayListen != ""
	if len(cfg.Routes) == 0 {
		needUpstream = false // no gateway; "routes is empty" is not a problem
	}
	if err := gateway.Validate(cfg, needUpstream); err != nil {
		for _, e := range GatewayErrors(err, YAMLName) {
			add(e.Setting, "%s", e.Problem)
		}
	}
}
