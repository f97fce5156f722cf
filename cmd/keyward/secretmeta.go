package main

import (
	"encoding/json"
	"os"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

// secretMetaFlags are --secret-meta and --secret-meta-file, and on update
// --clear-secret-meta: the secret metadata of a key or an account. A file
// keeps the secret out of the shell history and of ps.
type secretMetaFlags struct {
	value, file string
	clear       bool
}

func (s *secretMetaFlags) add(cmd *cobra.Command, update bool) {
	f := cmd.Flags()
	f.StringVar(&s.value, "secret-meta", "", `secret metadata, a JSON object returned only to verifiers holding keys:verify_secrets, e.g. '{"dsn":"postgres://..."}' (prefer --secret-meta-file: flags show in ps)`)
	f.StringVar(&s.file, "secret-meta-file", "", "read the secret metadata (a JSON object) from this file")
	if update {
		f.BoolVar(&s.clear, "clear-secret-meta", false, "remove the secret metadata")
	}
}

// read returns the secret metadata the flags give, nil for none.
func (s *secretMetaFlags) read() (json.RawMessage, error) {
	v := s.value
	switch {
	case s.value != "" && s.file != "":
		return nil, usageErrorf("give --secret-meta or --secret-meta-file, not both")
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, usageErrorf("--secret-meta-file: %v", err)
		}
		v = string(b)
	case v == "":
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
		return nil, usageErrorf(`the secret metadata must be a JSON object, e.g. '{"dsn":"postgres://..."}'`)
	}
	if len(v) > 4*keyward.MaxSecretMetaBytes {
		return nil, usageErrorf("the secret metadata is larger than %d bytes", keyward.MaxSecretMetaBytes)
	}
	return json.RawMessage(v), nil
}

// update returns the change of an update command: the new value, or clear.
func (s *secretMetaFlags) update() (*json.RawMessage, bool, error) {
	m, err := s.read()
	if err != nil {
		return nil, false, err
	}
	if m != nil && s.clear {
		return nil, false, usageErrorf("give --secret-meta(-file) or --clear-secret-meta, not both")
	}
	if m == nil {
		return nil, s.clear, nil
	}
	return &m, false, nil
}
