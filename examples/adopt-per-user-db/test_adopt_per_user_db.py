"""docs/adopt/per-user-db.md: a key resolved to its user's database, before (a remote auth call)
and after (keyward's secret metadata)."""

import http.server
import json
import sqlite3
import threading

from kwtest import need

need("fastapi")
need("httpx")

from starlette.testclient import TestClient  # noqa: E402

import keyward  # noqa: E402
import per_user_db_after  # noqa: E402
import per_user_db_before  # noqa: E402


def database(path, *notes: str) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.executemany("INSERT INTO notes (text) VALUES (?)", [(n,) for n in notes])
    return str(path)


def test_before(tmp_path) -> None:
    tokens = {"tok-alice": {"user": "alice", "database": database(tmp_path / "alice.db", "buy milk")}}
    calls = []

    class Auth(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            token = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["token"]
            calls.append(token)
            body = json.dumps(tokens.get(token, {})).encode()
            self.send_response(200 if token in tokens else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    auth = http.server.HTTPServer(("127.0.0.1", 0), Auth)
    threading.Thread(target=auth.serve_forever, daemon=True).start()
    try:
        tc = TestClient(per_user_db_before.create_app(f"http://127.0.0.1:{auth.server_port}"))
        for _ in range(2):
            assert tc.get("/notes", headers={"Authorization": "Bearer tok-alice"}).json() == ["buy milk"]
            assert tc.get("/notes", headers={"Authorization": "Bearer tok-wrong"}).status_code == 401
        assert calls == ["tok-alice", "tok-wrong", "tok-wrong"], "bad tokens reach the auth service every time"
    finally:
        auth.shutdown()
        auth.server_close()


def test_after(tenant, tmp_path) -> None:
    root = tenant.root
    alice = tenant.user_key("notes:read", secret_meta={"database": database(tmp_path / "alice.db", "buy milk", "call mum")})
    bob_user = root.create_user(tenant.account.id, name="bob")
    bob = root.create_key(account_id=tenant.account.id, user_id=bob_user.id, permissions=["notes:read"],
                          secret_meta={"database": database(tmp_path / "bob.db", "fix bike")})
    plain = tenant.user_key("notes:read")
    tenant.secrets.append(bob.key)
    assert root.get_key(alice.id).has_secret_meta and root.get_key(alice.id).meta is None

    resolver = root.create_key(account_id=tenant.account.id, role="account_admin", name="notes-service",
                               permissions=["keys:verify_secrets"])
    tenant.secrets.append(resolver.key)
    tc = TestClient(per_user_db_after.create_app(
        keyward.AsyncCachedVerifier(keyward.AsyncClient(tenant.server.url, resolver.key, environ={}))))

    assert tc.get("/notes", headers={"Authorization": "Bearer " + alice.key}).json() == ["buy milk", "call mum"]
    seen = keyward.Client(tenant.server.url, resolver.key, environ={}).verify_key(alice.key)
    assert seen.secret_meta["database"].endswith("alice.db") and "alice.db" not in repr(seen)
    assert tc.get("/notes", headers={"X-API-Key": bob.key}).json() == ["fix bike"]
    assert tc.get("/notes", headers={"Authorization": "Bearer " + plain.key}).status_code == 403
    assert tc.get("/notes", headers={"Authorization": "Bearer kw_user_" + "N" * 49}).status_code == 401
    assert tc.get("/notes").status_code == 401

    # A verifier holding keys:verify alone never sees the secret metadata.
    blind = tenant.async_client()
    tc = TestClient(per_user_db_after.create_app(keyward.AsyncCachedVerifier(blind)))
    assert tc.get("/notes", headers={"Authorization": "Bearer " + alice.key}).status_code == 403
