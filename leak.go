package keyward

import "context"

// PermissionReportLeak lets a non-root key call LeakService.ReportLeaks: a
// secret scanner's key holds it.
const PermissionReportLeak = "keys:report_leak"

// Bounds of a LeakReport: a report holds 1 to MaxLeakTokens tokens, each
// at most MaxLeakTokenLen bytes; Source and URL at most MaxLeakSourceLen
// and MaxLeakURLLen bytes of printable text.
const (
	MaxLeakTokens    = 100
	MaxLeakTokenLen  = 512
	MaxLeakSourceLen = 100
	MaxLeakURLLen    = 2048
)

// LeakedToken is one token found where it should not be. Token is the raw
// key as found: it is only hashed, never stored, logged or echoed.
type LeakedToken struct {
	Token string `json:"token"`
	// Source names where it was found (github, pastebin, a scanner's name).
	Source string `json:"source,omitempty"`
	// URL is where exactly it was found.
	URL string `json:"url,omitempty"`
}

// LeakReport is the input of LeakService.ReportLeaks.
type LeakReport struct {
	Tokens []LeakedToken `json:"tokens"`
	// Cascade, unless false, revokes with each key found its descendants:
	// the keys it created, the keys those created, and so on (see
	// KeyRevocation), since whoever found the token may have minted keys
	// with it. A root key's descendants are never revoked by a report.
	Cascade *bool `json:"cascade,omitempty"`
}

// LeakStatus is what a report did with one token.
type LeakStatus string

// The statuses of a reported token. A malformed token and one that is no
// key's are both LeakNotFound, so a report reveals nothing about either.
const (
	LeakRevoked  LeakStatus = "revoked"
	LeakNotFound LeakStatus = "not_found"
)

// LeakResult is the outcome of one reported token. KeyID is the revoked
// key's id and Cascaded how many of its descendants the report revoked
// with it (their key.revoke audit entries name KeyID in cascade_from),
// given to root callers only.
type LeakResult struct {
	Status   LeakStatus `json:"status"`
	KeyID    string     `json:"key_id,omitempty"`
	Cascaded int        `json:"cascaded,omitempty"`
}

// LeakResults answers a LeakReport: one result per token, in order.
type LeakResults struct {
	Results []LeakResult `json:"results"`
}

// LeakService takes reports of leaked keys. Implemented by admin.Abuse (in
// process) and client.Client (over HTTP).
type LeakService interface {
	// ReportLeaks revokes at once every key whose raw token is reported
	// and answers per token. The caller must be root or hold
	// PermissionReportLeak (EFORBIDDEN otherwise); a report that is empty
	// or beyond the bounds is EINVALID.
	ReportLeaks(ctx context.Context, r LeakReport) (*LeakResults, error)
}
