"""ASGI middleware (Starlette, FastAPI, any ASGI app): every request needs a valid key.

    app.add_middleware(KeywardMiddleware, exempt=["/", "/docs", "/openapi.json"])

Refusals are problem+json as from keyward's Go middleware. A request let
through carries the outcome in ``scope["state"]["keyward"]`` (Starlette:
``request.state.keyward``, a ``Passed`` with ``identity`` and ``result``);
``keyward.require(...)`` behind the middleware reads it instead of asking
keyward again. No framework is imported.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, List, MutableMapping, Optional

from .guard import Denial, Guard, Passed, Request, Verifier

__all__ = ["KeywardMiddleware", "STATE_KEY", "cached_pass", "passed_of"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where the outcome goes in ``scope["state"]``.
STATE_KEY = "keyward"


# The headers a guard reads, collected in one pass over the request's.
_GUARD_HEADERS = frozenset((b"authorization", b"x-api-key", b"x-keyward-agent", b"x-forwarded-for"))


def request_of(scope: Scope) -> Request:
    """What a guard reads of an ASGI request."""
    raw = scope.get("headers") or ()
    found: dict = {}
    for k, v in raw:
        k = k.lower()
        if k in _GUARD_HEADERS:
            found.setdefault(k.decode(), []).append(v.decode("latin-1"))

    def headers(name: str) -> List[str]:
        n = name.lower()
        if n.encode("latin-1") in _GUARD_HEADERS:
            return found.get(n, [])
        nb = n.encode("latin-1")
        return [v.decode("latin-1") for k, v in raw if k.lower() == nb]

    client = scope.get("client")
    return Request(headers=headers, path=scope.get("path") or "/", peer=client[0] if client else None,
                   method=scope.get("method") or "GET")


def cached_pass(guard: Guard, scope: Scope) -> Optional[Passed]:
    """``guard.cached`` for a plain ASGI request; None when the request is not plain or not cached (ask ``acheck``).

    Plain: one ``Authorization: Bearer <key>`` or ``X-API-Key`` header with a
    key that needs no trimming, none of the other headers the guard reads, and
    every header name lowercase, as ASGI servers give them. One pass over the
    headers, and no ``Request``: what a cache hit costs a protected request.
    """
    names = guard.raw_header_names
    name = value = None
    for k, v in scope.get("headers") or ():
        if k in names:
            if name is not None or (k != b"authorization" and k != b"x-api-key"):
                return None
            name, value = k, v
        elif not k.islower():
            return None
    if value is None:
        return None
    if name == b"authorization":
        if value[:7] != b"Bearer ":
            return None
        value = value[7:]
    key = value.decode("latin-1")
    if not key or key.strip() != key:
        return None
    client = scope.get("client")
    return guard.cached(key, client[0] if client else None, scope.get("path") or "/")


def passed_of(scope: Scope) -> Optional[Passed]:
    """The outcome the middleware left in scope, None when it did not run."""
    state = scope.get("state")
    return state.get(STATE_KEY) if isinstance(state, dict) else None


async def send_denial(send: Send, d: Denial, instance: str) -> None:
    """Writes d as a problem+json response."""
    body = d.body(instance)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in d.problem_headers()]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": d.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class KeywardMiddleware:
    """Admits HTTP and WebSocket requests only with a key the verifier accepts.

    The options are ``Guard``'s: ``verifier`` (default: a cached verifier
    from ``KEYWARD_URL`` and ``KEYWARD_API_KEY``), ``permissions`` every
    request needs, ``exempt`` paths, ``exempt_func``, ``trusted_proxies``,
    the 401 ``challenge`` and ``agent_headers``. A refused WebSocket is closed with code 1008
    before it is accepted.
    """

    def __init__(self, app: ASGIApp, verifier: Verifier = None, **options: Any) -> None:
        self.app = app
        self.guard = Guard(verifier, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        passed = cached_pass(self.guard, scope)
        if passed is None:
            r = request_of(scope)
            try:
                passed = await self.guard.acheck(r)
            except Denial as d:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await send_denial(send, d, r.path)
                return
        scope.setdefault("state", {})[STATE_KEY] = passed
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in passed.headers()]
        if not extra or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            # The state of the key's rate limits goes out with the handler's response.
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers") or ()) + extra
            await send(message)

        await self.app(scope, receive, send_with_limits)
