// Command benchserver is the other half of bench/gateway.sh: the upstream
// every proxy forwards to, the baseline proxy the gateway is compared with,
// and the bare JSON handler POST /v1/keys/verify is compared with.
//
//	benchserver upstream ADDR            a handler answering 200 "ok\n"
//	benchserver bareproxy ADDR UPSTREAM  a bare httputil.ReverseProxy to UPSTREAM
//	benchserver json ADDR FILE           a bare net/http JSON handler: decodes the
//	                                     request's JSON body and answers with the
//	                                     JSON document in FILE, encoded per request
//	                                     by encoding/json
//
// The json mode is the baseline of the verify endpoint: bench/gateway.sh
// saves keyward's own answer to the request it loads keyward with, so both
// servers return the same JSON to the same request.
//
// The bare proxy uses the same transport limits as the gateway's default
// transport, so the comparison measures authentication, not pooling.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: benchserver upstream ADDR | benchserver bareproxy ADDR UPSTREAM | benchserver json ADDR FILE")
		os.Exit(2)
	}
	var h http.Handler
	switch os.Args[1] {
	case "upstream":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "ok\n")
		})
	case "bareproxy":
		if len(os.Args) != 4 {
			log.Fatal("bareproxy needs ADDR and UPSTREAM")
		}
		u, err := url.Parse(os.Args[3])
		if err != nil {
			log.Fatal(err)
		}
		h = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
			},
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				ForceAttemptHTTP2:   true,
				MaxIdleConns:        1024,
				MaxIdleConnsPerHost: 256,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	case "json":
		if len(os.Args) != 4 {
			log.Fatal("json needs ADDR and FILE")
		}
		h = jsonHandler(os.Args[3])
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
	srv := &http.Server{Addr: os.Args[2], Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// jsonHandler returns a handler that does what any JSON endpoint does and no
// more: decode the request body, encode the answer. The answer is the JSON
// document in file, decoded once into generic values and encoded again by
// encoding/json for every request.
func jsonHandler(file string) http.Handler {
	b, err := os.ReadFile(file)
	if err != nil {
		log.Fatal(err)
	}
	var answer any
	if err := json.Unmarshal(b, &answer); err != nil {
		log.Fatalf("%s: %v", file, err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	})
}
