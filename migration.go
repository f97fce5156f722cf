package keyward

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// ErrSchemaTooNew is wrapped by a store's error when its database schema is
// newer than this binary knows: a newer keyward migrated it, and this one
// must not write to it.
var ErrSchemaTooNew = errors.New("the database schema is newer than this keyward binary")

// Migration is one numbered schema change of a store backend.
type Migration struct {
	Version int
	Name    string // the file name, NNNN_description.sql
	SQL     string
}

// ReadMigrations returns the migrations matching pattern in fsys (a
// backend's embedded files, named NNNN_description.sql) in version order.
// Versions must run from 1 without gaps: a released migration is never
// edited, a change to the schema is a new file.
func ReadMigrations(fsys fs.FS, pattern string) ([]Migration, error) {
	names, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations match %s", pattern)
	}
	return ms, nil
}
