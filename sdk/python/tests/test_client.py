"""The client against the real keyward: admin operations, verify, errors and configuration."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.cookiejar
import http.server
import threading
import urllib.error
import urllib.request

import pytest

import keyward
from keyward import ErrorCode, KeywardError
from keyward.guard import denial_of


def test_user_identity(tenant) -> None:
    root, acct = tenant.root, tenant.account
    carol = root.create_user(acct.id, name="carol", external_id="idp|carol", meta={"plan": "pro"})
    assert carol.meta == {"plan": "pro"} and not carol.has_secret_meta and carol.updated_at == carol.created_at
    u = root.update_user(acct.id, carol.id, external_id="idp|carol2", secret_meta={"dsn": "postgres://carol"})
    assert u.external_id == "idp|carol2" and u.has_secret_meta and u.updated_at >= u.created_at
    assert root.lookup_user(acct.id, external_id="idp|carol2").id == carol.id
    with pytest.raises(KeywardError) as e:
        root.lookup_user(acct.id, external_id="idp|carol")
    assert e.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(KeywardError) as e:
        root.update_user(acct.id, tenant.user.id, external_id="idp|carol2")
    assert e.value.code == ErrorCode.CONFLICT and e.value.status == 409
    assert root.get_user(acct.id, tenant.user.id).external_id == "u-1"

    # The user's keys verify with its external id and inherit its meta.
    k = root.create_key(account_id=acct.id, user_id=carol.id, meta={"region": "eu"})
    tenant.secrets.append(k.key)
    res = root.verify_key(k.key)
    assert res.valid and res.identity is not None and res.identity.external_id == "idp|carol2"
    assert res.meta == {"plan": "pro", "region": "eu"} and res.secret_meta == {"dsn": "postgres://carol"}
    assert keyward.Client(root.url, k.key, environ={}).whoami().external_id == "idp|carol2"


def test_accounts_users_keys(tenant) -> None:
    root = tenant.root
    acct = root.get_account(tenant.account.id)
    assert acct.name == tenant.account.name and acct.policy.users_may_mint_keys
    assert isinstance(acct.created_at, dt.datetime) and acct.created_at.tzinfo is not None
    acct = root.update_account(acct.id, policy={"users_may_mint_keys": False})
    assert not acct.policy.users_may_mint_keys and acct.policy.admins_may_mint_admin_keys

    bob = root.create_user(acct.id, name="bob")
    assert [u.name for u in root.list_users(acct.id).items] == ["alice", "bob"]
    page = root.list_users(acct.id, limit=1)
    assert [u.name for u in page.items] == ["alice"] and page.next
    assert [u.name for u in root.list_users(acct.id, after=page.next).items] == ["bob"]
    assert root.get_user(acct.id, bob.id).external_id is None
    assert root.get_user(acct.id, tenant.user.id).external_id == "u-1"

    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    k = root.create_key(account_id=acct.id, user_id=bob.id, name="laptop", permissions=["notes:read"],
                        meta={"plan": "pro"}, expires_at=expires, ip_allow=["10.0.0.0/8"])
    assert k.key.startswith("kw_user_") and k.role == keyward.Role.USER
    assert k.key not in repr(k), "the secret must not show in repr"
    assert k.permissions == ("notes:read",) and k.meta == {"plan": "pro"} and k.ip_allow == ("10.0.0.0/8",)
    assert abs((k.expires_at - expires).total_seconds()) < 1
    got = root.get_key(k.id)
    assert got.id == k.id and not isinstance(got, keyward.CreatedKey)
    assert [x.id for x in root.list_keys(user_id=bob.id).items] == [k.id]
    assert root.list_keys(account_id=acct.id, role="account_admin").items[0].id == tenant.verifier_key.id

    k2 = root.update_key(k.id, permissions=["notes:read", "notes:write"], clear_expiry=True)
    assert k2.permissions == ("notes:read", "notes:write") and k2.expires_at is None
    assert root.disable_key(k.id).disabled
    assert not root.enable_key(k.id).disabled

    rotated = root.rotate_key(k.id, grace="1h")
    assert rotated.rotated_from == k.id and rotated.key and rotated.key != k.key
    assert root.get_key(k.id).grace_until is not None

    # The account's policy (above) forbids user keys to mint keys.
    with pytest.raises(KeywardError) as e:
        keyward.Client(root.url, rotated.key, environ={}).create_key(account_id=acct.id, user_id=bob.id)
    assert e.value.code == ErrorCode.FORBIDDEN and e.value.status == 403

    revoked = root.revoke_key(rotated.id)
    assert revoked.revoked_at is not None and revoked.cascaded == ()
    root.delete_key(rotated.id)
    with pytest.raises(KeywardError) as e:
        root.get_key(rotated.id)
    assert e.value.code == ErrorCode.NOT_FOUND and e.value.status == 404

    root.delete_user(acct.id, bob.id)
    with pytest.raises(KeywardError) as e:
        root.get_user(acct.id, bob.id)
    assert e.value.code == ErrorCode.NOT_FOUND


def test_revoke_cascade(tenant) -> None:
    root = tenant.root
    admin = root.create_key(account_id=tenant.account.id, role="account_admin", permissions=["keys:verify"])
    minted = keyward.Client(root.url, admin.key, environ={}).create_key(
        account_id=tenant.account.id, user_id=tenant.user.id, name="minted")
    out = root.revoke_key(admin.id, cascade=True)
    assert out.cascaded == (minted.id,)
    assert root.get_key(minted.id).revoked_at is not None


def test_credits(tenant) -> None:
    root = tenant.root
    k = tenant.user_key("notes:read")
    with pytest.raises(KeywardError) as e:
        root.get_credits(k.id)
    assert e.value.code == ErrorCode.NOT_FOUND
    c = root.set_credits(k.id, remaining=3, refill=keyward.CreditRefill(amount=10, interval="24h"))
    assert c.remaining == 3 and c.refill == keyward.CreditRefill(amount=10, interval="24h0m0s")
    assert root.top_up_credits(k.id, amount=2).remaining == 5
    r = tenant.client().verify_key(k.key, cost=2)
    assert r.valid and r.credits_remaining == 3 and r.metered
    assert root.get_credits(k.id).remaining == 3
    root.delete_credits(k.id)
    with pytest.raises(KeywardError):
        root.get_credits(k.id)
    monthly = root.set_credits(k.id, remaining=7, refill=keyward.CreditRefill(amount=10, day=31))
    assert monthly.refill == keyward.CreditRefill(amount=10, day=31) and monthly.refill.interval is None


def test_manual_rate_limits(tenant) -> None:
    k = tenant.user_key(rate_limits=[keyward.RateLimit(name="always", limit=100, window="1m"),
                                     keyward.RateLimit(name="on-demand", limit=1, window="1m", manual=True)])
    assert [rl.manual for rl in tenant.root.get_key(k.id).rate_limits] == [False, True]
    r = tenant.client().verify_key(k.key)
    assert r.valid and [(s.name, s.manual) for s in r.rate_limits] == [("always", False)], \
        "a manual limit counts only when the verification names it"


def test_verify_and_whoami(tenant) -> None:
    k = tenant.user_key("notes:read")
    c = tenant.client()
    r = c.verify_key(k.key, permissions=["notes:read"], agent="cursor")
    assert r.valid and r.code == keyward.Decision.VALID and r.key_id == k.id
    assert r.identity == keyward.Identity(key_id=k.id, role="user", account_id=tenant.account.id,
                                          user_id=tenant.user.id, external_id="u-1", agent="cursor",
                                          permissions=("notes:read",), environment="live")
    assert r.environment == "live" and k.environment == "live"
    assert c.verify_key(k.key, permissions=["notes:write"]).code == keyward.Decision.INSUFFICIENT_PERMISSIONS
    assert c.verify_key("kw_user_nonsense").code == keyward.Decision.MALFORMED
    me = keyward.Client(tenant.server.url, k.key, agent="ci", environ={}).whoami()
    assert me.key_id == k.id and me.agent == "ci" and me.has_permissions("notes:read")
    assert not me.has_permissions("notes:read", "notes:write")


def test_environments(tenant) -> None:
    root = tenant.root
    k = tenant.user_key(environment="test")
    assert k.environment == "test" and k.key.startswith("kw_test_user_")
    assert [x.id for x in root.list_keys(account_id=tenant.account.id, environment="test").items] == [k.id]
    r = root.verify_key(k.key, environment="live")
    assert not r.valid and r.code == keyward.Decision.WRONG_ENVIRONMENT and r.environment == "test"
    r = root.verify_key(k.key, environment="test")
    assert r.valid and r.identity is not None and r.identity.environment == "test"


def test_refused_key_is_an_error(server) -> None:
    bad = keyward.Client(server.url, "kw_root_" + "x" * 49, environ={})
    with pytest.raises(KeywardError) as e:
        bad.whoami()
    assert e.value.code == ErrorCode.UNAUTHORIZED and e.value.status == 401
    assert e.value.message == "invalid API key"
    assert "kw_root_" not in str(e.value)


def test_async_client(tenant) -> None:
    async def run() -> None:
        c = keyward.AsyncClient(tenant.server.url, tenant.server.root_key, environ={})
        u = await c.create_user(tenant.account.id, name="carol")
        k = await c.create_key(account_id=tenant.account.id, user_id=u.id, permissions=["a:b"])
        tenant.secrets.append(k.key)
        results = await asyncio.gather(*(c.verify_key(k.key, permissions=["a:b"]) for _ in range(4)))
        assert all(r.valid and r.key_id == k.id for r in results)
        assert (await c.revoke_key(k.id)).revoked_at is not None
        assert (await c.verify_key(k.key)).code == keyward.Decision.REVOKED
        with pytest.raises(KeywardError) as e:
            await c.get_key("key_missing")
        assert e.value.code == ErrorCode.NOT_FOUND

    asyncio.run(run())


def test_configuration_from_environment(server) -> None:
    env = {"KEYWARD_URL": server.url + "/", "KEYWARD_API_KEY": server.root_key, "KEYWARD_AGENT": "env-agent"}
    c = keyward.Client(environ=env)
    assert c.url == server.url
    me = c.whoami()
    assert me.role == "root" and me.agent == "env-agent"
    # Explicit options win over the environment.
    with pytest.raises(KeywardError) as e:
        keyward.Client(api_key="kw_root_" + "y" * 49, environ=env).whoami()
    assert e.value.code == ErrorCode.UNAUTHORIZED
    assert keyward.Client(agent="explicit", environ=env).whoami().agent == "explicit"
    assert keyward.Client(environ={}).url == keyward.DEFAULT_URL
    assert "kw_root" not in repr(c) and server.root_key not in repr(keyward.AsyncClient(environ=env))


@pytest.mark.parametrize("url", ["http://keyward.internal:8080", "http://10.0.0.7", "http://[2001:db8::1]:8080"])
def test_plain_http_to_other_hosts_is_refused(url: str) -> None:
    with pytest.raises(keyward.ConfigError, match="allow_insecure_http=True"):
        keyward.Client(url, "kw_root_abc", environ={})
    with pytest.raises(keyward.ConfigError):
        keyward.Client(environ={"KEYWARD_URL": url, "KEYWARD_API_KEY": "kw_root_abc"})
    assert keyward.Client(url, "kw_root_abc", allow_insecure_http=True, environ={}).url == url
    # Without a key nothing secret is sent.
    assert keyward.Client(url, environ={}).url == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://keyward.example"])
def test_loopback_and_https_are_allowed(url: str) -> None:
    assert keyward.Client(url, "kw_root_abc", environ={}).url == url


@pytest.mark.parametrize("url", ["ftp://x", "keyward.example", "http://x/?a=b"])
def test_bad_url(url: str) -> None:
    with pytest.raises(keyward.ConfigError, match="KEYWARD_URL"):
        keyward.Client(url, environ={})


def test_unreachable_is_unavailable() -> None:
    with pytest.raises(KeywardError) as e:
        keyward.Client("http://127.0.0.1:9", "kw_root_abc", environ={}).whoami()
    assert e.value.code == ErrorCode.UNAVAILABLE and e.value.status is None


def test_redirects_are_not_followed(server) -> None:
    """A redirect would carry the key elsewhere: it is answered as an error, and the target never sees a request."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            if self.path.startswith("/v1/"):
                self.send_response(302)
                self.send_header("Location", server.url + "/elsewhere" + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        c = keyward.Client(f"http://127.0.0.1:{srv.server_port}", server.root_key, environ={})
        with pytest.raises(KeywardError) as e:
            c.whoami()
        assert e.value.status == 302
        assert seen == ["/v1/whoami"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_non_problem_error_body(server) -> None:
    """A proxy's error page becomes an error with a code derived from the status."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"<html>502 Bad Gateway</html>\nmore"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(KeywardError) as e:
            keyward.Client(f"http://127.0.0.1:{srv.server_port}", environ={}).whoami()
        assert e.value.code == ErrorCode.UNAVAILABLE and e.value.status == 502
        assert "<html>502 Bad Gateway</html>" in e.value.message and "more" not in e.value.message
    finally:
        srv.shutdown()
        srv.server_close()


def test_shared_limits(tenant) -> None:
    """A user's limit binds all its keys; the refusal names the level, in the result and the guard's problem."""
    root = tenant.root
    a, u = tenant.account, tenant.user
    keys = [tenant.user_key(credits=keyward.Credits(remaining=10)) for _ in range(3)]
    with pytest.raises(KeywardError) as e:
        root.get_user_limits(a.id, u.id)
    assert e.value.code == ErrorCode.NOT_FOUND
    m = root.set_user_limits(a.id, u.id, rate_limits=[keyward.RateLimit(name="min", limit=2, window="1m")])
    assert isinstance(m, keyward.Meter) and m.level == "user" and m.id == u.id
    assert root.verify_key(keys[0].key).valid
    second = root.verify_key(keys[1].key)
    assert second.valid and second.rate_limits[0].level == "user"
    third = root.verify_key(keys[2].key)
    assert third.code == keyward.Decision.RATE_LIMITED and third.limit_level == "user"
    assert root.get_credits(keys[2].id).remaining == 10, "a refused request spends none of the key's own credits"
    d = denial_of(third)
    assert d.status == 429 and d.limit_level == "user" and d.problem("/x")["limit_level"] == "user"
    assert "limit_level" not in denial_of(root.verify_key("kw_user_nothing")).problem("/x")
    root.delete_user_limits(a.id, u.id)
    assert root.verify_key(keys[2].key).valid

    shared = root.set_account_limits(a.id, credits=keyward.Credits(remaining=1))
    assert shared.level == "account" and shared.credits is not None and shared.credits.remaining == 1
    assert root.verify_key(keys[0].key).valid
    spent = root.verify_key(keys[1].key)
    assert spent.code == keyward.Decision.USAGE_EXCEEDED and spent.limit_level == "account"
    limits = root.get_account_limits(a.id)
    assert limits.credits is not None and limits.credits.remaining == 0
    with pytest.raises(KeywardError) as e:
        tenant.client().set_account_limits(a.id, credits=keyward.Credits(remaining=5))
    assert e.value.code == ErrorCode.FORBIDDEN
    root.delete_account_limits(a.id)


def test_portal(tenant) -> None:
    root = tenant.root
    link = root.create_portal_session(account_id=tenant.account.id, external_id="u-1", return_url="https://shop.example/",
                                      permissions=["notes:read"], link_ttl="2m")
    assert isinstance(link, keyward.PortalLink) and link.user_id == tenant.user.id and link.permissions == ("notes:read",)
    assert link.url.startswith(tenant.server.url + "/portal/link/") and link.started_at is None
    assert (link.link_expires_at - link.created_at).total_seconds() == 120
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(link.url) as r:
        assert r.status == 200 and r.url.endswith("/portal/keys"), "the link starts a session and leaves the address bar"
    with pytest.raises(urllib.error.HTTPError) as used:
        browser.open(link.url)
    assert used.value.code == 404, "a link works once"
    with pytest.raises(KeywardError) as e:
        root.create_portal_session(account_id=tenant.account.id, external_id="u-1", return_url="javascript:alert(1)")
    assert e.value.code == ErrorCode.INVALID
    with pytest.raises(KeywardError) as e:
        tenant.client().create_portal_session(external_id="u-1", return_url="https://shop.example/", permissions=["billing:read"])
    assert e.value.code == ErrorCode.FORBIDDEN, "nobody grants what it does not hold"

    async_root = keyward.AsyncClient(tenant.server.url, tenant.server.root_key, environ={})
    b = asyncio.run(async_root.set_portal_branding(tenant.account.id, title="Acme keys", accent_color="#112233"))
    assert b == keyward.PortalBranding(account_id=tenant.account.id, title="Acme keys", accent_color="#112233", updated_at=b.updated_at)
    with pytest.raises(KeywardError) as e:
        root.set_portal_branding(tenant.account.id, accent_color="red;}body{")
    assert e.value.code == ErrorCode.INVALID
    assert root.get_portal_branding(tenant.account.id).accent_color == "#112233"
