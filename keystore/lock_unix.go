//go:build unix

package keystore

import (
	"os"
	"syscall"
)

// lockExclusive blocks until it holds flock's exclusive lock on f, which
// lasts until f is closed.
func lockExclusive(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}
