package keyward

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Secret holds a value that must never reach a log, an error message or a
// debug dump: a raw API key, a pepper, a master key. Its String, GoString and
// LogValue all print REDACTED, so passing one to fmt or slog by mistake leaks
// nothing. Reveal returns the value for the few places that need it.
type Secret string

const redacted = "REDACTED"

// Reveal returns the secret value itself.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer so %#v does not print the value.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps encoders that honour encoding.TextMarshaler from
// printing the value; API responses that must carry a key use Reveal.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Decode returns the bytes of a secret written ENCODING:VALUE, as peppers
// and master keys are: hex:VALUE, or base64:VALUE in the standard or URL
// alphabet, padded or not. Its errors complete a sentence that starts with
// the secret's name, suggest example (how to generate one) and never quote
// any part of the value.
func (s Secret) Decode(example string) ([]byte, error) {
	enc, val, ok := strings.Cut(strings.TrimSpace(string(s)), ":")
	if !ok {
		return nil, fmt.Errorf("must be written hex:VALUE or base64:VALUE: generate one with %s", example)
	}
	switch enc {
	case "hex":
		b, err := hex.DecodeString(val)
		if err != nil {
			// The hex error quotes the offending character: keep it out.
			return nil, fmt.Errorf("is not valid hex: generate one with %s", example)
		}
		return b, nil
	case "base64":
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := e.DecodeString(val); err == nil {
				return b, nil
			}
		}
		return nil, errors.New("is not valid base64: generate one with base64:$(openssl rand -base64 32)")
	}
	// The encoding is not quoted: a value written without one would put
	// part of it here.
	return nil, fmt.Errorf("has an unknown encoding: write hex:VALUE or base64:VALUE, e.g. %s", example)
}
