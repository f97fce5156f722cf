package keyward

import (
	"bytes"
	"encoding/json"
)

// MergeMeta returns the meta a key answers verify with: the JSON object
// inherited (its user's meta or secret metadata) with the key's own object
// laid over it field by field, the key's value winning for a field both
// set. Either may be empty; when one is, the other is returned as it is
// (not copied). Fields are merged at the top level only: a key's "db"
// object replaces its user's "db" object whole. A value that is not a JSON
// object (stores never hold one) is not merged: own wins whole.
func MergeMeta(inherited, own json.RawMessage) json.RawMessage {
	if isEmptyMeta(inherited) {
		return own
	}
	if isEmptyMeta(own) {
		return inherited
	}
	var base, over map[string]json.RawMessage
	if json.Unmarshal(inherited, &base) != nil || json.Unmarshal(own, &over) != nil || base == nil || over == nil {
		return own
	}
	for k, v := range over {
		base[k] = v
	}
	out, err := json.Marshal(base) // sorted fields: the same input merges to the same bytes
	if err != nil {
		return own
	}
	return out
}

// isEmptyMeta reports whether m holds no meta: nothing, or JSON null.
func isEmptyMeta(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) == 0 || bytes.Equal(m, []byte("null"))
}
