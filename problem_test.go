package keyward_test

import (
	"testing"

	"github.com/keyward/keyward"
)

// TestErrorTable pins the one table of codes, statuses and titles that the
// API, the gateway, the middleware and the client share.
func TestErrorTable(t *testing.T) {
	for code, want := range map[string]struct {
		status int
		title  string
	}{
		keyward.EINVALID:         {400, "Invalid request"},
		keyward.EUNAUTHORIZED:    {401, "Unauthorized"},
		keyward.EFORBIDDEN:       {403, "Forbidden"},
		keyward.ENOTFOUND:        {404, "Not found"},
		keyward.ECONFLICT:        {409, "Conflict"},
		keyward.ETOOLARGE:        {413, "Request too large"},
		keyward.ERATELIMITED:     {429, "Rate limited"},
		keyward.EUNAVAILABLE:     {503, "Unavailable"},
		keyward.EINTERNAL:        {500, "Internal error"},
		keyward.EUPSTREAM:        {502, "Provider error"},
		keyward.EUPSTREAMTIMEOUT: {504, "Provider timeout"},
		keyward.EQUERY:           {400, "Invalid permission query"},
	} {
		if got := keyward.HTTPStatus(code); got != want.status {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, want.status)
		}
		if got := keyward.ProblemTitle(code); got != want.title {
			t.Errorf("ProblemTitle(%q) = %q, want %q", code, got, want.title)
		}
		p := keyward.NewProblem(code, "d", "/x")
		if p.Type != keyward.ProblemTypePrefix+code || p.Code != code || p.Status != want.status || p.Title != want.title || p.Detail != "d" || p.Instance != "/x" {
			t.Errorf("NewProblem(%q) = %+v", code, p)
		}
	}
	if got := keyward.HTTPStatus("no_such_code"); got != 500 {
		t.Errorf("HTTPStatus of an unknown code = %d, want 500", got)
	}
	if got := keyward.ProblemTitle("no_such_code"); got != "" {
		t.Errorf("ProblemTitle of an unknown code = %q, want empty", got)
	}
	if p := keyward.NewProblem("no_such_code", "d", ""); p.Code != keyward.EINTERNAL || p.Status != 500 {
		t.Errorf("NewProblem of an unknown code = %+v, want an internal error", p)
	}
}

// TestCodeOfHTTPStatus: the client's reading of an error response without
// a code, the inverse of the table where a bare status is unambiguous.
func TestCodeOfHTTPStatus(t *testing.T) {
	for status, want := range map[int]string{
		400: keyward.EINVALID,
		405: keyward.EINVALID,
		415: keyward.EINVALID,
		401: keyward.EUNAUTHORIZED,
		403: keyward.EFORBIDDEN,
		404: keyward.ENOTFOUND,
		409: keyward.ECONFLICT,
		413: keyward.ETOOLARGE,
		429: keyward.ERATELIMITED,
		500: keyward.EINTERNAL,
		502: keyward.EUNAVAILABLE, // a proxy's page: keyward not reachable
		503: keyward.EUNAVAILABLE,
		504: keyward.EUNAVAILABLE,
		418: keyward.EINTERNAL,
		302: keyward.EINTERNAL,
	} {
		if got := keyward.CodeOfHTTPStatus(status); got != want {
			t.Errorf("CodeOfHTTPStatus(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestDecisionRefusal: every refused decision has its one client-facing
// error, and the credential decisions cannot be told apart.
func TestDecisionRefusal(t *testing.T) {
	for d, want := range map[keyward.Decision][2]string{
		keyward.DecisionMalformed:               {keyward.EUNAUTHORIZED, "invalid API key"},
		keyward.DecisionNotFound:                {keyward.EUNAUTHORIZED, "invalid API key"},
		keyward.DecisionDisabled:                {keyward.EUNAUTHORIZED, "invalid API key"},
		keyward.DecisionRevoked:                 {keyward.EUNAUTHORIZED, "invalid API key"},
		keyward.DecisionExpired:                 {keyward.EUNAUTHORIZED, "invalid API key"},
		keyward.DecisionIPBlocked:               {keyward.EFORBIDDEN, "requests from this address are not allowed"},
		keyward.DecisionIPNotAllowed:            {keyward.EFORBIDDEN, "requests from this address are not allowed"},
		keyward.DecisionInsufficientPermissions: {keyward.EFORBIDDEN, "the API key lacks the required permissions"},
		keyward.DecisionRateLimited:             {keyward.ERATELIMITED, "rate limit exceeded: slow down"},
		keyward.DecisionUsageExceeded:           {keyward.ERATELIMITED, "usage quota exhausted"},
		keyward.DecisionUnavailable:             {keyward.EUNAVAILABLE, "API keys cannot be checked right now: try again shortly"},
		keyward.DecisionValid:                   {keyward.EINTERNAL, `unexpected decision "VALID"`},
		"SOMETHING_NEW":                         {keyward.EINTERNAL, `unexpected decision "SOMETHING_NEW"`},
	} {
		e := d.Refusal()
		if e.Code != want[0] || e.Message != want[1] {
			t.Errorf("%s.Refusal() = %s %q, want %s %q", d, e.Code, e.Message, want[0], want[1])
		}
	}
}
