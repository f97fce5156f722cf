"""docs/adopt/admin-key.md, step by step: the shared key moves into keyward and keeps working."""

import hashlib
import json
import os
import subprocess

from kwtest import need

need("fastapi")
need("httpx")

from starlette.testclient import TestClient  # noqa: E402

import keyward  # noqa: E402
import admin_key_after  # noqa: E402
import admin_key_before  # noqa: E402

SHARED = "memories-admin-7f3a9c21d4e8b6f0"  # the key every client was given


def test_before(tenant) -> None:
    tc = TestClient(admin_key_before.create_app(SHARED))
    assert tc.get("/").status_code == 200 and tc.get("/docs").status_code == 200
    assert tc.get("/memories").status_code == 401
    assert tc.post("/memories", json={"text": "a"}, headers={"X-API-Key": SHARED}).status_code == 201
    # Unset, the key guards nothing: the "optional auth" the migration removes.
    assert TestClient(admin_key_before.create_app("")).get("/memories").status_code == 200


def test_after(tenant, keyward_binary, tmp_path) -> None:
    server, root = tenant.server, tenant.root
    tenant.secrets.append(SHARED)  # never logged either
    # Step 2: import the shared key, so the clients holding it keep working.
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({
        "sha256": hashlib.sha256(SHARED.encode()).hexdigest(), "name": "shared-admin-key", "role": "account_admin",
        "account": tenant.account.name, "permissions": ["memories:read", "memories:write"],
    }) + "\n")
    env = dict(os.environ, KEYWARD_URL=server.url, KEYWARD_API_KEY=server.root_key)
    subprocess.run([keyward_binary, "keys", "import", str(keys)], env=env, check=True, capture_output=True)

    # Step 3 and 4: the service verifies with its own key (the tenant's keys:verify key).
    tc = TestClient(admin_key_after.create_app(keyward.AsyncCachedVerifier(tenant.async_client())))
    for public in ["/", "/docs", "/openapi.json"]:
        assert tc.get(public).status_code == 200, public
    r = tc.get("/memories")
    assert r.status_code == 401 and r.json()["detail"].startswith("no API key")
    assert r.headers["www-authenticate"] == 'Bearer realm="keyward"'
    assert tc.get("/memories", headers={"X-API-Key": "memories-admin-guess"}).status_code == 401

    # The clients are unchanged: the same header, the same key.
    r = tc.post("/memories", json={"text": "hello"}, headers={"X-API-Key": SHARED})
    assert r.status_code == 201
    assert tc.get("/memories", headers={"X-API-Key": SHARED}).json() == [r.json()]

    # Step 5: each client its own key, with only what it needs; then the shared key goes.
    reader = tenant.user_key("memories:read")
    assert tc.get("/memories", headers={"Authorization": "Bearer " + reader.key}).json() == [r.json()]
    assert tc.post("/memories", json={"text": "x"}, headers={"Authorization": "Bearer " + reader.key}).status_code == 403
    shared = next(k for k in root.list_keys(account_id=tenant.account.id).items if k.name == "shared-admin-key")
    root.revoke_key(shared.id)
    fresh = TestClient(admin_key_after.create_app(keyward.AsyncCachedVerifier(tenant.async_client())))
    assert fresh.get("/memories", headers={"X-API-Key": SHARED}).status_code == 401
