"""The objects of keyward's HTTP API, as read from its JSON.

Every class mirrors a schema of the served OpenAPI document (``GET
/openapi.json``) field for field; ``tests/test_openapi_drift.py`` fails when
they differ. Lists are tuples and the objects are frozen: a verification
result may be shared with the cache. Fields the server adds later are
ignored when decoding, so an older SDK keeps working against a newer server.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
import typing
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = [
    "Account",
    "AccountList",
    "AccountPolicy",
    "CreatedKey",
    "CreditRefill",
    "Credits",
    "Decision",
    "Identity",
    "Key",
    "KeyList",
    "KeyRevocation",
    "RateLimit",
    "RateLimitStatus",
    "Role",
    "User",
    "UserList",
    "VerifyResult",
]


class Role:
    """Key roles (the ``role`` of keys and identities)."""

    ROOT = "root"
    ACCOUNT_ADMIN = "account_admin"
    USER = "user"


class Decision:
    """Verification outcomes (``VerifyResult.code``)."""

    VALID = "VALID"
    MALFORMED = "MALFORMED"
    NOT_FOUND = "NOT_FOUND"
    DISABLED = "DISABLED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    IP_BLOCKED = "IP_BLOCKED"
    IP_NOT_ALLOWED = "IP_NOT_ALLOWED"
    INSUFFICIENT_PERMISSIONS = "INSUFFICIENT_PERMISSIONS"
    WRONG_ENVIRONMENT = "WRONG_ENVIRONMENT"
    RATE_LIMITED = "RATE_LIMITED"
    USAGE_EXCEEDED = "USAGE_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"

    #: Every code, in the server's order.
    ALL: Tuple[str, ...] = (
        VALID, MALFORMED, NOT_FOUND, DISABLED, REVOKED, EXPIRED, IP_BLOCKED, IP_NOT_ALLOWED,
        INSUFFICIENT_PERMISSIONS, WRONG_ENVIRONMENT, RATE_LIMITED, USAGE_EXCEEDED, UNAVAILABLE,
    )
    #: Codes meaning the credential itself was not accepted (HTTP 401).
    UNAUTHENTICATED: Tuple[str, ...] = (MALFORMED, NOT_FOUND, DISABLED, REVOKED, EXPIRED)


def _cut(p: str) -> "tuple[str, str, str]":
    """The first segment of p, what follows its separator, and the separator ("" for the last)."""
    for i, c in enumerate(p):
        if c in ":.":
            return p[:i], p[i + 1:], c
    return p, "", ""


def covers(held: str, wanted: str) -> bool:
    """Whether the held permission covers wanted, segment by segment as keyward matches them.

    Segments are separated by ``:`` or ``.``; a ``*`` segment stands for any
    one segment, and as the last segment for any rest of one segment or more:
    ``memories:*`` covers ``memories:read`` and ``memories:notes.read``, not
    ``memories``; ``*`` covers everything.
    """
    h, g = held, wanted
    while True:
        hs, hrest, hsep = _cut(h)
        gs, grest, gsep = _cut(g)
        if hs == "*" and not hsep:
            return True
        if gs == "*" and not gsep:
            return False
        if (hs != "*" and hs != gs) or hsep != gsep:
            return False
        if not hsep:
            return True
        h, g = hrest, grest


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a key is: what a protected handler receives."""

    key_id: str
    role: str
    account_id: Optional[str] = None
    user_id: Optional[str] = None
    #: The external id of the key's user (your own id for it, such as your
    #: identity provider's subject), when it has one.
    external_id: Optional[str] = None
    #: The agent named by the request (``X-Keyward-Agent``); grants nothing.
    agent: Optional[str] = None
    #: What the key holds: its own permissions and its named roles'.
    permissions: Tuple[str, ...] = ()
    #: The key's named roles (``require_role`` may name one).
    roles: Tuple[str, ...] = ()
    #: When the key stops working: its expiry or a rotation's grace end.
    expires_at: Optional[_dt.datetime] = None
    #: A rotated key in its grace window: it may not change anything.
    retiring: bool = False
    #: The key's environment, such as ``live`` or ``test``.
    environment: Optional[str] = None

    def has_permissions(self, *permissions: str) -> bool:
        """Whether the key holds every one of permissions (a root key holds all).

        A held wildcard covers as keyward's does: ``memories:*`` holds
        ``memories:read`` (see ``covers``).
        """
        if self.role == Role.ROOT:
            return True
        return all(any(covers(h, p) for h in self.permissions) for p in permissions)


@dataclasses.dataclass(frozen=True)
class RateLimitStatus:
    """The state of one rate limit after a verification counted against it."""

    name: str
    limit: int
    #: A Go duration such as ``1m0s``.
    window: str
    allowed: bool
    remaining: int
    reset_ms: int
    retry_after_ms: int = 0
    #: The limit's level (``key``, ``user`` or ``account``), when the key's
    #: user or account has shared limits.
    level: Optional[str] = None
    #: Whether the limit is manual: counted only because the verification
    #: named it (``manual_limits``).
    manual: bool = False


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """keyward's answer about a key: ``valid`` and, when not, ``code`` says why.

    ``meta``, ``secret_meta`` and ``account_secret_meta`` are shared with the
    cache: read them, do not change them.
    """

    valid: bool
    code: str
    expires_at: Optional[_dt.datetime] = None
    key_id: Optional[str] = None
    #: The key's environment, whenever the key was found.
    environment: Optional[str] = None
    identity: Optional[Identity] = None
    permissions: Tuple[str, ...] = ()
    meta: Optional[Dict[str, Any]] = None
    rate_limits: Tuple[RateLimitStatus, ...] = ()
    credits_remaining: Optional[int] = None
    #: The key's secret metadata, in clear: only for callers holding
    #: ``keys:verify_secrets`` (or root). Never shown by ``repr``.
    secret_meta: Optional[Dict[str, Any]] = dataclasses.field(default=None, repr=False)
    #: The secret metadata of the key's account, on the same terms.
    account_secret_meta: Optional[Dict[str, Any]] = dataclasses.field(default=None, repr=False)
    #: With INSUFFICIENT_PERMISSIONS: the permissions the key lacks (of
    #: the permissions asked, then of the query).
    missing_permissions: Tuple[str, ...] = ()
    #: With INSUFFICIENT_PERMISSIONS: the role asked, when the key's is below it.
    missing_role: Optional[str] = None
    #: With RATE_LIMITED or USAGE_EXCEEDED: the level whose limits or
    #: credits refused the call: ``key``, ``user`` or ``account`` (the last
    #: two shared by all the keys of the user or account).
    limit_level: Optional[str] = None

    @property
    def metered(self) -> bool:
        """Whether the key has rate limits or credits: every request must reach keyward."""
        return bool(self.rate_limits) or self.credits_remaining is not None


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """A named limit: ``limit`` units of cost per ``window`` (a Go duration: ``1m``, ``24h``)."""

    name: str
    limit: int
    window: str
    #: A manual limit counts only when a verification names it.
    manual: bool = False


@dataclasses.dataclass(frozen=True)
class CreditRefill:
    """Credits are raised to ``amount`` every ``interval`` (a Go duration), or
    monthly on ``day`` (1 to 31, midnight UTC; the month's last day when it
    is shorter)."""

    amount: int
    interval: Optional[str] = None
    day: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Credits:
    """A key's quota."""

    remaining: int
    refill: Optional[CreditRefill] = None
    refilled_at: Optional[_dt.datetime] = None


@dataclasses.dataclass(frozen=True)
class Meter:
    """The rate limits and credits shared by all the keys of a user or an account."""

    id: str
    #: ``user`` or ``account``.
    level: str
    account_id: str
    updated_at: _dt.datetime
    rate_limits: Tuple[RateLimit, ...] = ()
    #: Live on a read.
    credits: Optional[Credits] = None


@dataclasses.dataclass(frozen=True)
class PortalLink:
    """A new end-user portal session with its single-use link, shown once.

    Send the customer's browser to ``url`` before ``link_expires_at``.
    """

    id: str
    account_id: str
    user_id: str
    external_id: str
    return_url: str
    #: How long the session lasts once the link is used (a Go duration).
    session_ttl: str
    #: The key that created the session.
    created_by: str
    created_at: _dt.datetime
    link_expires_at: _dt.datetime
    url: str
    permissions: Tuple[str, ...] = ()
    environments: Tuple[str, ...] = ()
    started_at: Optional[_dt.datetime] = None
    expires_at: Optional[_dt.datetime] = None


@dataclasses.dataclass(frozen=True)
class PortalBranding:
    """How an account's portal pages look: colours are ``#rrggbb``; empty means the default."""

    account_id: str
    title: str = ""
    accent_color: str = ""
    background_color: str = ""
    text_color: str = ""
    updated_at: Optional[_dt.datetime] = None


@dataclasses.dataclass(frozen=True)
class AccountPolicy:
    """What an account's keys may do beyond their role."""

    users_may_mint_keys: bool = True
    admins_may_mint_admin_keys: bool = True


@dataclasses.dataclass(frozen=True)
class Account:
    """A tenant."""

    id: str
    name: str
    disabled: bool
    created_at: _dt.datetime
    updated_at: _dt.datetime
    policy: AccountPolicy
    key_prefix: Optional[str] = None
    rate_limits: Tuple[RateLimit, ...] = ()
    has_secret_meta: bool = False


@dataclasses.dataclass(frozen=True)
class AccountList:
    """One page of accounts; pass ``next`` as ``after`` for the following one."""

    items: Tuple[Account, ...]
    next: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class User:
    """A person or service inside an account."""

    id: str
    account_id: str
    name: str
    created_at: _dt.datetime
    #: When the user was last changed.
    updated_at: _dt.datetime
    #: Your own id for the user, unique in its account; verify returns it
    #: in the identity of the user's keys.
    external_id: Optional[str] = None
    #: Inherited by the user's keys: verify returns it with each key's own
    #: meta laid over it, field by field.
    meta: Optional[Dict[str, Any]] = None
    #: The user has secret metadata, which its keys inherit (only verify
    #: returns the value).
    has_secret_meta: bool = False


@dataclasses.dataclass(frozen=True)
class UserList:
    """One page of users."""

    items: Tuple[User, ...]
    next: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Key:
    """An issued key, never its secret."""

    id: str
    start: str
    prefix: str
    name: str
    role: str
    disabled: bool
    created_at: _dt.datetime
    updated_at: _dt.datetime
    permissions: Tuple[str, ...] = ()
    #: Named roles of the account the key holds besides its permissions.
    roles: Tuple[str, ...] = ()
    expires_at: Optional[_dt.datetime] = None
    account_id: Optional[str] = None
    user_id: Optional[str] = None
    meta: Optional[Dict[str, Any]] = None
    has_secret_meta: bool = False
    revoked_at: Optional[_dt.datetime] = None
    rotated_from: Optional[str] = None
    grace_until: Optional[_dt.datetime] = None
    created_by: Optional[str] = None
    last_used_at: Optional[_dt.datetime] = None
    ip_allow: Tuple[str, ...] = ()
    rate_limits: Tuple[RateLimit, ...] = ()
    credits: Optional[Credits] = None
    meter_id: Optional[str] = None
    #: The key's environment (``live`` unless created in another): it
    #: picked the key's prefix and never changes.
    environment: str = "live"


@dataclasses.dataclass(frozen=True)
class CreatedKey(Key):
    """A new key with its secret ``key``, shown this once: keyward keeps only a hash."""

    key: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(frozen=True)
class KeyRevocation(Key):
    """A revoked key and, for a cascade, the ids revoked with it."""

    cascaded: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class KeyList:
    """One page of keys."""

    items: Tuple[Key, ...]
    next: Optional[str] = None


# Decoding -----------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)


def parse_time(s: str) -> _dt.datetime:
    """Parses an RFC 3339 time as Go writes it (up to nanoseconds) into an aware datetime."""
    m = _RFC3339.match(s)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {s!r}")
    frac = (m.group(7) or "")[:6].ljust(6, "0")
    if m.group(8):
        tz = _dt.timezone.utc
    else:
        off = _dt.timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        tz = _dt.timezone(-off if m.group(9) == "-" else off)
    return _dt.datetime(
        int(m.group(1)), int(m.group(2)), int(m.group(3)),
        int(m.group(4)), int(m.group(5)), int(m.group(6)), int(frac), tzinfo=tz,
    )


def format_time(t: _dt.datetime) -> str:
    """Formats an aware datetime as RFC 3339 for the API (naive means UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.isoformat().replace("+00:00", "Z")


_decoders: Dict[type, Callable[[Any], Any]] = {}


def decode(cls: type, data: Any) -> Any:
    """Builds a ``cls`` (one of this module's dataclasses) from decoded JSON."""
    dec = _decoders.get(cls)
    if dec is None:
        dec = _decoders[cls] = _dataclass_decoder(cls)
    return dec(data)


def _dataclass_decoder(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, _decoder_of(hints[f.name])) for f in dataclasses.fields(cls)]

    def dec(data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: want a JSON object, got {type(data).__name__}")
        kw = {}
        for name, conv in fields:
            v = data.get(name)
            if v is not None:
                kw[name] = conv(v)
        return cls(**kw)

    return dec


def _decoder_of(tp: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union:  # Optional[X]: None never reaches a decoder
        return _decoder_of(next(a for a in args if a is not type(None)))
    if origin is tuple:
        item = _decoder_of(args[0])
        return lambda v: tuple(item(x) for x in v)
    if origin is dict or tp is Any:
        return _identity
    if tp is _dt.datetime:
        return parse_time
    if dataclasses.is_dataclass(tp):
        return lambda v: decode(tp, v)
    if tp in (str, int, bool):
        return _checked(tp)
    raise TypeError(f"no decoder for {tp!r}")


def _identity(v: Any) -> Any:
    return v


def _checked(tp: type) -> Callable[[Any], Any]:
    def conv(v: Any) -> Any:
        if type(v) is not tp:
            raise ValueError(f"want a JSON {tp.__name__}, got {v!r}")
        return v

    return conv
