package keyward

import (
	"slices"
	"strings"
)

// Cascading revocation. A key records the key that created it
// (Key.CreatedBy); the keys created by a key, the keys those created, and
// so on, are its descendants. Revoking a key with a cascade revokes its
// descendants with it, in one transaction, each with its own audit entry
// and event (see Store.UpdateKeyTree): whoever held a leaked key may have
// minted keys with it, and those must stop working too.

// KeyRevocation answers a revocation: the key as revoked and, with a
// cascade, the ids of its descendants revoked with it (those revoked
// already are not listed).
type KeyRevocation struct {
	Key
	// Cascaded lists the descendants the cascade revoked, each key before
	// the keys it created.
	Cascaded []string `json:"cascaded,omitempty"`
}

// KeyTreeOrder orders the keys of the tree rooted at the key with id
// rootID, for stores implementing UpdateKeyTree: the root first, then
// breadth first, every key before the keys it created, siblings by id.
// Keys of keys not reachable from the root are left out.
func KeyTreeOrder(rootID string, keys []*Key) []*Key {
	children := make(map[string][]*Key, len(keys))
	var root *Key
	for _, k := range keys {
		if k.ID == rootID {
			root = k
			continue
		}
		children[k.CreatedBy] = append(children[k.CreatedBy], k)
	}
	if root == nil {
		return nil
	}
	out := []*Key{root}
	for i := 0; i < len(out); i++ {
		kids := children[out[i].ID]
		slices.SortFunc(kids, func(a, b *Key) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, kids...)
		delete(children, out[i].ID) // a key is visited once
	}
	return out
}
