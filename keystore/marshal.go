package keystore

import (
	"encoding/hex"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Marshal returns the keystore as a keystore file that Parse reads back to
// the same keys: digests in lowercase, sorted, meta as JSON.
func (k *Keystore) Marshal() ([]byte, error) {
	type entryOut struct {
		ID          string     `yaml:"id"`
		Subject     string     `yaml:"subject,omitempty"`
		Role        string     `yaml:"role"`
		Account     string     `yaml:"account,omitempty"`
		Permissions []string   `yaml:"permissions,omitempty,flow"`
		Meta        *yaml.Node `yaml:"meta,omitempty"`
	}
	out := struct {
		Keys map[string]entryOut `yaml:"keys"`
	}{Keys: make(map[string]entryOut, len(k.entries))}
	for d, e := range k.entries {
		eo := entryOut{ID: e.key.ID, Subject: e.key.UserID, Role: string(e.key.Role), Account: e.key.AccountID, Permissions: e.key.Permissions}
		if len(e.key.Meta) > 0 {
			// JSON is YAML: the node keeps every value as written.
			var n yaml.Node
			if err := yaml.Unmarshal(e.key.Meta, &n); err != nil || len(n.Content) != 1 {
				return nil, fmt.Errorf("keystore: meta of key %q: %v", e.key.ID, err)
			}
			eo.Meta = n.Content[0]
		}
		out.Keys[hex.EncodeToString(d[:])] = eo
	}
	return yaml.Marshal(out)
}
