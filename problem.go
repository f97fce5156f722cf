package keyward

// ProblemTypePrefix starts the type URI of every problem keyward answers;
// the error code completes it: urn:keyward:error:not_found.
const ProblemTypePrefix = "urn:keyward:error:"

// WWWAuthenticate is the challenge sent with every 401.
const WWWAuthenticate = `Bearer realm="keyward"`

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
}
