"""docs/adopt/tenant-keys.md: root, account admin and user keys, and the admin router, on keyward."""

from kwtest import need

need("fastapi")
need("httpx")

from starlette.testclient import TestClient  # noqa: E402

import keyward  # noqa: E402
import tenant_keys_after  # noqa: E402
import tenant_keys_before  # noqa: E402


def key(k: str, agent: str = "") -> dict:
    h = {"X-API-Key": k}
    if agent:
        h["X-OpenViking-Agent"] = agent
    return h


def test_before() -> None:
    tc = TestClient(tenant_keys_before.create_app("root-secret"))
    acct = tc.post("/admin/accounts", json={"name": "acme"}, headers=key("root-secret")).json()
    user = tc.post(f"/admin/accounts/{acct['id']}/users", json={"name": "alice"}, headers=key(acct["admin_key"])).json()
    assert tc.get("/memories", headers=key(user["key"], "claude")).json() == {"agent": "claude", "memories": []}
    assert tc.post("/admin/accounts", json={"name": "x"}, headers=key(user["key"])).status_code == 403


def test_after(server, tenant) -> None:
    # The service verifies every account's keys: a root key (never a revocation-free cache: ttl=-1 here,
    # so the revocation below shows at once).
    root = server.root()
    verifier_key = root.create_key(role=keyward.Role.ROOT, name="memories-service")
    tenant.secrets.append(verifier_key.key)
    verifier = keyward.AsyncCachedVerifier(keyward.AsyncClient(server.url, verifier_key.key, environ={}), ttl=-1)
    tc = TestClient(tenant_keys_after.create_app(verifier, keyward_url=server.url))

    r = tc.post("/admin/accounts", json={"name": "globex"}, headers=key(server.root_key))
    assert r.status_code == 201, r.text
    acct = r.json()
    tenant.secrets.append(acct["admin_key"])
    r = tc.post(f"/admin/accounts/{acct['id']}/users", json={"name": "alice"}, headers=key(acct["admin_key"], "setup"))
    assert r.status_code == 201, r.text
    user = r.json()
    tenant.secrets.append(user["key"])

    r = tc.get("/memories", headers=key(user["key"], "claude"))
    assert r.status_code == 200
    assert r.json() == {"agent": "claude", "account": acct["id"], "user": user["user_id"], "memories": []}
    # keyward records who acted, agent included, in its audit log; the router's calls carry the caller's agent.
    created = keyward.Client(server.url, server.root_key, environ={}).list_keys(account_id=acct["id"], role="user")
    assert [k.user_id for k in created.items] == [user["user_id"]]

    # What each role may do is keyward's decision.
    assert tc.post("/admin/accounts", json={"name": "x"}, headers=key(user["key"])).status_code == 403
    assert tc.post("/admin/accounts", json={"name": "y"}, headers=key(acct["admin_key"])).status_code == 403
    other = tenant.root.create_key(account_id=tenant.account.id, role="account_admin", permissions=["memories:read"])
    tenant.secrets.append(other.key)
    assert tc.post(f"/admin/accounts/{acct['id']}/users", json={"name": "m"}, headers=key(other.key)).status_code == 404
    assert tc.get(f"/admin/accounts/{acct['id']}/keys", headers=key(other.key)).status_code == 404
    keys = tc.get(f"/admin/accounts/{acct['id']}/keys", headers=key(acct["admin_key"])).json()
    assert sorted(k["role"] for k in keys) == ["account_admin", "user"]

    user_key_id = next(k["id"] for k in keys if k["role"] == "user")
    assert tc.delete(f"/admin/keys/{user_key_id}", headers=key(acct["admin_key"])).status_code == 204
    assert tc.get("/memories", headers=key(user["key"])).status_code == 401
    assert tc.get("/memories").status_code == 401
