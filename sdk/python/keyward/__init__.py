"""keyward's Python SDK: a client of keyward's HTTP API and request guards for Python services.

    import keyward
    from fastapi import Depends, FastAPI

    app = FastAPI()

    @app.get("/memories")
    async def memories(identity: keyward.Identity = Depends(keyward.require("memories:read"))):
        return {"account": identity.account_id}

Configured like the ``keyward`` CLI: ``KEYWARD_URL`` and ``KEYWARD_API_KEY``
(a key holding ``keys:verify``) unless passed. Standard library only; the
framework integrations (``keyward.fastapi``, ``keyward.asgi``,
``keyward.flask``) import their framework when used.
"""

from __future__ import annotations

from typing import Any, Callable

from ._errors import ConfigError, ErrorCode, KeywardError
from ._types import (
    Account,
    AccountList,
    AccountPolicy,
    CreatedKey,
    CreditRefill,
    Credits,
    Decision,
    Identity,
    Key,
    KeyList,
    KeyRevocation,
    Meter,
    PortalBranding,
    PortalLink,
    RateLimit,
    RateLimitStatus,
    Role,
    User,
    UserList,
    VerifyResult,
    covers,
)
from .cache import AsyncCachedVerifier, CachedVerifier
from .client import DEFAULT_URL, AsyncClient, Client
from .guard import Denial, Guard, Passed, Request

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "Account",
    "AccountList",
    "AccountPolicy",
    "AsyncCachedVerifier",
    "AsyncClient",
    "CachedVerifier",
    "Client",
    "ConfigError",
    "CreatedKey",
    "CreditRefill",
    "Credits",
    "Decision",
    "Denial",
    "ErrorCode",
    "Guard",
    "Identity",
    "Key",
    "KeyList",
    "KeyRevocation",
    "KeywardError",
    "Meter",
    "PortalBranding",
    "PortalLink",
    "Passed",
    "RateLimit",
    "RateLimitStatus",
    "Request",
    "Role",
    "User",
    "UserList",
    "VerifyResult",
    "covers",
    "require",
]


def require(*permissions: str, **options: Any) -> Callable[..., Any]:
    """The FastAPI dependency of ``keyward.fastapi.require``: ``Depends(keyward.require("memories:read"))``.

    Imports Starlette when called.
    """
    from .fastapi import require as fastapi_require

    return fastapi_require(*permissions, **options)
