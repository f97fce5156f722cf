"""The FastAPI dependency, the ASGI middleware and the Flask decorator against the real keyward."""

from __future__ import annotations

import asyncio

import pytest
from kwtest import need

flask = need("flask")
httpx = need("httpx")
need("fastapi")
need("starlette")

from fastapi import Depends, FastAPI  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import keyward  # noqa: E402
import keyward.fastapi  # noqa: E402
import keyward.flask  # noqa: E402
from keyward.asgi import KeywardMiddleware  # noqa: E402

INVALID = {"type": "urn:keyward:error:unauthorized", "title": "Unauthorized", "status": 401,
           "detail": "invalid API key", "code": "unauthorized"}
NO_KEY = dict(INVALID, detail='no API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"')
FORBIDDEN = {"type": "urn:keyward:error:forbidden", "title": "Forbidden", "status": 403,
             "detail": "the API key lacks the required permissions", "code": "forbidden"}
UNAVAILABLE = {"type": "urn:keyward:error:unavailable", "title": "Unavailable", "status": 503,
               "detail": "API keys cannot be checked right now: try again shortly", "code": "unavailable"}


def bearer(k: str) -> dict:
    return {"Authorization": "Bearer " + k}


def problem(body: dict, instance: str) -> dict:
    return dict(body, instance=instance)


def fastapi_app(verifier, problems: bool = False) -> FastAPI:  # type: ignore[no-untyped-def]
    app = FastAPI()
    if problems:
        keyward.fastapi.use_problem_details(app)

    @app.get("/notes")
    async def notes(identity: keyward.Identity = Depends(keyward.require("notes:read", verifier=verifier))):
        return {"key_id": identity.key_id, "account": identity.account_id, "user": identity.user_id,
                "agent": identity.agent}

    @app.get("/")
    async def index():  # type: ignore[no-untyped-def]
        return {"public": True}

    return app


def unreachable(**kw) -> keyward.AsyncCachedVerifier:  # type: ignore[no-untyped-def]
    return keyward.AsyncCachedVerifier(keyward.AsyncClient("http://127.0.0.1:9", "kw_root_x", environ={}), **kw)


def test_fastapi_dependency(tenant) -> None:
    reader = tenant.user_key("notes:read")
    writer = tenant.user_key("notes:write")
    tc = TestClient(fastapi_app(keyward.AsyncCachedVerifier(tenant.async_client())))

    r = tc.get("/notes", headers=dict(bearer(reader.key), **{"X-Keyward-Agent": "claude"}))
    assert r.status_code == 200
    assert r.json() == {"key_id": reader.id, "account": tenant.account.id, "user": tenant.user.id, "agent": "claude"}
    assert tc.get("/notes", headers={"X-API-Key": reader.key}).status_code == 200
    assert tc.get("/").json() == {"public": True}

    r = tc.get("/notes")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="keyward"'
    assert r.json() == {"detail": NO_KEY["detail"]} and r.headers["cache-control"] == "no-store"
    r = tc.get("/notes", headers=bearer("kw_user_" + "Z" * 49))
    assert r.status_code == 401 and r.json() == {"detail": "invalid API key"}
    r = tc.get("/notes", headers=bearer(writer.key))
    assert r.status_code == 403 and r.json() == {"detail": FORBIDDEN["detail"]}
    assert "www-authenticate" not in r.headers


def test_fastapi_problem_details(tenant) -> None:
    writer = tenant.user_key("notes:write")
    tc = TestClient(fastapi_app(keyward.AsyncCachedVerifier(tenant.async_client()), problems=True))
    r = tc.get("/notes", headers=bearer(writer.key))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert r.json() == problem(FORBIDDEN, "/notes")
    r = tc.get("/notes")
    assert r.status_code == 401 and r.json() == problem(NO_KEY, "/notes")
    assert r.headers["www-authenticate"] == 'Bearer realm="keyward"'


def test_fastapi_fails_closed(tenant) -> None:
    tc = TestClient(fastapi_app(unreachable(), problems=True))
    r = tc.get("/notes", headers=bearer(tenant.user_key("notes:read").key))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json() == problem(UNAVAILABLE, "/notes")


def test_fastapi_default_verifier_from_environment(tenant, monkeypatch) -> None:
    from keyward import guard

    monkeypatch.setattr(guard, "_defaults", {})
    monkeypatch.setenv("KEYWARD_URL", tenant.server.url)
    monkeypatch.delenv("KEYWARD_API_KEY", raising=False)
    tc = TestClient(fastapi_app(None))
    k = tenant.user_key("notes:read")
    r = tc.get("/notes", headers=bearer(k.key))
    assert r.status_code == 503, "without a verifier key nothing can be checked: fail closed"
    monkeypatch.setenv("KEYWARD_API_KEY", tenant.verifier_key.key)
    assert tc.get("/notes", headers=bearer(k.key)).json()["key_id"] == k.id


async def whoami(request: Request) -> JSONResponse:
    passed = request.state.keyward
    ident = passed.identity
    return JSONResponse({"key_id": ident.key_id if ident else None, "agent": ident.agent if ident else None})


def starlette_app(verifier, **options) -> Starlette:  # type: ignore[no-untyped-def]
    app = Starlette(routes=[Route("/{path:path}", whoami, methods=["GET", "OPTIONS"])])
    app.add_middleware(KeywardMiddleware, verifier=verifier, **options)
    return app


def test_asgi_middleware(tenant) -> None:
    k = tenant.user_key("notes:read")
    tc = TestClient(starlette_app(keyward.AsyncCachedVerifier(tenant.async_client()),
                                  exempt=["/", "/docs", "/public/*"],
                                  exempt_func=lambda r: r.method == "OPTIONS"))
    assert tc.get("/notes", headers=bearer(k.key)).json() == {"key_id": k.id, "agent": None}
    for path in ["/", "/docs", "/public/a.css", "/public/"]:
        assert tc.get(path).json() == {"key_id": None, "agent": None}, path
    assert tc.options("/notes").status_code == 200
    for path in ["/docs/", "/documents", "/public/../notes", "/public//x", "/notes"]:
        r = tc.get(path)
        assert r.status_code == 401, path
    r = tc.get("/notes")
    assert r.json() == problem(NO_KEY, "/notes") and r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"

    r = tc.get("/notes", headers=bearer("kw_user_" + "Q" * 49))
    assert r.status_code == 401 and r.json() == problem(INVALID, "/notes")
    r = tc.get("/notes", headers={"Authorization": "Bearer " + k.key, "X-API-Key": "other"})
    assert r.status_code == 401 and r.json()["detail"] == "Authorization and X-API-Key carry different keys: send one"
    r = tc.get("/notes", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401 and r.json()["detail"] == 'Authorization must be "Bearer <key>"'
    r = tc.get("/notes", headers={"Authorization": "Bearer " + k.key, "X-API-Key": k.key, "X-Keyward-Agent": "cli"})
    assert r.status_code == 200 and r.json()["agent"] == "cli"
    for agent in ["a" * 201, "bad\x01agent"]:
        r = tc.get("/notes", headers={"Authorization": "Bearer " + k.key, "X-Keyward-Agent": agent})
        assert r.status_code == 400 and r.json()["code"] == "invalid", agent
    # Keys are never read from the query string.
    assert tc.get("/notes?api_key=" + k.key).status_code == 401


def test_asgi_websocket(tenant) -> None:
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.state.keyward.identity.key_id)
        await ws.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(KeywardMiddleware, verifier=keyward.AsyncCachedVerifier(tenant.async_client()))
    tc = TestClient(app)
    k = tenant.user_key()
    with tc.websocket_connect("/ws", headers=bearer(k.key)) as ws:
        assert ws.receive_text() == k.id
    with pytest.raises(WebSocketDisconnect) as e:
        with tc.websocket_connect("/ws") as ws:
            ws.receive_text()
    assert e.value.code == 1008


def test_agent_headers_and_challenge(tenant) -> None:
    k = tenant.user_key()
    tc = TestClient(starlette_app(keyward.AsyncCachedVerifier(tenant.async_client()),
                                  agent_headers=["X-OpenViking-Agent", "X-Keyward-Agent"],
                                  challenge='ApiKey realm="memories"'))
    r = tc.get("/x", headers=dict(bearer(k.key), **{"X-OpenViking-Agent": "ov", "X-Keyward-Agent": "kw"}))
    assert r.status_code == 400, "headers naming different agents are refused, as keyward refuses them"
    assert r.json()["detail"] == "the agent headers name different agents: send the agent in one header"
    r = tc.get("/x", headers=dict(bearer(k.key), **{"X-OpenViking-Agent": "ov", "X-Keyward-Agent": "ov"}))
    assert r.json()["agent"] == "ov", "the same agent in both passes"
    assert tc.get("/x", headers=dict(bearer(k.key), **{"X-OpenViking-Agent": "ov"})).json()["agent"] == "ov"
    assert tc.get("/x", headers=dict(bearer(k.key), **{"X-Keyward-Agent": "kw"})).json()["agent"] == "kw"
    no_alias = TestClient(starlette_app(keyward.AsyncCachedVerifier(tenant.async_client()), agent_headers=["X-OpenViking-Agent"]))
    assert no_alias.get("/x", headers=dict(bearer(k.key), **{"X-Keyward-Agent": "kw"})).json()["agent"] == "kw", \
        "X-Keyward-Agent is read even when not listed"
    r = tc.get("/x", headers=dict(bearer(k.key), **{"X-OpenViking-Agent": "x" * 201}))
    assert r.status_code == 400
    assert tc.get("/x").headers["www-authenticate"] == 'ApiKey realm="memories"'


def test_asgi_permissions_limits_and_outage(tenant) -> None:
    reader = tenant.user_key("notes:read")
    writer = tenant.user_key("notes:write")
    limited = tenant.user_key("notes:read", rate_limits=[keyward.RateLimit(name="per-minute", limit=2, window="1m")])
    tc = TestClient(starlette_app(keyward.AsyncCachedVerifier(tenant.async_client()), permissions=["notes:read"]))
    assert tc.get("/x", headers=bearer(reader.key)).status_code == 200
    r = tc.get("/x", headers=bearer(writer.key))
    assert r.status_code == 403 and r.json() == problem(FORBIDDEN, "/x")

    r = tc.get("/x", headers=bearer(limited.key))
    assert r.status_code == 200
    assert r.headers["ratelimit-policy"] == '"per-minute";q=2;w=60'
    assert r.headers["ratelimit"].startswith('"per-minute";r=1;t=')
    tc.get("/x", headers=bearer(limited.key))
    r = tc.get("/x", headers=bearer(limited.key))
    assert r.status_code == 429 and r.json()["detail"] == "rate limit exceeded: slow down"
    assert int(r.headers["retry-after"]) >= 1 and r.headers["ratelimit"].startswith('"per-minute";r=0;')

    tc = TestClient(starlette_app(unreachable()))
    r = tc.get("/x", headers=bearer(reader.key))
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and r.json() == problem(UNAVAILABLE, "/x")


class Sends:
    """Counts, in n, the requests an AsyncClient sends to keyward."""

    def __init__(self, client: keyward.AsyncClient) -> None:
        self.n = 0
        real = client.sync._send

        def send(*a, **kw):  # type: ignore[no-untyped-def]
            self.n += 1
            return real(*a, **kw)

        client.sync._send = send  # type: ignore[method-assign]


def test_require_behind_the_middleware_makes_no_second_call(tenant) -> None:
    k = tenant.user_key("notes:read")
    client = tenant.async_client()
    calls = Sends(client)
    v = keyward.AsyncCachedVerifier(client, ttl=-1)
    app = FastAPI()
    app.add_middleware(KeywardMiddleware, verifier=v, exempt=["/open"])

    @app.get("/notes")
    async def notes(identity: keyward.Identity = Depends(keyward.require("notes:read", verifier=v))):
        return {"key_id": identity.key_id}

    @app.get("/admin")
    async def admin(identity: keyward.Identity = Depends(keyward.require("notes:admin", verifier=v))):
        return {}

    @app.get("/open")
    async def open_(identity: keyward.Identity = Depends(keyward.require("notes:read", verifier=v))):
        return {"key_id": identity.key_id}

    tc = TestClient(app)
    assert tc.get("/notes", headers=bearer(k.key)).json() == {"key_id": k.id} and calls.n == 1
    assert tc.get("/admin", headers=bearer(k.key)).status_code == 403 and calls.n == 2
    # An exempt path with require still needs a key: the dependency verifies it.
    assert tc.get("/open").status_code == 401 and calls.n == 2
    assert tc.get("/open", headers=bearer(k.key)).json() == {"key_id": k.id} and calls.n == 3


def asgi_get(app, headers: list, path: str = "/notes") -> tuple:  # type: ignore[no-untyped-def]
    """One GET through app with these raw ASGI headers (names as given: TestClient lowercases them)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    out: dict = {"body": b""}

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m):  # type: ignore[no-untyped-def]
        if m["type"] == "http.response.start":
            out["status"] = m["status"]
        else:
            out["body"] += m.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return out["status"], out["body"]


def test_cache_hits_decide_as_the_whole_check(tenant) -> None:
    # A plain request (one well-formed credential header, none of the other
    # headers a guard reads) answered from the cache takes a shortcut
    # (keyward.asgi.cached_pass); every other request the whole check. Both
    # must decide alike, and the shortcut must never skip a header.
    import json

    k, other = tenant.user_key("notes:read"), tenant.user_key("notes:read")
    client = tenant.async_client()
    calls = Sends(client)
    v = keyward.AsyncCachedVerifier(client)
    app = fastapi_app(v)
    key = k.key.encode()

    def get(*headers: tuple, path: str = "/notes"):  # type: ignore[no-untyped-def]
        status, body = asgi_get(app, [(b"host", b"svc"), *headers], path)
        return status, json.loads(body)

    want = {"key_id": k.id, "account": tenant.account.id, "user": tenant.user.id, "agent": None}
    assert get((b"authorization", b"Bearer " + key)) == (200, want) and calls.n == 1
    assert get((b"authorization", b"Bearer " + key)) == (200, want) and calls.n == 1, "a cache hit"
    assert get((b"x-api-key", key)) == (200, want) and calls.n == 1
    # Not plain: the whole check reads them, from the same cache.
    assert get((b"authorization", b"bearer " + key)) == (200, want)
    assert get((b"authorization", b"Bearer  " + key + b" ")) == (200, want)
    assert get((b"Authorization", b"Bearer " + key)) == (200, want), "a server that keeps the header's case"
    assert get((b"authorization", b"Bearer " + key), (b"x-api-key", key)) == (200, want)
    assert get((b"authorization", b"Bearer " + key), (b"X-Keyward-Agent", b"cli")) == (200, dict(want, agent="cli"))
    assert get((b"authorization", b"Bearer " + key), (b"x-keyward-agent", b"cli")) == (200, dict(want, agent="cli"))
    assert calls.n == 1
    status, body = get((b"authorization", b"Bearer " + key), (b"authorization", b"Bearer " + key))
    assert status == 401 and body["detail"] == "Authorization and X-API-Key carry different keys: send one"
    status, body = get((b"authorization", b"Bearer " + key), (b"x-api-key", other.key.encode()))
    assert status == 401 and body["detail"] == "Authorization and X-API-Key carry different keys: send one"
    status, body = get((b"authorization", b"Bearer " + key), (b"X-Keyward-Agent", b"bad\x01agent"))
    assert status == 400 and body["detail"] == "X-Keyward-Agent must be printable text of at most 200 bytes"
    # An answer cached for a request with an agent serves one without: no agent.
    assert get((b"authorization", b"Bearer " + other.key.encode()), (b"x-keyward-agent", b"cli"))[1]["agent"] == "cli"
    assert get((b"authorization", b"Bearer " + other.key.encode()))[1] == dict(want, key_id=other.id)
    assert calls.n == 2

    # The middleware takes the shortcut too (it asks for no permission: an
    # answer of its own), and an exempt path stays exempt with a cached key.
    mw = starlette_app(v, exempt=["/open"])
    passed = (200, b'{"key_id":"%s","agent":null}' % k.id.encode())
    assert asgi_get(mw, [(b"authorization", b"Bearer " + key)], "/x") == passed and calls.n == 3
    assert asgi_get(mw, [(b"authorization", b"Bearer " + key)], "/x") == passed and calls.n == 3
    assert asgi_get(mw, [(b"authorization", b"Bearer " + key)], "/open") == (200, b'{"key_id":null,"agent":null}')


def test_trusted_proxies(tenant) -> None:
    k = tenant.user_key(ip_allow=["203.0.113.0/24"])

    async def get(app, peer: str, xff: str) -> int:  # type: ignore[no-untyped-def]
        transport = httpx.ASGITransport(app=app, client=(peer, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
            r = await c.get("/x", headers=dict(bearer(k.key), **{"X-Forwarded-For": xff}))
            return r.status_code

    v = keyward.AsyncCachedVerifier(tenant.async_client())
    behind = starlette_app(v, trusted_proxies=["10.0.0.0/8"])
    direct = starlette_app(v)
    assert asyncio.run(get(behind, "10.0.0.1", "198.51.100.1, 203.0.113.7")) == 200
    assert asyncio.run(get(behind, "10.0.0.1", "203.0.113.7, 198.51.100.1")) == 403
    assert asyncio.run(get(direct, "10.0.0.1", "203.0.113.7")) == 403, "X-Forwarded-For of an untrusted peer is ignored"
    assert asyncio.run(get(direct, "203.0.113.9", "10.9.9.9")) == 200


def flask_app(verifier) -> flask.Flask:  # type: ignore[no-untyped-def]
    app = flask.Flask(__name__)

    @app.get("/notes")
    @keyward.flask.require("notes:read", verifier=verifier)
    def notes():  # type: ignore[no-untyped-def]
        ident = keyward.flask.current_identity()
        return {"key_id": ident.key_id, "agent": ident.agent}

    @app.get("/")
    def index():  # type: ignore[no-untyped-def]
        return {"identity": keyward.flask.current_identity()}

    return app


def test_flask_decorator(tenant) -> None:
    reader = tenant.user_key("notes:read")
    writer = tenant.user_key("notes:write")
    limited = tenant.user_key("notes:read", credits=keyward.Credits(remaining=1),
                              rate_limits=[keyward.RateLimit(name="burst", limit=5, window="1s")])
    c = flask_app(keyward.CachedVerifier(tenant.client())).test_client()
    r = c.get("/notes", headers=dict(bearer(reader.key), **{"X-Keyward-Agent": "flask-agent"}))
    assert r.status_code == 200 and r.json == {"key_id": reader.id, "agent": "flask-agent"}
    assert c.get("/").json == {"identity": None}
    r = c.get("/notes")
    assert r.status_code == 401 and r.json == problem(NO_KEY, "/notes")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="keyward"' and r.content_type == "application/problem+json"
    r = c.get("/notes", headers=bearer(writer.key))
    assert r.status_code == 403 and r.json == problem(FORBIDDEN, "/notes")
    r = c.get("/notes", headers=bearer(limited.key))
    assert r.status_code == 200 and r.headers["RateLimit-Policy"] == '"burst";q=5;w=1'
    r = c.get("/notes", headers=bearer(limited.key))
    assert r.status_code == 429 and r.json["detail"] == "usage quota exhausted"

    down = flask_app(keyward.CachedVerifier(keyward.Client("http://127.0.0.1:9", "kw_root_x", environ={})))
    r = down.test_client().get("/notes", headers=bearer(reader.key))
    assert r.status_code == 503 and r.headers["Retry-After"] == "1" and r.json == problem(UNAVAILABLE, "/notes")


def test_flask_needs_a_blocking_verifier(tenant) -> None:
    app = flask_app(keyward.AsyncCachedVerifier(tenant.async_client()))
    app.testing = True  # raise the view's errors
    c = app.test_client()
    with pytest.raises(keyward.ConfigError, match="blocking verifier"):
        c.get("/notes", headers=bearer(tenant.user_key("notes:read").key))


def test_require_query_role_and_environment(tenant) -> None:
    """A route's query, least role and environment are asked of keyward, answered apart in the cache,
    and checked again behind the middleware (which verified the key without them)."""
    both = tenant.user_key("notes:read", "search:run")
    wild = tenant.user_key("notes:*", "admin:*")
    reader = tenant.user_key("notes:read")
    query = "notes:read AND (search:run OR admin:*)"
    v = keyward.AsyncCachedVerifier(tenant.async_client())
    app = FastAPI()
    app.add_middleware(KeywardMiddleware, verifier=v)

    @app.get("/search")
    async def search(identity: keyward.Identity = Depends(keyward.require(verifier=v, query=query))):
        return {"key_id": identity.key_id}

    @app.get("/notes")
    async def notes(identity: keyward.Identity = Depends(keyward.require("notes:read", verifier=v))):
        return {"key_id": identity.key_id}

    @app.get("/admin")
    async def admin(identity: keyward.Identity = Depends(keyward.require(verifier=v, require_role="account_admin"))):
        return {}

    @app.get("/test-only")
    async def test_only(identity: keyward.Identity = Depends(keyward.require(verifier=v, environment="test"))):
        return {}

    tc = TestClient(app)
    assert tc.get("/search", headers=bearer(both.key)).json() == {"key_id": both.id}
    assert tc.get("/search", headers=bearer(wild.key)).json() == {"key_id": wild.id}
    # The same key, cached for /notes, is still refused the query it does not meet.
    assert tc.get("/notes", headers=bearer(reader.key)).status_code == 200
    r = tc.get("/search", headers=bearer(reader.key))
    assert r.status_code == 403 and r.json() == {"detail": FORBIDDEN["detail"]}
    assert tc.get("/notes", headers=bearer(wild.key)).status_code == 200  # a held wildcard, checked locally
    assert tc.get("/admin", headers=bearer(both.key)).status_code == 403
    r = tc.get("/test-only", headers=bearer(both.key))
    assert r.status_code == 403 and "another environment" in r.json()["detail"]
    res = keyward.CachedVerifier(tenant.client()).verify_key(reader.key, query=query)
    assert not res.valid and res.code == keyward.Decision.INSUFFICIENT_PERMISSIONS
    assert "search:run" in res.missing_permissions
