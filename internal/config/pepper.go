package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keyring"
)

// Peppers are written as ENCODING:VALUE, where ENCODING is hex or base64
// (standard or URL alphabet, padded or not), and listed as
// VERSION:ENCODING:VALUE. Messages about a pepper never quote its value.
const PepperExample = "hex:$(openssl rand -hex 32)"

// GeneratedPepperLen is the size of a pepper keyward generates.
const GeneratedPepperLen = 32

// DecodePepper returns the bytes of an ENCODING:VALUE pepper.
func DecodePepper(s keyward.Secret) ([]byte, error) {
	b, err := s.Decode(PepperExample)
	if err != nil {
		return nil, err
	}
	if len(b) < apikey.MinPepperLen {
		return nil, fmt.Errorf("is %d bytes: use at least %d random bytes, e.g. %s", len(b), apikey.MinPepperLen, PepperExample)
	}
	return b, nil
}

// ParsePepperList parses entries of the form VERSION:ENCODING:VALUE; a lone
// entry may leave out VERSION and is version 1. Blank entries and lines
// starting with # are skipped. setting names the source in errors.
func ParsePepperList(entries []string, setting string) (map[int]keyward.Secret, error) {
	var clean []string
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		clean = append(clean, e)
	}
	if len(clean) == 0 {
		return nil, Errorf(setting, "holds no pepper: write VERSION:ENCODING:VALUE, e.g. 1:%s", PepperExample)
	}
	out := make(map[int]keyward.Secret, len(clean))
	for i, e := range clean {
		first, rest, _ := strings.Cut(e, ":")
		v, err := strconv.Atoi(first)
		if err != nil {
			if len(clean) > 1 {
				return nil, Errorf(setting, "entry %d has no version: write VERSION:ENCODING:VALUE, e.g. 2:%s", i+1, PepperExample)
			}
			v, rest = 1, e
		}
		if v <= 0 {
			return nil, Errorf(setting, "entry %d has version %d: versions are positive integers", i+1, v)
		}
		if _, dup := out[v]; dup {
			return nil, Errorf(setting, "version %d appears twice: give each pepper its own version", v)
		}
		out[v] = keyward.Secret(rest)
	}
	return out, nil
}

// PepperSource says where the peppers of c come from, for logs and config
// check. It never includes a pepper.
func (c *Config) PepperSource() string {
	switch {
	case len(c.Peppers) > 0:
		return c.Source("peppers")
	case c.PepperFile != "":
		return "file " + c.PepperFile
	}
	return "file " + c.DefaultPepperPath() + " (generated when missing)"
}

// LoadPeppers returns the raw peppers by version, ready for apikey.NewHasher.
// With none configured it reads DATA/pepper, generating it (mode 0600, with
// a warning) when generate is set; without generate a missing file gives
// nil peppers and no error. A pepper file readable by group or others is
// refused.
func (c *Config) LoadPeppers(log *slog.Logger, generate bool) (map[int]keyward.Secret, error) {
	encoded := c.Peppers
	if len(encoded) == 0 {
		path, setting := c.PepperFile, "pepper_file"
		if path == "" {
			path, setting = c.DefaultPepperPath(), "data"
		}
		var err error
		encoded, err = readPepperFile(path, setting)
		switch {
		case errors.Is(err, fs.ErrNotExist) && setting == "pepper_file":
			return nil, Errorf("pepper_file", "%s does not exist: create it (mode 0600) holding 1:%s, or unset pepper_file to have keyward generate one", path, PepperExample)
		case errors.Is(err, fs.ErrNotExist) && !generate:
			return nil, nil
		case errors.Is(err, fs.ErrNotExist):
			encoded, err = generatePepperFile(path)
			if errors.Is(err, fs.ErrExist) {
				// Another process generated it first: use theirs.
				encoded, err = readPepperFile(path, setting)
			} else if err == nil {
				log.Warn("no pepper configured: generated one; back it up with the database (without it no existing key verifies), or configure peppers (docs/configuration.md)", "path", path)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	raw := make(map[int]keyward.Secret, len(encoded))
	for v, p := range encoded {
		b, err := DecodePepper(p)
		if err != nil {
			return nil, Errorf("peppers", "version %d %v", v, err)
		}
		raw[v] = keyward.Secret(b)
	}
	return raw, nil
}

// readPepperFile reads a pepper file after checking that only its owner
// can read it. Errors other than a missing file are *Error.
func readPepperFile(path, setting string) (map[int]keyward.Secret, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, Errorf(setting, "pepper file: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, Errorf(setting, "pepper file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, Errorf(setting, "pepper file %s has mode %04o, so others on this machine can read it: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Errorf(setting, "pepper file: %v", err)
	}
	p, err := ParsePepperList(strings.Split(string(b), "\n"), setting)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			for _, e := range ce.Errors {
				e.Problem = "pepper file " + path + " " + e.Problem
			}
		}
		return nil, err
	}
	for v, s := range p {
		if _, err := DecodePepper(s); err != nil {
			return nil, Errorf(setting, "pepper file %s: version %d %v", path, v, err)
		}
	}
	return p, nil
}

// generatePepperFile writes a new random pepper to path (which must not
// exist) with mode 0600 and returns it.
func generatePepperFile(path string) (map[int]keyward.Secret, error) {
	b := make([]byte, GeneratedPepperLen)
	rand.Read(b)
	spec := "hex:" + hex.EncodeToString(b)
	content := "# keyward pepper, generated " + time.Now().UTC().Format(time.RFC3339) + ".\n" +
		"# Keep it secret and back it up with the database: without it no key verifies.\n" +
		"# Format: VERSION:ENCODING:VALUE, one per line; the highest version hashes new keys.\n" +
		"1:" + spec + "\n"
	if err := keyring.CreateSecretFile(path, content); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, Errorf("data", "writing the pepper file %s: %v", path, err)
	}
	return map[int]keyward.Secret{1: keyward.Secret(spec)}, nil
}

// PrepareDataDir creates the data directory (mode 0700) when create is set
// and refuses one that group or others can access at all: whoever can
// replace its files can replace the pepper and the database, and whoever
// can read them can read the pepper and the key hashes (fail closed).
func (c *Config) PrepareDataDir(create bool) error {
	if create {
		if err := os.MkdirAll(c.Data, 0o700); err != nil {
			return Errorf("data", "creating the data directory: %v", err)
		}
	}
	fi, err := os.Stat(c.Data)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !create {
			return nil
		}
		return Errorf("data", "%v", err)
	}
	if !fi.IsDir() {
		return Errorf("data", "%s is not a directory: point data at a directory", c.Data)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return Errorf("data", "directory %s has mode %04o, so others on this machine can reach the pepper and the database in it: run chmod 700 %s", c.Data, fi.Mode().Perm(), c.Data)
	}
	return nil
}

func joinPath(dir, name string) string { return filepath.Join(dir, name) }
