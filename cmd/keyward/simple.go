package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/keystore"
	"github.com/spf13/cobra"
)

// The simple modes (docs/simple-modes.md): a static keystore file (setting
// keystore), the legacy admin key (KEYWARD_ADMIN_API_KEY, environment
// only: a secret on a command line is visible to every user of the
// machine) and dev mode (setting dev_mode, flag --dev).

// envAdminAPIKey holds the legacy admin key. Empty counts as unset.
const envAdminAPIKey = "KEYWARD_ADMIN_API_KEY"

func setDevMode(c *Config, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%q is not a boolean: use true or false", v)
	}
	c.DevMode = b
	return nil
}

// validateSimpleModes adds the problems of the simple-mode settings. Files
// are checked when they are read (loadSimpleModes).
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

// loadSimpleModes returns the verifier of the simple modes that are
// configured, or nil if none is: dev mode alone, or the keystore file and
// the legacy admin key from getenv (chained, keystore first). listenAddr is
// the address the protected server listens on: pass the bound listener's
// address (ln.Addr().String()) so dev mode checks where it really listens.
// Every problem is a *ConfigError naming the setting.
func loadSimpleModes(cfg *Config, getenv func(string) string, listenAddr string, log *slog.Logger) (keyward.KeyVerifier, error) {
	legacy := getenv(envAdminAPIKey)
	if cfg.DevMode {
		if legacy != "" {
			return nil, configErrorf("dev_mode", "dev mode lets every request through, so %s would never be consulted: turn dev mode off, or unset %s", envAdminAPIKey, envAdminAPIKey)
		}
		if cfg.Keystore != "" {
			return nil, configErrorf("dev_mode", "dev mode lets every request through, so keystore %s would never be consulted: turn dev mode off, or unset keystore", cfg.Keystore)
		}
		d, err := keystore.NewDev(listenAddr, log)
		if err != nil {
			return nil, configErrorf("dev_mode", "%s", keyward.ErrorMessage(err))
		}
		return d, nil
	}
	var vs []keyward.KeyVerifier
	if cfg.Keystore != "" {
		ks, err := keystore.Load(cfg.Keystore)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, configErrorf("keystore", "file %s does not exist: create it (docs/simple-modes.md), or unset keystore to turn the keystore off", cfg.Keystore)
		case err != nil:
			return nil, configErrorf("keystore", "%v", err)
		}
		log.Info("keystore loaded", "component", "keystore", "file", cfg.Keystore, "keys", ks.Len())
		vs = append(vs, ks)
	}
	if legacy != "" {
		l, err := keystore.Legacy(keyward.Secret(legacy), log)
		if err != nil {
			return nil, configErrorf(envAdminAPIKey, "%s", keyward.ErrorMessage(err))
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

func (a *app) keystoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keystore",
		Short: "Work with static keystore files (docs/simple-modes.md)",
	}
	hash := &cobra.Command{
		Use:   "hash",
		Short: "Print the SHA-256 digest of a token read from stdin, for a keystore file",
		Long: `Read one token from stdin and print its SHA-256 hex digest: the key of its
entry in a keystore file. Only the line ending is removed; a token with other
white space around it, or a control character in it, is refused, because no
request could present it. The token never goes on the command line.

  printf '%s' "$TOKEN" | keyward keystore hash`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := a.readToken()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, keystore.Digest(token))
			return err
		},
	}
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a keystore file and list its key ids (exit 3 if invalid)",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := keystore.Load(args[0])
			if err != nil {
				return configErrorf("keystore", "%v", err)
			}
			_, err = fmt.Fprintf(a.stdout, "%s: %d keys: %s\n", args[0], ks.Len(), strings.Join(ks.IDs(), ", "))
			return err
		},
	}
	cmd.AddCommand(hash, check)
	return cmd
}

// readToken reads one token from stdin without trimming anything but the
// line ending.
func (a *app) readToken() (string, error) {
	in := a.m.Stdin
	if in == nil {
		in = os.Stdin
	}
	b, err := io.ReadAll(io.LimitReader(in, keystore.MaxTokenLength+3))
	if err != nil {
		return "", fmt.Errorf("reading the token from stdin: %w", err)
	}
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	switch {
	case len(rest) > 0:
		return "", usageErrorf("stdin holds more than one line: give one token")
	case len(line) == 0:
		return "", usageErrorf("no token on stdin: printf '%%s' \"$TOKEN\" | keyward keystore hash")
	}
	if err := keystore.CheckToken(string(line)); err != nil {
		return "", usageErrorf("%s: no request could present it, so its digest would never match", keyward.ErrorMessage(err))
	}
	return string(line), nil
}
