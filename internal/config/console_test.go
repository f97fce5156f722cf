package config

import (
	"strings"
	"testing"
	"time"
)

func TestConsoleConfig(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.Disabled || c.Console.IdleTimeout != 0 || c.Console.SessionLifetime != 0 {
		t.Errorf("default console = %+v, want on with the default timeouts", c.Console)
	}
	c, err = ParseConfig(strings.NewReader("console:\n  idle_timeout: 15m\n  session_lifetime: 8h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Console.IdleTimeout != 15*time.Minute || c.Console.SessionLifetime != 8*time.Hour {
		t.Errorf("console = %+v", c.Console)
	}
	if c, err = ParseConfig(strings.NewReader("console:\n  public_url: https://keys.example.com/\n")); err != nil || c.Validate() != nil || c.Console.PortalURL() != "https://keys.example.com" {
		t.Errorf("console.public_url: %+v, %v", c.Console, err)
	}
	if c, err = ParseConfig(strings.NewReader("console:\n  disabled: true\n")); err != nil || !c.Console.Disabled {
		t.Errorf("console.disabled: %+v, %v", c, err)
	}
	if _, err := ParseConfig(strings.NewReader("console:\n  idle_timout: 15m\n")); err == nil || !strings.Contains(err.Error(), "idle_timout") {
		t.Errorf("misspelt console key: %v, want it named", err)
	}
	for _, c := range []struct {
		name, yaml, setting, fix string
	}{
		{"idle too short", "console:\n  idle_timeout: 10s\n", "console.idle_timeout", "between 1m0s and 24h0m0s"},
		{"idle negative", "console:\n  idle_timeout: -5m\n", "console.idle_timeout", "out of range"},
		{"lifetime too long", "console:\n  session_lifetime: 2000h\n", "console.session_lifetime", "between"},
		{"lifetime below idle", "console:\n  idle_timeout: 2h\n  session_lifetime: 1h\n", "console.session_lifetime", "at least as long as the idle timeout"},
		{"public url relative", "console:\n  public_url: /keys\n", "console.public_url", "https://keys.example.com"},
		{"public url not http", "console:\n  public_url: ftp://keys.example.com\n", "console.public_url", "http or https"},
		{"public url with a query", "console:\n  public_url: https://keys.example.com/?a=b\n", "console.public_url", "without a query"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(c.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), c.setting) || !strings.Contains(err.Error(), c.fix) {
				t.Errorf("error = %v, want %s and %q", err, c.setting, c.fix)
			}
		})
	}
}
