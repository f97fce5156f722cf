package keyward

import (
	"context"
	"time"
)

// ReplicaReader is implemented by a Store that may answer KeyByHash from
// read replicas, which lag behind the primary (a PostgreSQL store with
// store_replicas). Such a store never answers from a replica more than
// ReplicaMaxLag behind the primary, and answers a lookup whose context
// carries ReadAfter from a database that has applied every change committed
// before that time. The verification engine uses both so that a change it
// has heard of (a revocation) is never undone by a lagging replica.
type ReplicaReader interface {
	// ReplicaMaxLag is how far behind the primary a replica may be and
	// still answer a lookup without ReadAfter; zero when no replica is
	// read.
	ReplicaMaxLag() time.Duration
}

type readAfterKey struct{}

// ContextReadAfter returns a copy of ctx asking a ReplicaReader to answer
// from a database that has applied every change committed before t (the
// primary, or a replica that has caught up with it since t).
func ContextReadAfter(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, readAfterKey{}, t)
}

// ReadAfter returns the time ContextReadAfter set on ctx, zero if none.
func ReadAfter(ctx context.Context) time.Time {
	t, _ := ctx.Value(readAfterKey{}).(time.Time)
	return t
}
