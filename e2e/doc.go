// Package e2e holds end-to-end tests that run the keyward binary behind
// real reverse proxies: nginx (auth_request) and Caddy (forward_auth) in
// front of an upstream that records what reaches it. The proxy
// configurations are those of docs/forward-auth.md (testdata/).
//
// The tests need nginx and caddy; .ci/run installs them. Without them the
// tests skip, saying how to install them, except with CI=true, where a
// missing proxy fails.
package e2e
