package apikey

import "testing"

// BenchmarkParse is the format and checksum check of every verification.
func BenchmarkParse(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		s, err := Generate(PrefixUser)
		if err != nil {
			b.Fatal(err)
		}
		keys[i] = s.Reveal()
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok := Parse(keys[i%len(keys)]); !ok {
			b.Fatal("a generated key does not parse")
		}
	}
}
