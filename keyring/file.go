package keyring

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// ParseKeyList parses master keys written VERSION:ENCODING:VALUE, one per
// line or several on a line separated by commas (as in the
// KEYWARD_MASTER_KEYS environment variable). Blank entries and lines
// starting with # are skipped. Every key is checked to decode to 32 bytes,
// and the result, keyed by version, is ready for New. source names where the
// list came from ("KEYWARD_MASTER_KEYS", "master key file /data/master.key")
// in errors, which are EINVALID and never quote a key.
func ParseKeyList(lines []string, source string) (map[int]keyward.Secret, error) {
	var entries []string
	for _, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for e := range strings.SplitSeq(line, ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) == 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "%s holds no master key: write VERSION:ENCODING:VALUE, e.g. 1:%s", source, keyExample)
	}
	out := make(map[int]keyward.Secret, len(entries))
	for i, e := range entries {
		first, rest, ok := strings.Cut(e, ":")
		v, err := strconv.Atoi(first)
		if !ok || err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "%s: entry %d has no version: write VERSION:ENCODING:VALUE, e.g. 1:%s", source, i+1, keyExample)
		}
		if v <= 0 {
			return nil, keyward.Errorf(keyward.EINVALID, "%s: entry %d has version %d: versions are positive integers", source, i+1, v)
		}
		if _, dup := out[v]; dup {
			return nil, keyward.Errorf(keyward.EINVALID, "%s: version %d appears twice: give each master key its own version", source, v)
		}
		if _, err := decodeKey(keyward.Secret(rest)); err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "%s: master key version %d %v", source, v, err)
		}
		out[v] = keyward.Secret(rest)
	}
	return out, nil
}

// LoadOrCreateFile reads the master keys in the file at path (one
// VERSION:ENCODING:VALUE per line, # comments allowed). When the file does
// not exist it creates it, and its directory, holding one new key as
// version 1, with mode 0600, and reports created so the caller can warn that
// the file must be backed up. It returns EINVALID when the file is readable
// or writable by group or others (the message says to chmod 600 it), is not
// a regular file, or does not parse; EINTERNAL when it cannot be read or
// written.
func LoadOrCreateFile(path string) (keys map[int]keyward.Secret, created bool, err error) {
	keys, err = readFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return keys, false, err
	}
	keys, err = createFile(path)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first: use theirs.
		keys, err = readFile(path)
		return keys, false, err
	}
	return keys, err == nil, err
}

// readFile reads a master key file after checking that only its owner can
// reach it. A missing file gives an error matching fs.ErrNotExist.
func readFile(path string) (map[int]keyward.Secret, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "reading master key file %s", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, keyward.Errorf(keyward.EINVALID, "master key file %s is not a regular file: point master_key_file at a file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "master key file %s has mode %04o, so others on this machine can read it: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "reading master key file %s", path)
	}
	return ParseKeyList(strings.Split(string(b), "\n"), "master key file "+path)
}

// createFile writes a new master key to path, which must not exist, with
// mode 0600 and returns it. An existing file gives an error matching
// fs.ErrExist.
func createFile(path string) (map[int]keyward.Secret, error) {
	key, err := Generate()
	if err != nil {
		return nil, err
	}
	content := "# keyward master keys, generated " + time.Now().UTC().Format(time.RFC3339) + ".\n" +
		"# Keep them secret and back them up with the database: without them encrypted data is lost.\n" +
		"# Format: VERSION:ENCODING:VALUE, one per line; the highest version encrypts new data.\n" +
		"1:" + key.Reveal() + "\n"
	if err := CreateSecretFile(path, content); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "creating master key file %s", path)
	}
	return map[int]keyward.Secret{1: key}, nil
}

// CreateSecretFile writes content to a new file at path with mode 0600,
// creating its directory with mode 0700, and syncs it. It never replaces a
// file: an existing one gives an error matching fs.ErrExist (another
// process was first). A failed write removes the file. Peppers and master
// keys are written with it.
func CreateSecretFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
