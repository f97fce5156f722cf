"""FastAPI integration: ``Depends(keyward.require("memories:read"))`` gives the handler the caller.

    @app.get("/memories")
    async def memories(identity: keyward.Identity = Depends(keyward.require("memories:read"))):
        ...

Refusals are raised as ``KeywardHTTPException`` (a Starlette
``HTTPException`` with the status and headers of keyward's middleware), which
FastAPI renders as ``{"detail": "..."}``; ``use_problem_details(app)``
renders them as keyward's problem+json instead.
"""
# No "from __future__ import annotations": FastAPI reads the dependency's
# annotations as objects.

from typing import Any, Callable, Optional

from starlette.exceptions import HTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from ._types import Identity, VerifyResult
from .asgi import STATE_KEY, cached_pass, passed_of, request_of
from .guard import Denial, Guard, Verifier

__all__ = ["KeywardHTTPException", "current_identity", "current_result", "require", "use_problem_details"]


class KeywardHTTPException(HTTPException):
    """A refused request: ``denial`` says why, ``instance`` is the request's path."""

    def __init__(self, denial: Denial, instance: str) -> None:
        super().__init__(denial.status, denial.detail, headers=dict(denial.headers()))
        self.denial = denial
        self.instance = instance


def require(*permissions: str, verifier: Verifier = None, **options: Any) -> Callable[..., Any]:
    """A dependency admitting a request only with a valid key holding every one of ``permissions``.

    It returns the caller's ``Identity``. Behind ``KeywardMiddleware`` it
    checks the identity the middleware verified (no second call); otherwise,
    and on paths the middleware exempts, it asks ``verifier`` (default: a
    cached verifier from ``KEYWARD_URL`` and ``KEYWARD_API_KEY``), which
    checks the permissions. Missing key or refused: 401 with
    ``WWW-Authenticate``; missing permission: 403; keyward unreachable and
    the key not cached: 503 with ``Retry-After``. ``options`` are ``Guard``'s
    (``query``, ``require_role``, ``environment``, ``trusted_proxies``,
    ``challenge``, ``agent_headers``).
    """
    guard = Guard(verifier, permissions=permissions, **options)

    async def keyward_identity(request: StarletteRequest, response: Response) -> Identity:
        scope = request.scope
        passed = passed_of(scope)
        if passed is not None and passed.identity is not None and not guard.needs.part:
            # The middleware verified the key; a query, role or
            # environment of this route is asked of keyward below.
            r = request_of(scope)
            try:
                guard.authorize(r, passed.identity, permissions)
            except Denial as d:
                raise KeywardHTTPException(d, r.path) from None
            return passed.identity
        passed = cached_pass(guard, scope)
        if passed is None:
            r = request_of(scope)
            try:
                passed = await guard.acheck(r)
            except Denial as d:
                raise KeywardHTTPException(d, r.path) from None
        # For current_identity/current_result, and for the next require of
        # this request: it checks this identity instead of asking again.
        scope.setdefault("state", {})[STATE_KEY] = passed
        if passed.result is not None and passed.result.rate_limits:
            for k, v in passed.headers():
                response.headers[k] = v
        assert passed.identity is not None  # the guard exempts nothing
        return passed.identity

    return keyward_identity


async def _problem_response(request: StarletteRequest, exc: Exception) -> Response:
    assert isinstance(exc, KeywardHTTPException)
    d = exc.denial
    return Response(d.body(exc.instance), status_code=d.status, headers=dict(d.problem_headers()))


def use_problem_details(app: Any) -> None:
    """Makes ``app`` render the refusals of ``require`` as problem+json, like keyward's middleware."""
    app.add_exception_handler(KeywardHTTPException, _problem_response)


def current_identity(request: StarletteRequest) -> Optional[Identity]:
    """The identity ``KeywardMiddleware`` or ``require`` verified for request; None when neither did."""
    passed = passed_of(request.scope)
    return passed.identity if passed is not None else None


def current_result(request: StarletteRequest) -> Optional[VerifyResult]:
    """The whole verification result of request's key (its ``meta``, ``secret_meta``, ...), when verified."""
    passed = passed_of(request.scope)
    return passed.result if passed is not None else None
