// Command benchserver is the other half of bench/gateway.sh: the upstream
// every proxy forwards to, and the baseline proxy the gateway is compared
// with.
//
//	benchserver upstream ADDR            a handler answering 200 "ok\n"
//	benchserver bareproxy ADDR UPSTREAM  a bare httputil.ReverseProxy to UPSTREAM
//
// The bare proxy uses the same transport limits as the gateway's default
// transport, so the comparison measures authentication, not pooling.
package main

import (
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
		fmt.Fprintln(os.Stderr, "usage: benchserver upstream ADDR | benchserver bareproxy ADDR UPSTREAM")
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
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
	srv := &http.Server{Addr: os.Args[2], Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
