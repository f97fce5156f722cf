package keyward_test

import (
	"regexp"
	"testing"

	"github.com/keyward/keyward"
)

var environmentName = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

func TestValidateEnvironment(t *testing.T) {
	for _, ok := range []string{"live", "test", "a", "staging2", "abcdefghijklmnop"} {
		if err := keyward.ValidateEnvironment("environment", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Live", "2test", "te-st", "te_st", "live ", "abcdefghijklmnopq", "tést"} {
		if err := keyward.ValidateEnvironment("environment", bad); keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("%q: %v, want EINVALID", bad, err)
		}
	}
	if got := keyward.EnvironmentOf(""); got != keyward.DefaultEnvironment {
		t.Errorf("EnvironmentOf(\"\") = %q, want %q", got, keyward.DefaultEnvironment)
	}
	if got := keyward.EnvironmentOf("test"); got != "test" {
		t.Errorf("EnvironmentOf(test) = %q", got)
	}
}

// FuzzValidateEnvironment: environment names come from requests (create,
// list, verify); whatever the input, ValidateEnvironment accepts exactly
// [a-z][a-z0-9]{0,15}.
func FuzzValidateEnvironment(f *testing.F) {
	for _, s := range []string{"live", "test", "", "Live", "a\x00", "abcdefghijklmnopq", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := keyward.ValidateEnvironment("environment", s)
		if want := environmentName.MatchString(s); (err == nil) != want {
			t.Fatalf("ValidateEnvironment(%q) = %v, want accepted %t", s, err, want)
		}
	})
}
