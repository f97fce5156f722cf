package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
)

// maxResponse bounds the response body a provider may send.
const maxResponse = 4 << 20

// HTTP is the HTTP plumbing the providers share: requests to one base URL
// with a timeout, failures mapped to keyward errors that name the provider.
type HTTP struct {
	// Kind names the provider in errors ("gitea").
	Kind string
	// Base is the provider's base URL, without a trailing slash.
	Base   string
	Client *http.Client
}

// NewHTTP returns the plumbing of a connection, or EINVALID for a base URL
// that is not an absolute http(s) URL.
func NewHTTP(kind string, c Connection) (*HTTP, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "%s base URL: give an absolute http(s) URL such as https://git.example.com", kind)
	}
	if u.User != nil {
		return nil, keyward.Errorf(keyward.EINVALID, "%s base URL carries credentials: remove them from the URL and give them as the username and password", kind)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(c.BaseURL, "#") {
		return nil, keyward.Errorf(keyward.EINVALID, "%s base URL has a query or fragment: give the URL the system is served at, such as https://git.example.com or https://example.com/gitea", kind)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &HTTP{
		Kind:   kind,
		Base:   strings.TrimRight(c.BaseURL, "/"),
		Client: &http.Client{Transport: c.Transport, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

// Response is a provider's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode decodes the body as JSON into v; EUPSTREAM if it is not.
func (h *HTTP) Decode(r *Response, v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return keyward.WrapError(keyward.EUPSTREAM, err, "%s at %s answered %d with a body that is not the expected JSON: is this URL really %s?", h.Kind, h.Base, r.Status, h.Kind)
	}
	return nil
}

// Do sends a request to path (relative to the base URL) with body encoded
// as JSON (none when nil), after setup adds headers. Any status comes back
// as a Response; only transport failures are errors: EUPSTREAMTIMEOUT for
// a timeout, EUPSTREAM otherwise, both naming the provider and its URL.
func (h *HTTP) Do(ctx context.Context, method, path string, body any, setup func(*http.Request)) (*Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "%s: encoding the request", h.Kind)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.Base+path, rd)
	if err != nil {
		return nil, keyward.WrapError(keyward.EINVALID, err, "%s: bad request to %s", h.Kind, h.Base)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if setup != nil {
		setup(req)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, h.transportError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, h.transportError(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// transportError maps a failed exchange to EUPSTREAMTIMEOUT or EUPSTREAM.
func (h *HTTP) transportError(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return keyward.WrapError(keyward.EUPSTREAMTIMEOUT, err, "%s at %s did not answer within %s: check that it is up, or raise the connection's timeout", h.Kind, h.Base, h.Client.Timeout)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return keyward.WrapError(keyward.EUPSTREAM, err, "cannot reach %s at %s: %v", h.Kind, h.Base, oe.Err)
	}
	return keyward.WrapError(keyward.EUPSTREAM, err, "cannot reach %s at %s", h.Kind, h.Base)
}

// Unexpected returns the EUPSTREAM error of an answer the provider should
// not have given, with its Message.
func (h *HTTP) Unexpected(r *Response, what string) error {
	return keyward.Errorf(keyward.EUPSTREAM, "%s at %s answered %s with %d: %s", h.Kind, h.Base, what, r.Status, Message(r))
}

// maxMessage bounds the provider message quoted in an error, in runes.
const maxMessage = 200

// Message returns the "message" of an error answer as Gitea and n8n write
// them (shortened), or the status text. Nothing else of a body is ever
// quoted: a success body may hold a token, and a body from something that
// is not the provider may hold anything. A 2xx answer gives the status
// text alone.
func Message(r *Response) string {
	var e struct {
		Message string `json:"message"`
	}
	if r.Status/100 != 2 && json.Unmarshal(r.Body, &e) == nil {
		if m := []rune(strings.TrimSpace(e.Message)); len(m) > maxMessage {
			return string(m[:maxMessage]) + "..."
		} else if len(m) > 0 {
			return string(m)
		}
	}
	return http.StatusText(r.Status)
}
