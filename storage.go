package keyward

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// ErrStorageFull is in the chain of every error of a write a store refused
// because its storage is full (SQLite's SQLITE_FULL: the disk, or the
// database's page limit; PostgreSQL's disk_full, SQLSTATE 53100):
// errors.Is(err, ErrStorageFull).
var ErrStorageFull = errors.New("storage full")

// StorageFull tracks whether a store's storage is full. A store calls
// Refused when a write fails for lack of space and Wrote when one commits;
// the first refusal of an episode is logged at error level, its end at
// info. Its methods are safe for concurrent use; the zero value is ready,
// logging to slog.Default() until SetLogger.
type StorageFull struct {
	full     atomic.Bool
	last     atomic.Int64 // unix nanoseconds of the last refusal
	episodes atomic.Int64
	log      atomic.Pointer[slog.Logger]
}

// StorageFullFor is how long a refused write keeps the storage reported
// full (Full) when no write is tried since: an instance taken out of a
// load balancer because of it, and so writing nothing, is reported ready
// again after it, and finds out afresh.
const StorageFullFor = 30 * time.Second

// StorageReporter is implemented by stores that track their storage
// filling up (both of keyward's): metrics and readiness read it.
type StorageReporter interface {
	Storage() *StorageFull
}

// SetLogger sets where episodes are logged.
func (f *StorageFull) SetLogger(l *slog.Logger) { f.log.Store(l) }

func (f *StorageFull) logger() *slog.Logger {
	if l := f.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

// Refused records a write refused for lack of space and returns the error
// to answer with: EUNAVAILABLE "storage full", with ErrStorageFull and
// cause in its chain.
func (f *StorageFull) Refused(cause error) error {
	f.last.Store(time.Now().UnixNano())
	if !f.full.Swap(true) {
		f.episodes.Add(1)
		f.logger().Error("storage full: the database refuses writes; free disk space (or raise the database's size limit): reads still work, and writes resume by themselves once there is room",
			"err", cause)
	}
	return WrapError(EUNAVAILABLE, fmt.Errorf("%w: %w", ErrStorageFull, cause),
		"storage full: the database cannot take writes until its operator frees space; try again later")
}

// Wrote records a committed write: it ends an episode.
func (f *StorageFull) Wrote() {
	if f.full.Load() && f.full.CompareAndSwap(true, false) {
		f.logger().Info("storage has room again: the database takes writes")
	}
}

// Full reports whether the last write the store tried was refused for
// lack of space, within StorageFullFor.
func (f *StorageFull) Full() bool {
	return f.full.Load() && time.Since(time.Unix(0, f.last.Load())) < StorageFullFor
}

// Episodes returns how many times the storage became full.
func (f *StorageFull) Episodes() int64 { return f.episodes.Load() }
