"""The operations of keyward's HTTP API the client calls.

This table is what the client sends: every method of ``Client`` goes through
one entry. ``tests/test_openapi_drift.py`` checks each entry, and the fields
of its request and result, against the served ``/openapi.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from . import _types as t


@dataclasses.dataclass(frozen=True)
class Operation:
    """One route of the API."""

    #: The OpenAPI operationId.
    id: str
    method: str
    #: The path template, e.g. ``/v1/keys/{id}``.
    path: str
    #: The schema of the JSON request body, if any.
    body: Optional[str] = None
    #: The dataclass of the 2xx JSON body; None for 204 No Content.
    result: Optional[type] = None
    #: The query parameters the client may send.
    query: Tuple[str, ...] = ()


_PAGE = ("after", "limit")

OPERATIONS = {
    op.id: op
    for op in (
        Operation("createAccount", "POST", "/v1/accounts", "AccountCreate", t.Account),
        Operation("listAccounts", "GET", "/v1/accounts", None, t.AccountList, _PAGE),
        Operation("getAccount", "GET", "/v1/accounts/{id}", None, t.Account),
        Operation("updateAccount", "PATCH", "/v1/accounts/{id}", "AccountUpdate", t.Account),
        Operation("deleteAccount", "DELETE", "/v1/accounts/{id}"),
        Operation("createUser", "POST", "/v1/accounts/{id}/users", "UserCreate", t.User),
        Operation("listUsers", "GET", "/v1/accounts/{id}/users", None, t.UserList, _PAGE),
        Operation("getUser", "GET", "/v1/accounts/{id}/users/{uid}", None, t.User),
        Operation("lookupUser", "GET", "/v1/accounts/{id}/users/lookup", None, t.User, ("external_id",)),
        Operation("updateUser", "PATCH", "/v1/accounts/{id}/users/{uid}", "UserUpdate", t.User),
        Operation("deleteUser", "DELETE", "/v1/accounts/{id}/users/{uid}"),
        Operation("createKey", "POST", "/v1/keys", "KeyCreate", t.CreatedKey),
        Operation("listKeys", "GET", "/v1/keys", None, t.KeyList, ("account_id", "user_id", "role", "environment") + _PAGE),
        Operation("getKey", "GET", "/v1/keys/{id}", None, t.Key),
        Operation("updateKey", "PATCH", "/v1/keys/{id}", "KeyUpdate", t.Key),
        Operation("disableKey", "POST", "/v1/keys/{id}/disable", None, t.Key),
        Operation("enableKey", "POST", "/v1/keys/{id}/enable", None, t.Key),
        Operation("revokeKey", "POST", "/v1/keys/{id}/revoke", None, t.KeyRevocation, ("cascade",)),
        Operation("rotateKey", "POST", "/v1/keys/{id}/rotate", "KeyRotate", t.CreatedKey),
        Operation("deleteKey", "DELETE", "/v1/keys/{id}"),
        Operation("verifyKey", "POST", "/v1/keys/verify", "VerifyRequest", t.VerifyResult),
        Operation("whoami", "GET", "/v1/whoami", None, t.Identity),
        Operation("getCredits", "GET", "/v1/keys/{id}/credits", None, t.Credits),
        Operation("setCredits", "PUT", "/v1/keys/{id}/credits", "Credits", t.Credits),
        Operation("deleteCredits", "DELETE", "/v1/keys/{id}/credits"),
        Operation("topUpCredits", "POST", "/v1/keys/{id}/credits/top-up", "CreditsTopUp", t.Credits),
        Operation("getAccountLimits", "GET", "/v1/accounts/{id}/limits", None, t.Meter),
        Operation("setAccountLimits", "PUT", "/v1/accounts/{id}/limits", "MeterSet", t.Meter),
        Operation("deleteAccountLimits", "DELETE", "/v1/accounts/{id}/limits"),
        Operation("createPortalSession", "POST", "/v1/portal/sessions", "PortalSessionCreate", t.PortalLink),
        Operation("getPortalBranding", "GET", "/v1/accounts/{id}/portal-branding", None, t.PortalBranding),
        Operation("setPortalBranding", "PUT", "/v1/accounts/{id}/portal-branding", "PortalBrandingSet", t.PortalBranding),
        Operation("getUserLimits", "GET", "/v1/accounts/{id}/users/{uid}/limits", None, t.Meter),
        Operation("setUserLimits", "PUT", "/v1/accounts/{id}/users/{uid}/limits", "MeterSet", t.Meter),
        Operation("deleteUserLimits", "DELETE", "/v1/accounts/{id}/users/{uid}/limits"),
    )
}
