// Command fill puts keys into a running keyward's verification cache: it
// reads secrets, one per line, and sends each one once to the server's
// /v1/forward-auth as a bearer token, from -conns concurrent connections,
// until every key is sent, -n keys are sent or -duration has passed,
// whichever comes first. Each key is asked for once, so each request is a
// cache miss that leaves the key cached. bench/run uses it to measure the
// resident memory of a server holding many cached keys.
//
//	fill -url http://127.0.0.1:18490 -secrets DIR/secrets.txt -duration 60s
//
// It prints how many keys were verified (200), refused or failed. Only a
// loopback URL is accepted.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
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
	)
	flag.Parse()
	u, err := url.Parse(*base)
	if err != nil || u.Hostname() == "" {
		fatalf("-url: want http://127.0.0.1:PORT")
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fatalf("-url %s: only loopback addresses are loaded", *base)
	}
	if *n <= 0 || *conns <= 0 || *duration <= 0 {
		fatalf("-n, -conns and -duration must be positive")
	}
	keys, err := readLines(*secrets, *n)
	if err != nil {
		fatalf("%v", err)
	}
	target := u.JoinPath("/v1/forward-auth").String()
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()

	var next, ok, refused, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
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
	stopped := "every key sent"
	if ctx.Err() != nil {
		stopped = fmt.Sprintf("stopped by -duration %s", *duration)
	}
	fmt.Printf("fill: %d keys verified (200), %d refused, %d failed, of %d read, in %s (%.0f/s, %d connections, %s)\n",
		ok.Load(), refused.Load(), failed.Load(), len(keys), took.Round(time.Millisecond),
		float64(ok.Load())/took.Seconds(), *conns, stopped)
	if ok.Load() == 0 {
		os.Exit(1)
	}
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
