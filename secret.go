package keyward

import "log/slog"

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
