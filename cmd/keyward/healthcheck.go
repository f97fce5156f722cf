package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

// defaultHealthURL is what "keyward healthcheck" probes without --url: the
// /healthz of a server listening on port 8080 of this machine, as the
// container image runs it.
const defaultHealthURL = "http://127.0.0.1:8080/healthz"

// healthcheckCommand is "keyward healthcheck": a probe for places without
// curl, such as the container image's HEALTHCHECK (docs/container.md).
func (a *app) healthcheckCommand() *cobra.Command {
	var (
		target  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when a keyward server answers 200 at --url, 8 when it does not",
		Long: `Send GET --url (default ` + defaultHealthURL + `) and exit 0 if the answer is 200,
or 8 (unavailable) with one line saying why if it is not, or none comes within --timeout.
Meant for container health checks where there is no shell or curl.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := url.Parse(target)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usageErrorf("--url %q: give an http:// or https:// URL, e.g. %s", target, defaultHealthURL)
			}
			if timeout <= 0 {
				return usageErrorf("--timeout %s: give a positive duration, e.g. 5s", timeout)
			}
			return probe(cmd.Context(), u.String(), timeout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "url", defaultHealthURL, "URL to GET; 200 means healthy")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// probe GETs target directly (never through a proxy of the environment)
// and returns nil if it answers 200 within timeout.
func probe(ctx context.Context, target string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usageErrorf("--url %q: %v", target, err)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "%s did not answer", target)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return keyward.Errorf(keyward.EUNAVAILABLE, "%s answered %s", target, resp.Status)
	}
	return nil
}
