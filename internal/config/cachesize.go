package config

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
	"github.com/keyward/keyward/verify"
	"go.yaml.in/yaml/v3"
)

// minCacheMaxBytes is the least cache_max_bytes: a cache that holds almost
// nothing sends every verification to the store.
const minCacheMaxBytes = 1 << 20

// ByteSize is a setting in bytes, written as a number of bytes or with a
// unit: 512MiB, 2GiB, 1.5GB. Zero is the setting's default.
type ByteSize int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	return setByteSize(b, n.Value)
}

// YAMLDescription implements yamldoc.Describer.
func (b *ByteSize) YAMLDescription() string {
	return "a size in bytes or with a unit, such as 512MiB or 2GiB"
}

func setByteSize(b *ByteSize, v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil || n > math.MaxInt64 {
		return fmt.Errorf("%q is not a size: use bytes or a unit, such as 512MiB or 2GiB", v)
	}
	*b = ByteSize(n)
	return nil
}

func (b ByteSize) String() string {
	if b == 0 {
		return "default"
	}
	return humanize.IBytes(uint64(b))
}

// EffectiveCacheMaxBytes is the verification cache's bound: cache_max_bytes,
// or the engine's default (verify.DefaultMaxBytes) when it is unset.
func (c *Config) EffectiveCacheMaxBytes() int64 {
	if c.CacheMaxBytes == 0 {
		return verify.DefaultMaxBytes()
	}
	return int64(c.CacheMaxBytes)
}
