package keyring

import (
	"context"

	"github.com/keyward/keyward"
)

// RekeyReport is what Rekey did.
type RekeyReport struct {
	// Version is the master key version everything was re-encrypted
	// under: the keyring's current one.
	Version int `json:"version"`
	// Resealed counts, per kind (keyward.ResealKinds, in order), the values
	// re-encrypted by this run; a kind with nothing to do counts 0.
	Resealed []keyward.SealedCount `json:"resealed"`
	// Left counts the values still sealed under other versions after the
	// run: the details of audit entries written before envelope
	// encryption (keyward.SealedAuditDetails), which the hash chain covers
	// and which can therefore not be re-encrypted. The versions they name
	// must stay configured for their details to be read.
	Left []keyward.SealedCount `json:"left,omitempty"`
}

// Rekey re-encrypts every value st keeps sealed under a master key version
// other than the current one, under the current one: secret metadata of
// keys and accounts, webhook secrets, provider connection passwords, and
// the data keys of audit entries (re-wrapped, so the entries and their
// hash chain stay as they are). It
// works in the store's batches and transactions and can be run again at
// any time: values already under the current version are left alone. A
// value that cannot be opened (its version is not configured, or it fails
// authentication) stops it with that error; what was done stays done.
func (k *Keyring) Rekey(ctx context.Context, st keyward.SealedStore) (*RekeyReport, error) {
	r := &RekeyReport{Version: k.current}
	for _, kind := range keyward.ResealKinds {
		n, err := k.ResealKind(ctx, st, kind)
		r.Resealed = append(r.Resealed, keyward.SealedCount{Kind: kind, Version: k.current, Count: n})
		if err != nil {
			return r, err
		}
	}
	counts, err := st.SealedCounts(ctx)
	if err != nil {
		return r, err
	}
	for _, c := range counts {
		if c.Version != k.current {
			r.Left = append(r.Left, c)
		}
	}
	return r, nil
}

// ResealKind re-encrypts the values of one kind as Rekey does, and returns
// how many it rewrote. A value with a LegacyAD (a provider password sealed
// before it was bound to its kind, base URL and user name) is opened with
// it and sealed with its AD, whatever its version: serve calls it for
// provider passwords at start, so that passwords sealed by an older
// keyward are bound as soon as the master keys are at hand.
func (k *Keyring) ResealKind(ctx context.Context, st keyward.SealedStore, kind keyward.SealedKind) (int64, error) {
	return st.Reseal(ctx, kind, k.current, func(v keyward.SealedValue) (*keyward.Sealed, error) {
		openAD := v.AD
		if v.LegacyAD != nil {
			openAD = v.LegacyAD
		}
		plain, err := k.Open(v.Version, v.Data, openAD)
		if err != nil {
			return nil, err
		}
		version, sealed, err := k.Seal(plain, v.AD)
		if err != nil {
			return nil, err
		}
		return &keyward.Sealed{Version: version, Data: sealed}, nil
	})
}
