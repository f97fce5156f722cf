package keyward

import "encoding/json"

// AccountPolicy says what the keys of an account may do beyond what their
// role allows anywhere. Its zero value is the default, which keeps what
// every account could always do: user keys may create keys for their own
// user, and account_admin keys may create account_admin keys. A tenant
// whose users must not hand out keys (an OpenViking-style deployment, say)
// turns both off.
//
// In JSON it reads as the permissions it grants:
// {"users_may_mint_keys": true, "admins_may_mint_admin_keys": true}.
type AccountPolicy struct {
	// NoUserMinting forbids the account's user keys to create keys.
	NoUserMinting bool
	// NoAdminMinting forbids the account's account_admin keys to create
	// account_admin keys (user keys they may still create).
	NoAdminMinting bool
}

// accountPolicyJSON is the JSON form of AccountPolicy.
type accountPolicyJSON struct {
	UsersMayMintKeys       bool `json:"users_may_mint_keys"`
	AdminsMayMintAdminKeys bool `json:"admins_may_mint_admin_keys"`
}

// MarshalJSON implements json.Marshaler.
func (p AccountPolicy) MarshalJSON() ([]byte, error) {
	return json.Marshal(accountPolicyJSON{UsersMayMintKeys: !p.NoUserMinting, AdminsMayMintAdminKeys: !p.NoAdminMinting})
}

// UnmarshalJSON implements json.Unmarshaler; a field left out keeps its
// default (allowed).
func (p *AccountPolicy) UnmarshalJSON(b []byte) error {
	v := accountPolicyJSON{UsersMayMintKeys: true, AdminsMayMintAdminKeys: true}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = AccountPolicy{NoUserMinting: !v.UsersMayMintKeys, NoAdminMinting: !v.AdminsMayMintAdminKeys}
	return nil
}

// AccountPolicyUpdate changes the fields of an AccountPolicy that are set,
// in AccountCreate and AccountUpdate.
type AccountPolicyUpdate struct {
	UsersMayMintKeys       *bool `json:"users_may_mint_keys,omitempty"`
	AdminsMayMintAdminKeys *bool `json:"admins_may_mint_admin_keys,omitempty"`
}

// Apply returns p with the changes of u.
func (u *AccountPolicyUpdate) Apply(p AccountPolicy) AccountPolicy {
	if u == nil {
		return p
	}
	if u.UsersMayMintKeys != nil {
		p.NoUserMinting = !*u.UsersMayMintKeys
	}
	if u.AdminsMayMintAdminKeys != nil {
		p.NoAdminMinting = !*u.AdminsMayMintAdminKeys
	}
	return p
}
