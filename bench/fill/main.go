// Command fill sends keys to a running keyward's /v1/forward-auth as bearer
// tokens, from -conns concurrent connections, bounded by -duration. It
// reads secrets, one per line (at most -n).
//
// By default each key is sent once, until every key is sent, so each
// request is a cache miss that leaves the key cached: bench/run uses it to
// measure a server holding every key. With -zipf R it sends R requests,
// each for a key picked by Zipf(-zipf-s) over the keys read (the first line
// most often), as real traffic is skewed: the hot keys hit the cache, the
// long tail misses. bench/servemem.sh uses it to measure a server's memory
// per cached key after such a run.
//
//	fill -url http://127.0.0.1:18490 -secrets DIR/secrets.txt -duration 60s
//	fill -url http://127.0.0.1:18490 -secrets DIR/secrets.txt -zipf 3000000 -duration 5m -pid PID
//
// It prints how many requests were verified (200), refused or failed. With
// -pid, the process id of the server (on this machine), it also reads the
// server's VmRSS from /proc before the first request and after the last,
// and its /metrics after the last, and prints the RSS growth per key in
// the verification cache (keyward_verify_cache_entries) and the sizes of
// the server's bounded in-memory tables. Only a loopback URL is accepted.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var (
		base     = flag.String("url", "", "keyward serve base URL (loopback only)")
		secrets  = flag.String("secrets", "", "file of secrets, one per line")
		n        = flag.Int("n", 1_000_000, "at most this many keys")
		conns    = flag.Int("conns", 32, "concurrent connections")
		duration = flag.Duration("duration", 60*time.Second, "stop after this long")
		zipf     = flag.Int64("zipf", 0, "send this many requests for keys picked by Zipf(-zipf-s) instead of each key once")
		zipfS    = flag.Float64("zipf-s", 1.1, "the Zipf exponent of -zipf, > 1")
		pid      = flag.Int("pid", 0, "the server's process id: report its RSS growth per cached key")
	)
	flag.Parse()
	u, err := url.Parse(*base)
	if err != nil || u.Hostname() == "" {
		fatalf("-url: want http://127.0.0.1:PORT")
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fatalf("-url %s: only loopback addresses are loaded", *base)
	}
	if *n <= 0 || *conns <= 0 || *duration <= 0 || *zipf < 0 || *zipfS <= 1 || *pid < 0 {
		fatalf("-n, -conns and -duration must be positive, -zipf and -pid not negative, -zipf-s above 1")
	}
	keys, err := readLines(*secrets, *n)
	if err != nil {
		fatalf("%v", err)
	}
	if len(keys) == 0 {
		fatalf("%s holds no secrets", *secrets)
	}
	var rss0 int64
	if *pid > 0 {
		if rss0, err = vmRSS(*pid); err != nil {
			fatalf("%v", err)
		}
	}
	target := u.JoinPath("/v1/forward-auth").String()
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()

	// pick returns the index of worker w's next key, false when it is done.
	var next atomic.Int64
	pick := func(int) (int, bool) {
		i := int(next.Add(1)) - 1
		return i, i < len(keys)
	}
	asked := make([]atomic.Bool, len(keys))
	if *zipf > 0 {
		// One generator per worker: a rand.Zipf is not safe for concurrent
		// use. Fixed seeds, so two runs ask for the same keys.
		gens := make([]*rand.Zipf, *conns)
		for w := range gens {
			gens[w] = rand.NewZipf(rand.New(rand.NewPCG(uint64(w), 1)), *zipfS, 1, uint64(len(keys)-1))
		}
		pick = func(w int) (int, bool) {
			return int(gens[w].Uint64()), next.Add(1) <= *zipf
		}
	}

	var ok, refused, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				i, more := pick(w)
				if !more {
					return
				}
				asked[i].Store(true)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				req.Header.Set("Authorization", "Bearer "+keys[i])
				req.Header.Set("X-Original-URI", "/fill")
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				} else {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	distinct := 0
	for i := range asked {
		if asked[i].Load() {
			distinct++
		}
	}
	stopped := "every request sent"
	if ctx.Err() != nil {
		stopped = fmt.Sprintf("stopped by -duration %s", *duration)
	}
	mode := "fill"
	if *zipf > 0 {
		mode = fmt.Sprintf("zipf(s=%g)", *zipfS)
	}
	fmt.Printf("%s: %d verified (200), %d refused, %d failed, %d distinct keys asked of %d read, in %s (%.0f/s, %d connections, %s)\n",
		mode, ok.Load(), refused.Load(), failed.Load(), distinct, len(keys), took.Round(time.Millisecond),
		float64(ok.Load()+refused.Load())/took.Seconds(), *conns, stopped)
	if *pid > 0 {
		if err := reportMemory(u, *pid, rss0); err != nil {
			fatalf("%v", err)
		}
	}
	if ok.Load() == 0 {
		os.Exit(1)
	}
}

// reportMemory prints the server's RSS growth since rss0 per key in its
// verification cache, and the sizes of its bounded tables from /metrics.
func reportMemory(base *url.URL, pid int, rss0 int64) error {
	rss1, err := vmRSS(pid)
	if err != nil {
		return err
	}
	m, err := scrape(base.JoinPath("/metrics").String())
	if err != nil {
		return err
	}
	cached, ok := m["keyward_verify_cache_entries"]
	if !ok || cached <= 0 {
		return fmt.Errorf("the server's /metrics has no keyward_verify_cache_entries above 0: is it a keyward serve with a verification cache?")
	}
	fmt.Printf("memory: RSS %d KiB before, %d KiB after (+%d KiB), %.0f keys cached: %.0f B RSS per cached key\n",
		rss0>>10, rss1>>10, (rss1-rss0)>>10, cached, float64(rss1-rss0)/cached)
	// Each gauge printed that the server exports: the cache's own estimate,
	// the Go heap, and the entries of abuse detection's tables.
	var tables []string
	for _, name := range []string{"keyward_verify_cache_negative_entries", "keyward_verify_cache_bytes",
		"go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_sys_bytes"} {
		if v, ok := m[name]; ok {
			tables = append(tables, fmt.Sprintf("%s=%.0f", name, v))
		}
	}
	for _, t := range []string{"blocked", "revoked", "bursts", "spread", "usage", "counts", "markers"} {
		if v, ok := m[`keyward_abuse_tracked{table="`+t+`"}`]; ok {
			tables = append(tables, fmt.Sprintf("abuse_%s=%.0f", t, v))
		}
	}
	fmt.Printf("tables: %s\n", strings.Join(tables, " "))
	return nil
}

// vmRSS returns the resident set size of process pid, in bytes.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("-pid %d: %w (the server must run on this machine)", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("-pid %d: no VmRSS in /proc/%d/status", pid, pid)
}

// scrape returns the samples of a Prometheus text exposition at url, by
// name with its labels as written ({a="b"}).
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// readLines returns up to max non-empty lines of the file.
func readLines(path string, max int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(lines) < max {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "fill: "+format+"\n", args...)
	os.Exit(2)
}
