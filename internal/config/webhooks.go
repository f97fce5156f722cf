package config

import (
	"errors"
	"fmt"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/webhook"
)

// Webhooks is the webhooks: block of keyward.yaml: how events are
// delivered (docs/webhooks.md). Zero values keep the defaults of package
// webhook.
type Webhooks struct {
	// AllowNetworks lists internal networks endpoints may be on (for a
	// receiver on the same host or network: 127.0.0.0/8, 10.0.0.0/8);
	// every other internal address is refused.
	AllowNetworks    []string `yaml:"allow_networks"`
	webhook.Settings `yaml:",inline"`
}

// SenderConfig returns the webhook sender configuration of c, without its
// store and opener; the error names the setting.
func (c *Config) SenderConfig() (webhook.Config, error) {
	w := c.Webhooks
	out := webhook.Config{Settings: w.Settings}
	for _, s := range w.AllowNetworks {
		p, err := keyward.ParsePrefix(s)
		if err != nil {
			return out, fmt.Errorf("allow_networks: %s", keyward.ErrorMessage(err))
		}
		out.Guard.Allow = append(out.Guard.Allow, p)
	}
	if err := out.Validate(); err != nil {
		return out, errors.New(keyward.ErrorMessage(err))
	}
	return out, nil
}

func (c *Config) validateWebhooks(add func(key, format string, args ...any)) {
	if _, err := c.SenderConfig(); err != nil {
		add("webhooks", "%v", err)
	}
}
