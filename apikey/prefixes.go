package apikey

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/keyward/keyward"
)

// Prefixes are a deployment's key prefixes (the key_prefixes block of
// keyward.yaml): one per tier for keys of the default environment, and a
// segment per environment that the prefix of its keys carries after the
// prefix's first segment. With the defaults, a live user key starts
// kw_user_ and a test one kw_test_user_; with root "ovk_root" and the
// segment "test", a test root key starts ovk_test_root_.
//
// A prefix may be written with the underscore that separates it from the
// key's body ("ovk_root_"); it is the same prefix. Prefixes pick the
// prefix of new keys and make the secret-scanning patterns; verification
// hashes the whole key, so keys made under earlier prefixes keep
// verifying after a change.
type Prefixes struct {
	// Root, AccountAdmin and User are the prefixes of the tiers' keys in
	// the default environment; empty takes PrefixRoot, PrefixAccountAdmin
	// and PrefixUser.
	Root         string `yaml:"root"`
	AccountAdmin string `yaml:"account_admin"`
	User         string `yaml:"user"`
	// Environments maps each environment to its segment, added to the
	// two every deployment has (live, with no segment, and test, with
	// the segment "test") or replacing theirs: an environment keys may be
	// created in needs an entry.
	Environments map[string]string `yaml:"environments"`
}

// defaultEnvironments are the environments every deployment has, with
// their segments unless Prefixes.Environments gives others.
var defaultEnvironments = map[string]string{keyward.DefaultEnvironment: "", "test": "test"}

// DefaultPrefixes returns the prefixes of a deployment that configures
// none.
func DefaultPrefixes() Prefixes { return Prefixes{} }

// tiers are the roles in the order patterns list them.
var tiers = []keyward.Role{keyward.RoleRoot, keyward.RoleAccountAdmin, keyward.RoleUser}

// tierSetting is the setting of role r's prefix in Prefixes.
func tierSetting(r keyward.Role) string { return string(r) }

// tier returns the prefix of role r's keys in the default environment,
// without a trailing underscore.
func (p Prefixes) tier(r keyward.Role) string {
	v, def := p.User, PrefixUser
	switch r {
	case keyward.RoleRoot:
		v, def = p.Root, PrefixRoot
	case keyward.RoleAccountAdmin:
		v, def = p.AccountAdmin, PrefixAccountAdmin
	}
	if v == "" {
		return def
	}
	return strings.TrimSuffix(v, "_")
}

// environments returns defaultEnvironments with Environments applied.
func (p Prefixes) environments() map[string]string {
	envs := maps.Clone(defaultEnvironments)
	for env, seg := range p.Environments {
		envs[env] = strings.Trim(seg, "_")
	}
	return envs
}

// EnvironmentNames returns the environments keys may be created in,
// sorted.
func (p Prefixes) EnvironmentNames() []string {
	return slices.Sorted(maps.Keys(p.environments()))
}

// Prefix returns the prefix of a key of role r in environment env (""
// for the default); accountPrefix, when set, replaces the tier prefix of
// user keys (keyward.Account.KeyPrefix). It returns EINVALID for an
// environment the prefixes do not define, or a prefix the format does not
// allow (an account prefix too long to carry the environment's segment).
func (p Prefixes) Prefix(r keyward.Role, env, accountPrefix string) (string, error) {
	env = keyward.EnvironmentOf(env)
	seg, ok := p.environments()[env]
	if !ok {
		return "", keyward.Errorf(keyward.EINVALID, "environment %q is not configured: use one of %s, or add it under key_prefixes.environments in keyward.yaml", env, strings.Join(p.EnvironmentNames(), ", "))
	}
	base := p.tier(r)
	if r == keyward.RoleUser && accountPrefix != "" {
		base = accountPrefix
	}
	prefix := withSegment(base, seg)
	if !ValidPrefix(prefix) {
		return "", keyward.Errorf(keyward.EINVALID, "the %s key prefix %q of environment %s must match [a-z][a-z0-9_]{0,18}[a-z0-9]: shorten the prefix or the environment's segment", r, prefix, env)
	}
	return prefix, nil
}

// withSegment inserts seg after the first segment of prefix ("kw_user",
// "test": "kw_test_user"), or appends it to a prefix of one segment.
func withSegment(prefix, seg string) string {
	if seg == "" {
		return prefix
	}
	if i := strings.IndexByte(prefix, '_'); i >= 0 {
		return prefix[:i+1] + seg + "_" + prefix[i+1:]
	}
	return prefix + "_" + seg
}

// PrefixError is what Validate finds wrong with one setting of Prefixes.
type PrefixError struct {
	// Setting is the setting's path inside the key_prefixes block: root,
	// account_admin, user or environments.NAME.
	Setting string
	// Problem says what is wrong and how to fix it.
	Problem string
}

func (e *PrefixError) Error() string { return "key_prefixes." + e.Setting + ": " + e.Problem }

// Validate checks the prefixes: every environment a name
// (keyward.ValidateEnvironment) with a segment of lowercase letters and
// digits, every tier and environment's prefix one the key format allows,
// and no key's beginning (prefix and underscore) the beginning of
// another's, so that each key, and each match of a scanning pattern,
// belongs to one tier and environment. It returns a *PrefixError.
func (p Prefixes) Validate() error {
	for _, r := range tiers {
		if prefix := p.tier(r); !ValidPrefix(prefix) {
			return &PrefixError{tierSetting(r), fmt.Sprintf("%q is not a key prefix: use a lowercase letter, then lowercase letters, digits and underscores, 2 to 20 characters, such as kw_%s", prefix, tierSetting(r))}
		}
	}
	envs := p.EnvironmentNames()
	for _, env := range envs {
		if err := keyward.ValidateEnvironment("environment", env); err != nil {
			return &PrefixError{"environments." + env, keyward.ErrorMessage(err)}
		}
		seg := p.environments()[env]
		for _, c := range []byte(seg) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return &PrefixError{"environments." + env, fmt.Sprintf("segment %q may hold only lowercase letters, digits and underscores, such as %s", seg, env)}
			}
		}
	}
	all, err := p.Patterns()
	if err != nil {
		return err
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			if strings.HasPrefix(b.Prefix+"_", a.Prefix+"_") || strings.HasPrefix(a.Prefix+"_", b.Prefix+"_") {
				return &PrefixError{b.setting(p), fmt.Sprintf("the %s %s prefix %s_ and the %s %s prefix %s_ overlap (one begins the other): give each tier and environment a prefix that does not begin another", a.Environment, a.Role, a.Prefix, b.Environment, b.Role, b.Prefix)}
			}
		}
	}
	return nil
}

// CheckAccountPrefix returns EINVALID when an account's user-key prefix
// (keyward.Account.KeyPrefix) would make keys that can be taken for
// another tier's or environment's: in some environment, its keys'
// beginning (prefix and underscore) begins, or is begun by, the beginning
// of root or account-admin keys, or of user keys of another environment.
// The prefixes must be valid (Validate).
func (p Prefixes) CheckAccountPrefix(accountPrefix string) error {
	all, err := p.Patterns()
	if err != nil {
		return err
	}
	for env, seg := range p.environments() {
		own := withSegment(accountPrefix, seg) + "_"
		for _, pt := range all {
			if pt.Role == keyward.RoleUser && pt.Environment == env {
				continue
			}
			if other := pt.Prefix + "_"; strings.HasPrefix(own, other) || strings.HasPrefix(other, own) {
				return keyward.Errorf(keyward.EINVALID, "key_prefix %q would make %s keys beginning %s, which overlaps the %s %s keys' %s: choose a prefix that neither begins nor is begun by another tier's or environment's", accountPrefix, env, own, pt.Environment, pt.Role, other)
			}
		}
	}
	return nil
}

// Pattern is the secret-scanning pattern of one tier and environment.
type Pattern struct {
	// ID names the pattern: keyward-ENVIRONMENT-TIER (tier root, acct or
	// user).
	ID          string       `json:"id"`
	Environment string       `json:"environment"`
	Role        keyward.Role `json:"role"`
	// Prefix is the keys' prefix, without the underscore that follows it.
	Prefix string `json:"prefix"`
	// Regex matches the keys of this tier and environment and nothing
	// else a key Parse accepts: the prefix, the underscore, RandomLen
	// base62 characters and the ChecksumLen of the CRC32 (whose first
	// can only be 0 to 4), between word boundaries. Go's regexp (RE2),
	// and with it gitleaks, trufflehog and GitHub's custom patterns,
	// accept it.
	Regex string `json:"regex"`
}

// setting is the setting of Prefixes that makes pt's prefix: its
// environment's segment, unless that is empty.
func (pt Pattern) setting(p Prefixes) string {
	if p.environments()[pt.Environment] != "" {
		return "environments." + pt.Environment
	}
	return tierSetting(pt.Role)
}

// checksumMax is the first base62 character of the largest CRC32
// (2^32-1 = 4 * 62^5 + ...): no checksum starts above it.
const checksumMax = '4'

// KeyRegex returns the pattern of the keys with prefix: see Pattern.Regex.
func KeyRegex(prefix string) string {
	return fmt.Sprintf(`\b%s_[0-9A-Za-z]{%d}[0-%c][0-9A-Za-z]{%d}\b`, regexp.QuoteMeta(prefix), RandomLen, checksumMax, ChecksumLen-1)
}

// Patterns returns the scanning pattern of each environment and tier,
// sorted by environment (the default first) then tier. It returns the
// *PrefixError of a prefix the format does not allow.
func (p Prefixes) Patterns() ([]Pattern, error) {
	envs := p.EnvironmentNames()
	slices.SortStableFunc(envs, func(a, b string) int {
		switch {
		case a == keyward.DefaultEnvironment:
			return -1
		case b == keyward.DefaultEnvironment:
			return 1
		}
		return 0
	})
	short := map[keyward.Role]string{keyward.RoleRoot: "root", keyward.RoleAccountAdmin: "acct", keyward.RoleUser: "user"}
	var out []Pattern
	for _, env := range envs {
		for _, r := range tiers {
			prefix, err := p.Prefix(r, env, "")
			if err != nil {
				pt := Pattern{Role: r, Environment: env}
				return nil, &PrefixError{pt.setting(p), keyward.ErrorMessage(err)}
			}
			out = append(out, Pattern{
				ID:          "keyward-" + env + "-" + short[r],
				Role:        r,
				Environment: env,
				Prefix:      prefix,
				Regex:       KeyRegex(prefix),
			})
		}
	}
	return out, nil
}
