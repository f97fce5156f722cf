"""Flask integration: ``@keyward.flask.require("memories:read")`` on a view.

    @app.get("/memories")
    @keyward.flask.require("memories:read")
    def memories():
        identity = keyward.flask.current_identity()

Refusals are keyward's problem+json, with the statuses and headers of its
middleware. The verifier must be blocking (``CachedVerifier``); the default
is made from ``KEYWARD_URL`` and ``KEYWARD_API_KEY`` on first use.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, TypeVar

import flask

from ._types import Identity
from .guard import Denial, Guard, Passed, Request, Verifier

__all__ = ["current_identity", "require"]

F = TypeVar("F", bound=Callable[..., Any])


def _request() -> Request:
    r = flask.request
    return Request(headers=r.headers.getlist, path=r.path, peer=r.remote_addr, method=r.method)


def require(*permissions: str, verifier: Verifier = None, **options: Any) -> Callable[[F], F]:
    """A decorator admitting a request to the view only with a valid key holding every one of ``permissions``.

    The identity is ``current_identity()`` (also ``flask.g.keyward.identity``).
    ``options`` are ``Guard``'s (``query``, ``require_role``, ``environment``,
    ``trusted_proxies``, ``challenge``, ``agent_headers``).
    """
    guard = Guard(verifier, permissions=permissions, **options)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            r = _request()
            try:
                passed = guard.check(r)
            except Denial as d:
                return flask.Response(d.body(r.path), status=d.status, headers=d.problem_headers())
            flask.g.keyward = passed
            limits = passed.headers()
            if limits:
                @flask.after_this_request
                def add_limits(resp: flask.Response) -> flask.Response:
                    for k, v in limits:
                        resp.headers[k] = v
                    return resp
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def current_identity() -> Optional[Identity]:
    """The identity of the request's key, verified by ``require``; None outside a guarded view."""
    passed: Optional[Passed] = flask.g.get("keyward")
    return passed.identity if passed is not None else None
