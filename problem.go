package keyward

// ProblemTypePrefix starts the type URI of every problem keyward answers;
// the error code completes it: urn:keyward:error:not_found.
const ProblemTypePrefix = "urn:keyward:error:"

// ProblemContentType is the media type of every refusal (RFC 9457).
const ProblemContentType = "application/problem+json"

// WWWAuthenticate is the default challenge sent with every 401.
const WWWAuthenticate = `Bearer realm="keyward"`

// HeaderAgent names the agent acting with a key. It is echoed in the
// identity and never grants anything.
const HeaderAgent = "X-Keyward-Agent"

// MaxAgentLen bounds the agent a request names, in bytes.
const MaxAgentLen = 200

// Problem is an RFC 9457 problem detail (application/problem+json) with
// keyward's stable error code: the shape of every error of the API, the
// gateway and the middleware, which the client turns back into an *Error.
type Problem struct {
	// Type is ProblemTypePrefix + Code.
	Type string `json:"type"`
	// Title is a short summary of the code, the same for every occurrence.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence; it is safe to show to a user.
	Detail string `json:"detail"`
	// Code is the stable keyward error code (ENOTFOUND, ...).
	Code string `json:"code"`
	// Instance is the path of the request that failed.
	Instance string `json:"instance,omitempty"`
	// Position, with EQUERY, is the 1-based byte position of the syntax
	// error in the permission query.
	Position int `json:"position,omitempty"`
	// LimitLevel, on a 429 of the middleware, the gateway or forward-auth,
	// is the level whose rate limits or credits refused the request: key,
	// user or account.
	LimitLevel LimitLevel `json:"limit_level,omitempty"`
}

// codeInfo is one row of the error table.
type codeInfo struct {
	status int
	title  string
}

// errorTable maps every error code to its HTTP status and problem title. It
// is the only place where codes meet statuses: the API, the gateway, the
// middleware and the client all read it. Statuses are written as numbers
// so the domain needs no HTTP package.
var errorTable = map[string]codeInfo{
	EINVALID:      {400, "Invalid request"},
	EUNAUTHORIZED: {401, "Unauthorized"},
	EFORBIDDEN:    {403, "Forbidden"},
	ENOTFOUND:     {404, "Not found"},
	ECONFLICT:     {409, "Conflict"},
	ETOOLARGE:     {413, "Request too large"},
	ERATELIMITED:  {429, "Rate limited"},
	EUNAVAILABLE:  {503, "Unavailable"},
	EINTERNAL:     {500, "Internal error"},
	// A provider of external credentials failed or timed out: the
	// detail names it.
	EUPSTREAM:        {502, "Provider error"},
	EUPSTREAMTIMEOUT: {504, "Provider timeout"},
	EQUERY:           {400, "Invalid permission query"},
}

// HTTPStatus returns the HTTP status of an error code; unknown codes are
// internal errors (500).
func HTTPStatus(code string) int {
	if info, ok := errorTable[code]; ok {
		return info.status
	}
	return errorTable[EINTERNAL].status
}

// ProblemTitle returns the problem title of an error code, "" for a code
// keyward does not define.
func ProblemTitle(code string) string {
	return errorTable[code].title
}

// CodeOfHTTPStatus returns the error code of an HTTP status for an error
// response that carries no code of its own (a proxy's HTML page, say): the
// code the error table gives that status, except that 400 (which EQUERY
// shares), 405 and 415 are EINVALID and a bare 502 or 504 is EUNAVAILABLE
// (a proxy could not reach keyward; keyward's own provider errors always
// carry their code). Any other status is EINTERNAL.
func CodeOfHTTPStatus(status int) string {
	switch status {
	case 400, 405, 415:
		return EINVALID
	case 502, 504:
		return EUNAVAILABLE
	}
	for code, info := range errorTable {
		if info.status == status {
			return code
		}
	}
	return EINTERNAL
}

// NewProblem returns the problem of error code with detail at instance:
// type, title and status from the error table. An unknown code becomes
// EINTERNAL. Redacting detail and instance is the caller's job.
func NewProblem(code, detail, instance string) *Problem {
	if _, ok := errorTable[code]; !ok {
		code = EINTERNAL
	}
	info := errorTable[code]
	return &Problem{
		Type:     ProblemTypePrefix + code,
		Title:    info.title,
		Status:   info.status,
		Detail:   detail,
		Code:     code,
		Instance: instance,
	}
}
