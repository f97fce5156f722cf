package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
)

// EnvAdminAPIKey holds the legacy admin key. Empty counts as unset.
const EnvAdminAPIKey = "KEYWARD_ADMIN_API_KEY"

func setDevMode(c *Config, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not a boolean: use true or false", v)
	}
	c.DevMode = b
	return nil
}

// validateSimpleModes adds the problems of the simple-mode settings. Files
// are checked when they are read (server.LoadSimpleModes).
func (c *Config) validateSimpleModes(add func(key, format string, args ...any)) {
	if c.Keystore != "" && strings.TrimSpace(c.Keystore) == "" {
		add("keystore", "is blank: name the keystore file, or leave keystore unset to turn the keystore off")
	}
	if !c.DevMode {
		return
	}
	// Both listeners must be loopback: dev mode applies to the gateway,
	// which runs on listen (keyward gateway) or gateway_listen (serve).
	for _, addr := range []string{c.Listen, c.GatewayListen} {
		if addr == "" {
			continue
		}
		if err := keystore.CheckDevListen(addr); err != nil {
			add("dev_mode", "%s", keyward.ErrorMessage(err))
		}
	}
	if c.Keystore != "" {
		add("dev_mode", "dev mode lets every request through, so keystore %s would never be consulted: turn dev mode off, or unset keystore", c.Keystore)
	}
}
