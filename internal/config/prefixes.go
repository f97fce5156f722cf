package config

import (
	"errors"

	"github.com/keyward/keyward/apikey"
)

// KeyPrefixes is the key_prefixes: block of keyward.yaml: the prefix of
// each tier's keys and the segment of each environment
// (docs/environments.md). Unset, keys have keyward's default prefixes.
type KeyPrefixes = apikey.Prefixes

// validateKeyPrefixes checks the key_prefixes block
// (apikey.Prefixes.Validate), naming the setting at fault.
func (c *Config) validateKeyPrefixes(add func(key, format string, args ...any)) {
	var pe *apikey.PrefixError
	if err := c.KeyPrefixes.Validate(); errors.As(err, &pe) {
		add("key_prefixes."+pe.Setting, "%s", pe.Problem)
	}
}
