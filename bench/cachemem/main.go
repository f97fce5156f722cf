// Command cachemem measures the verification cache (docs/benchmarks.md, targets):
//
//   - memory per cached key: a fresh verify.Engine's cache is filled with N
//     realistic keys through KeyChanged, and the growth of the live heap
//     (runtime.MemStats.HeapAlloc after a full GC) is divided by N. Each
//     key is shaped as a store load returns it: every string its own
//     allocation, two permissions, last_used_at set, no meta. Target: under
//     512 bytes;
//
//   - hit rate under a skewed key distribution: requests pick among N keys
//     by a Zipf distribution (math/rand/v2, exponent -zipf-s) and go through
//     the whole Engine.Verify with the default cache TTL; an injected clock
//     advances 1/rate per request, so "requests per second" is simulated
//     and the run takes as long as the CPU needs. After a warm-up of two
//     TTLs, hits are counted as verifications that did not reach the store.
//     Each rate runs with the cache bounded (cache_max_bytes) to each of
//     -shares per cent of the working set (all N keys, as the cache counts
//     their bytes), 0 meaning unbounded and -1 the default bound. Each run
//     also reports the growth of the process's resident memory (VmRSS,
//     after returning what earlier runs freed) per key cached at its end:
//     the engine's whole memory per key, the garbage collector's headroom
//     included. The cache is swept every TTL of the simulated clock, as a
//     server at that rate would sweep it; the run ends just before a sweep
//     and reports again after one. The harness keeps its raw keys outside
//     the Go heap and its store makes each key from its hash, so nothing of
//     its own grows with N on the heap (their headroom would otherwise
//     count as the engine's);
//
//   - memory under a flood (-mode flood): -flood-keys distinct keys, each of
//     which the store holds, are verified once each through a cache bounded
//     to -flood-max-bytes; the live heap is printed every tenth of the flood.
//     Once the cache is full it must stay flat: the cache evicts, and
//     nothing else in the engine grows with the keys seen.
//
// It needs no database: the store is in memory. Run it with
// bench/cachemem.sh.
package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
	"github.com/prometheus/client_golang/prometheus"
)

func main() {
	mode := flag.String("mode", "all", "what to measure: mem, hit, flood or all")
	floodKeys := flag.Int("flood-keys", 2_000_000, "distinct keys of the flood (-mode flood)")
	floodMax := flag.Int64("flood-max-bytes", 64<<20, "cache_max_bytes during the flood")
	memKeys := flag.String("mem-keys", "100000,1000000", "cache sizes for the memory measurement, comma separated (each <= 5,000,000)")
	memProfile := flag.String("memprofile", "", "write a heap profile of the last memory measurement, and of the last hit-rate run's end, to this file (go tool pprof -sample_index=inuse_space -top)")
	hitKeys := flag.Int("hit-keys", 1_000_000, "keys the Zipf distribution picks from (<= 10,000,000)")
	zipfS := flag.Float64("zipf-s", 1.1, "Zipf exponent s (> 1): larger is more skewed")
	rates := flag.String("rates", "100,1000,10000", "simulated request rates in requests per second, comma separated")
	requests := flag.Int("requests", 2_000_000, "measured verifications per rate, after the warm-up (<= 50,000,000)")
	seed := flag.Uint64("seed", 1, "seed of the key picks")
	shares := flag.String("shares", "0,25", "cache_max_bytes as per cent of the working set's bytes, comma separated; 0 is unbounded, -1 the default bound (verify.DefaultMaxBytes)")
	flag.Parse()
	if *memProfile != "" {
		runtime.MemProfileRate = 64
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	hasher, err := apikey.NewHasher(map[int]keyward.Secret{1: "cachemem-bench-pepper-not-a-secret-0123456789"})
	check(err)
	fmt.Printf("verify cache: %d CPUs, GOMAXPROCS %d, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if *mode == "mem" || *mode == "all" {
		sizes := parseInts(*memKeys, 1, 5_000_000)
		for i, n := range sizes {
			prof := ""
			if i == len(sizes)-1 {
				prof = *memProfile
			}
			measureMemory(hasher, n, prof)
		}
	}
	if *mode == "flood" || *mode == "all" {
		measureFlood(hasher, *floodKeys, *floodMax)
	}
	if *mode == "hit" || *mode == "all" {
		if *hitKeys < 1 || *hitKeys > 10_000_000 || *zipfS <= 1 || *requests < 1 || *requests > 50_000_000 {
			fatalf("-hit-keys must be 1..10000000, -zipf-s > 1, -requests 1..50000000")
		}
		measureHitRate(hasher, *hitKeys, *zipfS, parseInts(*rates, 1, 10_000_000), parseInts(*shares, -1, 100), *requests, *seed, *memProfile)
	}
}

// derived is the engine's store for the hit rate: it holds a key for every
// hash (the harness asks only for its own keys) and makes it as a store
// load does, every id a new allocation, so the harness keeps no table of
// keys whose heap, and the collector's headroom over it, would be charged
// to the engine. Ten keys share an account and a user. It counts lookups.
type derived struct {
	tmpl    keyward.Key
	lookups atomic.Int64
}

func (d *derived) KeyByHash(_ context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	d.lookups.Add(1)
	k := d.tmpl
	k.ID, k.Hash = "key_"+hex.EncodeToString(h[:11]), h
	owner := binary.LittleEndian.Uint64(h[11:19]) / 10
	k.AccountID, k.UserID = fmt.Sprintf("acc_%022x", owner), fmt.Sprintf("usr_%022x", owner)
	return &k, nil
}

func (d *derived) TouchKeys(context.Context, []keyward.KeyUse) error { return nil }

// secretTable holds the harness's raw keys outside the Go heap (an
// anonymous mapping, resident before the baseline is read), so neither they
// nor the collector's headroom over them count as the engine's memory.
type secretTable struct {
	mem  []byte
	size int // bytes of one key: every key of a prefix has the same length
}

// newSecretTable generates n user keys.
func newSecretTable(n int) *secretTable {
	size := len(apikey.PrefixUser) + 1 + apikey.BodyLen
	mem, err := syscall.Mmap(-1, 0, n*size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	check(err)
	for i := range n {
		sec, err := apikey.Generate(apikey.PrefixUser)
		check(err)
		if len(sec.Reveal()) != size {
			fatalf("a generated key is %d bytes, want %d", len(sec.Reveal()), size)
		}
		copy(mem[i*size:], sec.Reveal())
	}
	return &secretTable{mem: mem, size: size}
}

// at returns key i, sharing the table's memory, which is never written again.
func (t *secretTable) at(i int) string {
	return unsafe.String(&t.mem[i*t.size], t.size)
}

// realisticKey returns a user key as a store load returns it: every string
// (and the permissions' backing array, and last_used_at) its own
// allocation, nothing shared with other keys.
func realisticKey(h *apikey.Hasher, i int, now time.Time) *keyward.Key {
	s, err := apikey.Generate(apikey.PrefixUser)
	check(err)
	raw := s.Reveal()
	used := now.Add(-time.Duration(i) * time.Second)
	return &keyward.Key{
		ID:            apikey.NewID("key"),
		Hash:          h.Hash(raw),
		PepperVersion: h.Current(),
		Start:         strings.Clone(apikey.Start(raw)),
		Prefix:        strings.Clone(apikey.PrefixUser),
		Name:          "service key " + strconv.Itoa(i),
		Role:          keyward.Role(strings.Clone(string(keyward.RoleUser))),
		AccountID:     apikey.NewID("acc"),
		UserID:        apikey.NewID("usr"),
		Permissions:   []string{strings.Clone("memories:read"), strings.Clone("memories:write")},
		CreatedAt:     now.Add(-24 * time.Hour),
		CreatedBy:     apikey.NewID("key"),
		LastUsedAt:    &used,
		UpdatedAt:     now.Add(-24 * time.Hour),
	}
}

func measureMemory(h *apikey.Hasher, n int, profile string) {
	eng, err := verify.New(verify.Config{Store: &derived{}, Hasher: h, CacheTTL: time.Hour, MaxBytes: unbounded})
	check(err)
	before := liveHeap()
	now := time.Now()
	start := time.Now()
	for i := range n {
		// KeyChanged clones the key; the template is garbage afterwards
		// except for the strings the clone shares, as with a store load.
		eng.KeyChanged(realisticKey(h, i, now))
	}
	fill := time.Since(start)
	after := liveHeap()
	if profile != "" {
		writeHeapProfile(profile)
	}
	perKey := float64(after-before) / float64(n)
	verdict := "met"
	if perKey >= 512 {
		verdict = fmt.Sprintf("missed by %.0f B (%.0f%%)", perKey-512, 100*(perKey-512)/512)
	}
	fmt.Printf("memory: %9d cached keys: heap +%7.1f MiB, %6.1f B per key (target < 512 B: %s; the cache counts %.1f B); filled in %v\n",
		n, float64(after-before)/(1<<20), perKey, verdict, gauge(eng, "keyward_verify_cache_bytes")/float64(n), fill.Round(time.Millisecond))
	runtime.KeepAlive(eng)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	check(eng.Close(ctx))
}

// writeHeapProfile writes the heap profile to the file path.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	check(err)
	check(pprof.Lookup("heap").WriteTo(f, 0))
	check(f.Close())
}

// liveHeap returns the live heap after a complete collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// anyKey is a store that holds a key for every hash: the keys of a flood.
type anyKey struct{ tmpl keyward.Key }

func (a *anyKey) KeyByHash(_ context.Context, h keyward.KeyHash) (*keyward.Key, error) {
	k := a.tmpl
	k.ID, k.Hash = "key_"+hex.EncodeToString(h[:13]), h
	return &k, nil
}

func (a *anyKey) TouchKeys(context.Context, []keyward.KeyUse) error { return nil }

func measureFlood(h *apikey.Hasher, n int, maxBytes int64) {
	created := time.Now().Add(-24 * time.Hour)
	store := &anyKey{tmpl: keyward.Key{
		PepperVersion: h.Current(), Role: keyward.RoleUser, AccountID: apikey.NewID("acc"), UserID: apikey.NewID("usr"),
		Permissions: []string{"memories:read"}, CreatedAt: created, UpdatedAt: created,
	}}
	eng, err := verify.New(verify.Config{Store: store, Hasher: h, MaxBytes: maxBytes, UsageFlushInterval: 100 * time.Millisecond})
	check(err)
	before := liveHeap()
	fmt.Printf("flood: %d distinct keys through a cache bounded to %.0f MiB\n", n, float64(maxBytes)/(1<<20))
	fmt.Printf("%12s %14s %12s %12s\n", "keys seen", "live heap +", "cache MiB", "cached keys")
	ctx := context.Background()
	for i := range n {
		s, err := apikey.Generate(apikey.PrefixUser)
		check(err)
		if d := eng.Verify(ctx, verify.Request{Key: s.Reveal()}).Decision; d != keyward.DecisionValid {
			fatalf("flood key %d: %s, want VALID", i, d)
		}
		if (i+1)%(max(1, n/10)) == 0 {
			fmt.Printf("%12d %10.1f MiB %12.1f %12.0f\n", i+1, float64(int64(liveHeap())-int64(before))/(1<<20),
				gauge(eng, "keyward_verify_cache_bytes")/(1<<20), gauge(eng, "keyward_verify_cache_entries"))
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	check(eng.Close(cctx))
}

// unbounded is a MaxBytes no test here reaches.
const unbounded = 1 << 50

// gauge returns the value of the engine's metric name.
func gauge(eng *verify.Engine, name string) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(eng)
	mfs, err := reg.Gather()
	check(err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	fatalf("no metric %s", name)
	return 0
}

func measureHitRate(h *apikey.Hasher, n int, s float64, rates, shares []int, requests int, seed uint64, profile string) {
	start := time.Now()
	secrets := newSecretTable(n)
	created := time.Now().Add(-24 * time.Hour)
	l := &derived{tmpl: keyward.Key{
		PepperVersion: h.Current(), Prefix: apikey.PrefixUser, Role: keyward.RoleUser, Name: "service key",
		Permissions: []string{"memories:read", "memories:write"}, CreatedAt: created, UpdatedAt: created,
	}}
	fmt.Printf("hit rate: %d keys, Zipf s=%g v=1, default cache TTL %v, %d measured verifications per rate after a %v warm-up (keys made in %v)\n",
		n, s, verify.DefaultCacheTTL, requests, 2*verify.DefaultCacheTTL, time.Since(start).Round(time.Millisecond))
	// The working set's bytes, as the cache counts them: every key cached.
	// A TTL longer than the probe, so no entry expires before it is counted.
	probe, err := verify.New(verify.Config{Store: l, Hasher: h, MaxBytes: unbounded, CacheTTL: 24 * time.Hour})
	check(err)
	for i := range n {
		probe.Verify(context.Background(), verify.Request{Key: secrets.at(i)})
	}
	working := gauge(probe, "keyward_verify_cache_bytes")
	check(probe.Close(context.Background()))
	fmt.Printf("working set: %.1f MiB as the cache counts it\n", working/(1<<20))
	fmt.Printf("%12s %10s %10s %12s %12s %14s %14s %14s %10s\n", "req/s", "cache", "hit rate", "store loads", "distinct keys", "wall time", "RSS per key", "live per key", "cached")
	perms := []string{"memories:read"}
	for _, rate := range rates {
		for _, share := range shares {
			maxBytes, cache := int64(unbounded), "unbounded"
			switch {
			case share > 0:
				maxBytes, cache = int64(working)*int64(share)/100, fmt.Sprintf("%d%%", share)
			case share < 0:
				maxBytes, cache = verify.DefaultMaxBytes(), "default"
			}
			seen := make([]bool, n)
			debug.FreeOSMemory() // what earlier engines held goes back to the system
			rss0, live0 := rssBytes(), liveHeap()
			var clock atomic.Int64 // injected clock, Unix nanoseconds
			clock.Store(time.Now().UnixNano())
			eng, err := verify.New(verify.Config{
				Store: l, Hasher: h, Now: func() time.Time { return time.Unix(0, clock.Load()) }, MaxBytes: maxBytes,
			})
			check(err)
			zipf := mrand.NewZipf(mrand.New(mrand.NewPCG(seed, uint64(rate))), s, 1, uint64(n-1))
			step := int64(time.Second) / int64(rate)
			warm := int(2 * verify.DefaultCacheTTL / time.Second * time.Duration(rate))
			// The engine sweeps idle entries every TTL of real time; the
			// simulated clock runs faster, so the run sweeps every TTL of
			// it, as a server at that rate would. The cache is fullest
			// just before a sweep: the run ends there, and measures again
			// after one.
			sweepEvery := int(verify.DefaultCacheTTL / time.Second * time.Duration(rate))
			ctx := context.Background()
			distinct := 0
			var loadsAtStart int64
			t0 := time.Now()
			for i := range warm + requests {
				if i == warm {
					loadsAtStart = l.lookups.Load()
				}
				k := zipf.Uint64()
				if i >= warm && !seen[k] {
					seen[k] = true
					distinct++
				}
				if d := eng.Verify(ctx, verify.Request{Key: secrets.at(int(k)), Permissions: perms}).Decision; d != keyward.DecisionValid {
					fatalf("verification %d: %s, want VALID", i, d)
				}
				clock.Add(step)
				if (i+1)%sweepEvery == 0 && i+1 < warm+requests {
					eng.Sweep()
				}
			}
			loads := l.lookups.Load() - loadsAtStart
			// The growth of the process's resident memory since before the
			// engine, per key it caches: everything the engine holds,
			// with the garbage collector's headroom.
			// Then the live heap's growth per key (after a full GC): what
			// the engine holds without the headroom.
			entries := gauge(eng, "keyward_verify_cache_entries")
			perKey := float64(rssBytes()-rss0) / entries
			livePerKey := (float64(liveHeap()) - float64(live0)) / entries
			if profile != "" {
				writeHeapProfile(profile)
			}
			fmt.Printf("%12d %10s %9.2f%% %12d %13d %14v %12.0f B %12.0f B %10.0f\n", rate, cache, 100*(1-float64(loads)/float64(requests)), loads, distinct, time.Since(t0).Round(time.Millisecond), perKey, livePerKey, entries)
			// Where the resident memory is, after that GC: spans in use
			// beyond the live objects, free spans not yet returned.
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("  memstats: heap live %d MiB, in spans in use %d MiB, free spans kept %d MiB, returned %d MiB, other %d MiB\n",
				ms.HeapAlloc>>20, ms.HeapInuse>>20, (ms.HeapIdle-ms.HeapReleased)>>20, ms.HeapReleased>>20, (ms.Sys-ms.HeapSys)>>20)
			// Right after a sweep the cache holds the fewest keys of its
			// cycle, and the process still the memory of the fullest.
			eng.Sweep()
			swept := gauge(eng, "keyward_verify_cache_entries")
			fmt.Printf("  after a sweep: %.0f keys cached, RSS %.0f B and live heap %.0f B per key\n",
				swept, float64(rssBytes()-rss0)/swept, (float64(liveHeap())-float64(live0))/swept)
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			check(eng.Close(cctx))
			cancel()
		}
	}
}

// rssBytes returns the resident memory of the process (VmRSS), 0 where
// /proc is missing.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func parseInts(s string, lo, hi int) []int {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < lo || v > hi {
			fatalf("%q: want integers %d..%d, comma separated", s, lo, hi)
		}
		out = append(out, v)
	}
	return out
}

func check(err error) {
	if err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cachemem: "+format+"\n", args...)
	os.Exit(1)
}
