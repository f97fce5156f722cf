package server

import (
	"errors"
	"io/fs"
	"log/slog"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/keystore"
)

// LoadSimpleModes returns the verifier of the simple modes that are
// configured, or nil if none is: dev mode alone, or the keystore file and
// the legacy admin key from getenv (chained, keystore first). listenAddr is
// the address the protected server listens on: pass the bound listener's
// address (ln.Addr().String()) so dev mode checks where it really listens.
// Every problem is a *config.Error naming the setting.
func LoadSimpleModes(cfg *config.Config, getenv func(string) string, listenAddr string, log *slog.Logger) (keyward.KeyVerifier, error) {
	legacy := getenv(config.EnvAdminAPIKey)
	if cfg.DevMode {
		if legacy != "" {
			return nil, config.Errorf("dev_mode", "dev mode lets every request through, so %s would never be consulted: turn dev mode off, or unset %s", config.EnvAdminAPIKey, config.EnvAdminAPIKey)
		}
		if cfg.Keystore != "" {
			return nil, config.Errorf("dev_mode", "dev mode lets every request through, so keystore %s would never be consulted: turn dev mode off, or unset keystore", cfg.Keystore)
		}
		d, err := keystore.NewDev(listenAddr, log)
		if err != nil {
			return nil, config.Errorf("dev_mode", "%s", keyward.ErrorMessage(err))
		}
		return d, nil
	}
	var vs []keyward.KeyVerifier
	if cfg.Keystore != "" {
		ks, err := keystore.Load(cfg.Keystore)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, config.Errorf("keystore", "file %s does not exist: create it (docs/simple-modes.md), or unset keystore to turn the keystore off", cfg.Keystore)
		case err != nil:
			return nil, config.Errorf("keystore", "%v", err)
		}
		log.Info("keystore loaded", "component", "keystore", "file", cfg.Keystore, "keys", ks.Len())
		vs = append(vs, ks)
	}
	if legacy != "" {
		l, err := keystore.Legacy(keyward.Secret(legacy), log)
		if err != nil {
			return nil, config.Errorf(config.EnvAdminAPIKey, "%s", keyward.ErrorMessage(err))
		}
		vs = append(vs, l)
	}
	switch len(vs) {
	case 0:
		return nil, nil
	case 1:
		return vs[0], nil
	}
	return keystore.Chain(vs...), nil
}
