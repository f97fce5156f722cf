package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// TestGatewayRouteQueries: a route's query, per-method queries and role
// guard reach gateway.Config; a query that does not parse is named by
// setting and position.
func TestGatewayRouteQueries(t *testing.T) {
	c, err := load(t, `gateway:
  routes:
    - prefix: /memories
      query: memories:read OR admin:*
      methods:
        GET: ""
        POST: memories:write
      require_role: account_admin
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, errs := c.GatewayConfig()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	r := cfg.Routes[0]
	if r.Query != "memories:read OR admin:*" || !reflect.DeepEqual(r.Methods, map[string]string{"GET": "", "POST": "memories:write"}) || r.RequireRole != keyward.RoleAccountAdmin {
		t.Errorf("route = %+v", r)
	}

	_, err = load(t, "gateway:\n  routes:\n    - prefix: /x\n      query: a OR (b\n      require_role: Admin\n", nil)
	for _, want := range []string{"gateway.routes[0].query", "at position 8", "gateway.routes[0].require_role"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
}
