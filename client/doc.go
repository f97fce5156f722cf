// Package client is keyward's Go client for its HTTP API. A *Client
// implements keyward.AccountService, UserService and KeyService, so code
// written against those interfaces runs the same in process (admin.Keys)
// or over the network. Errors come back as *keyward.Error with the code the
// server sent, so keyward.ErrorCode and errors.As work across the network.
//
// The package imports only the standard library and the keyward root
// package: programs that embed it pull in no database driver.
//
// # Managing keys
//
// A Client authenticates with a keyward key; what it may do follows from
// that key's role (root, account_admin, user):
//
//	c := client.New("https://keyward.example.com", keyward.Secret(os.Getenv("KEYWARD_API_KEY")))
//	k, err := c.CreateKey(ctx, keyward.KeyCreate{
//		AccountID:   "acc_...",
//		UserID:      "usr_...",
//		Role:        keyward.RoleUser,
//		Name:        "laptop",
//		Permissions: []string{"notes:read"},
//	})
//	if keyward.ErrorCode(err) == keyward.EFORBIDDEN { ... }
//	fmt.Println(k.Secret) // shown this once
//
// # Verifying keys presented to your service
//
// Client.VerifyKey asks keyward about a key presented to your service; the
// client's own key must be root or hold the keys:verify permission. Every
// outcome for the presented key is a result (see its Code); an error means
// no decision could be made.
//
// A service verifying on every request wraps the client in a
// CachedVerifier: VALID results are served from memory for a short TTL,
// refusals for a shorter one, and concurrent requests with the same
// uncached key make one call. Package middleware turns any
// keyward.KeyVerifier into net/http middleware:
//
//	v := client.NewCachedVerifier(client.New(keywardURL, verifierKey), client.CacheConfig{})
//	http.ListenAndServe(addr, middleware.New(v)(mux))
//
// See CachedVerifier for what caching trades (revocation is seen within
// the TTL) and docs/sdk.md for a complete example.
package client
