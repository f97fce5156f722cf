package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
)

// stamp overwrites the top-level field of r's JSON object body with value,
// whatever r's method (an upstream may read the body of a DELETE or of an
// unknown method); fields of the same name in another case go too (some
// decoders match names case-insensitively). Other fields keep their
// values; the object is re-encoded with its keys sorted. An empty body is
// left alone. It refuses bodies it cannot rewrite: not JSON, compressed,
// larger than max, or not an object.
func stamp(r *http.Request, field, value string, max int64) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return keyward.Errorf(keyward.EINVALID, "this route sets %q in request bodies: send the body uncompressed (no Content-Encoding)", field)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return keyward.Errorf(keyward.EINVALID, "this route sets %q in request bodies: send a JSON object with Content-Type: application/json", field)
	}
	if r.ContentLength > max {
		return errBodyTooLarge(max)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	r.Body.Close()
	if err != nil {
		return keyward.WrapError(keyward.EINVALID, err, "reading the request body failed")
	}
	if int64(len(b)) > max {
		return errBodyTooLarge(max)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		if b, err = stampJSON(b, field, value); err != nil {
			return err
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	r.TransferEncoding = nil
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}

// errNoUser refuses a request to a route that stamps the key's user when
// the key belongs to no user.
var errNoUser = keyward.Errorf(keyward.EFORBIDDEN, "this route records the user of the key: use a key that belongs to a user")

// stampValue returns what a route with StampValue what stamps for id (see
// Route.StampValue).
func stampValue(what string, id *keyward.Identity) (string, error) {
	switch what {
	case StampUser:
		if id.UserID == "" {
			return "", errNoUser
		}
		return id.UserID, nil
	case StampSubject:
		for _, v := range [...]string{id.UserID, id.AccountID} {
			if v != "" {
				return v, nil
			}
		}
	}
	return id.KeyID, nil
}

var errNotObject = keyward.Errorf(keyward.EINVALID, "request body must be a single JSON object")

// stampJSON sets field to value in the JSON object b.
func stampJSON(b []byte, field, value string) ([]byte, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&obj); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, keyward.Errorf(keyward.EINVALID, "request body is not valid JSON (at byte %d)", syntax.Offset)
		}
		return nil, errNotObject
	}
	if obj == nil || dec.More() {
		return nil, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errNotObject
	}
	for k := range obj {
		if strings.EqualFold(k, field) {
			delete(obj, k)
		}
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj[field] = v
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, keyward.WrapError(keyward.EINVALID, err, "request body is not valid JSON")
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}
