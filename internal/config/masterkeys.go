package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keyring"
)

// EnvMasterKeys lists the master keys that encrypt audit details, secret
// metadata and webhook secrets:
// comma-separated VERSION:ENCODING:VALUE. No flag: a secret on a command
// line is visible to every user of the machine.
const EnvMasterKeys = "KEYWARD_MASTER_KEYS"

// masterKeyExample is how a master key is written.
const masterKeyExample = "1:hex:$(openssl rand -hex 32)"

// DefaultMasterKeyPath is the generated master key file of a SQLite data
// directory.
func (c *Config) DefaultMasterKeyPath() string { return filepath.Join(c.Data, "master-keys") }

// OpenKeyring returns the keyring of the configured master keys: master_keys
// (file or KEYWARD_MASTER_KEYS), else master_key_file, else, on SQLite, the
// data directory's master-keys file, generated when missing. A PostgreSQL
// store is shared by instances that must all read each other's entries:
// there a master key must be configured.
func (c *Config) OpenKeyring(log *slog.Logger) (*keyring.Keyring, error) {
	keys := c.MasterKeys
	if len(keys) == 0 {
		path, setting := c.MasterKeyFile, "master_key_file"
		switch {
		case path != "":
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return nil, Errorf(setting, "%s does not exist: create it (mode 0600) holding %s, or unset master_key_file", path, masterKeyExample)
			}
		case c.UsesPostgres():
			return nil, Errorf("master_keys", "none configured, and the PostgreSQL store is shared by instances that must all read each other's audit entries: set %s to the same value on every instance, e.g. %s=%s", EnvMasterKeys, EnvMasterKeys, masterKeyExample)
		default:
			path, setting = c.DefaultMasterKeyPath(), "data"
		}
		var created bool
		var err error
		if keys, created, err = keyring.LoadOrCreateFile(path); err != nil {
			return nil, Errorf(setting, "%s", keyward.ErrorMessage(err))
		}
		if created {
			log.Warn("no master key configured: generated one; back it up with the database (without it the audit log's details cannot be read), or configure master_keys (docs/audit.md)", "path", path)
		}
	}
	k, err := keyring.New(keys)
	if err != nil {
		return nil, Errorf("master_keys", "%s", keyward.ErrorMessage(err))
	}
	return k, nil
}

// setMasterKeys reads KEYWARD_MASTER_KEYS.
func setMasterKeys(c *Config, v string) error {
	keys, err := keyring.ParseKeyList(strings.Split(v, ","), EnvMasterKeys)
	if err != nil {
		return errors.New(keyward.ErrorMessage(err))
	}
	c.MasterKeys, c.MasterKeyFile = keys, ""
	return nil
}
