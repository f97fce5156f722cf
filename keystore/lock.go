package keystore

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockName returns the name of the lock file Add holds while it changes
// the keystore file at path: ".NAME.lock" in the same directory. It is
// created on first use and left in place (removing it would let two
// writers lock different files); it holds nothing.
func lockName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
}

// lockFile takes an exclusive lock on lockName(path), waiting for any
// other holder, and returns the function that releases it. The lock is
// advisory: it orders writers that take it (every keyward keystore add),
// not editors that ignore it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(lockName(path), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := lockExclusive(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s (%s): %w", path, f.Name(), err)
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
