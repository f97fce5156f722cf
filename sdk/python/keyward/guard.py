"""What every framework integration does to a request, without any framework.

A ``Guard`` reads the key as keyward reads its own (``Authorization: Bearer``
or ``X-API-Key``, never the query string), asks a verifier and turns the
answer into the caller's ``Identity`` or a ``Denial``: the refusals, statuses
and problem+json bodies of the Go middleware (docs/sdk.md, "Refusals").
It fails closed: when keyward cannot be reached and the key is not cached
the request is refused with 503 and ``Retry-After``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import ipaddress
import json
import logging
import math
import re
import threading
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from . import _types as t
from ._errors import ConfigError, ErrorCode, KeywardError
from .cache import AsyncCachedVerifier, CachedVerifier, Needs, _Cache, _tail
from .client import AsyncClient, Client

__all__ = ["DEFAULT_CHALLENGE", "Denial", "Guard", "Request"]

log = logging.getLogger("keyward")

#: The challenge sent with every 401, as keyward's own.
DEFAULT_CHALLENGE = 'Bearer realm="keyward"'
HEADER_AGENT = "X-Keyward-Agent"
MAX_AGENT_LEN = 200
PROBLEM_CONTENT_TYPE = "application/problem+json"

ERR_NO_KEY = 'no API key: send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"'
ERR_AMBIGUOUS = "Authorization and X-API-Key carry different keys: send one"
ERR_BAD_AUTHORIZATION = 'Authorization must be "Bearer <key>"'
ERR_BAD_AGENT = "X-Keyward-Agent must be printable text of at most 200 bytes"
ERR_AGENT_CONFLICT = "the agent headers name different agents: send the agent in one header"
ERR_INVALID_KEY = "invalid API key"
ERR_UNAVAILABLE = "API keys cannot be checked right now: try again shortly"
ERR_PERMISSIONS = "the API key lacks the required permissions"

_TITLES = {
    ErrorCode.INVALID: "Invalid request",
    ErrorCode.UNAUTHORIZED: "Unauthorized",
    ErrorCode.FORBIDDEN: "Forbidden",
    ErrorCode.RATE_LIMITED: "Rate limited",
    ErrorCode.UNAVAILABLE: "Unavailable",
}

#: Headers of a request: every value of a header name (case-insensitive).
HeaderGetter = Callable[[str], List[str]]


@dataclasses.dataclass
class Request:
    """What a guard reads of an HTTP request."""

    #: Returns every value of a header, by case-insensitive name.
    headers: HeaderGetter
    #: The path, for exempt paths and the problem's ``instance``.
    path: str
    #: The peer's address (the socket's, not a header), when known.
    peer: Optional[str] = None
    method: str = "GET"


@dataclasses.dataclass
class Denial(Exception):
    """A refused request: its status, the error code and a detail safe to show the client.

    ``decision`` and ``key_id`` (when keyward found the key) and ``cause``
    (why no decision could be made) are for logs, never for the client.
    """

    status: int
    code: str
    detail: str
    decision: Optional[str] = None
    key_id: Optional[str] = None
    cause: Optional[BaseException] = None
    rate_limits: Tuple[t.RateLimitStatus, ...] = ()
    challenge: str = DEFAULT_CHALLENGE
    #: On a 429, the level whose limits or credits refused the request
    #: (``key``, ``user`` or ``account``); the problem shows it as
    #: ``limit_level``.
    limit_level: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.detail}"

    @property
    def title(self) -> str:
        """The problem's title, as keyward's API gives it for the code."""
        return _TITLES.get(self.code, "Error")

    def problem(self, instance: str) -> dict:
        """The RFC 9457 problem body in the shape of keyward's own API errors."""
        p = {
            "type": "urn:keyward:error:" + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "instance": instance,
        }
        if self.limit_level:
            p["limit_level"] = self.limit_level
        return p

    def body(self, instance: str) -> bytes:
        """``problem(instance)`` encoded."""
        return json.dumps(self.problem(instance), separators=(",", ":")).encode()

    def headers(self) -> List[Tuple[str, str]]:
        """The headers every refusal carries, besides its Content-Type.

        ``Cache-Control: no-store``; ``WWW-Authenticate`` on 401; the RateLimit
        fields and ``Retry-After`` on a 429 from a rate limit; ``Retry-After: 1``
        on 503.
        """
        h = [("Cache-Control", "no-store")]
        if self.status == 401:
            h.append(("WWW-Authenticate", self.challenge))
        elif self.status == 429:
            h.extend(rate_limit_headers(self.rate_limits))
        elif self.status == 503:
            h.append(("Retry-After", "1"))
        return h

    def problem_headers(self) -> List[Tuple[str, str]]:
        """``headers()`` with the problem's Content-Type and ``X-Content-Type-Options``."""
        return self.headers() + [("Content-Type", PROBLEM_CONTENT_TYPE), ("X-Content-Type-Options", "nosniff")]


# Rate limit fields ---------------------------------------------------------

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(s: str) -> float:
    """The length of a Go duration (``1m0s``, ``24h``, ``1.5s``) in seconds; 0 for ``0`` or garbage."""
    total, pos = 0.0, 0
    for m in _GO_DURATION.finditer(s):
        if m.start() != pos:
            return 0.0
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return total if pos == len(s) else 0.0


def _sf_int(v: float) -> int:
    return int(min(max(v, 0), 999_999_999_999_999))


def _sf_string(s: str) -> str:
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c < " " or c > "~":
            out.append("?")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def rate_limit_headers(statuses: Sequence[t.RateLimitStatus]) -> List[Tuple[str, str]]:
    """The ``RateLimit-Policy``, ``RateLimit`` and (when a limit denies) ``Retry-After`` fields, as keyward sets them."""
    if not statuses:
        return []
    policy = ", ".join(
        f"{_sf_string(s.name)};q={_sf_int(s.limit)};w={_sf_int(math.ceil(go_duration_seconds(s.window)))}"
        for s in statuses
    )
    state = ", ".join(
        f"{_sf_string(s.name)};r={_sf_int(s.remaining)};t={_sf_int(math.ceil(s.reset_ms / 1000))}" for s in statuses
    )
    h = [("RateLimit-Policy", policy), ("RateLimit", state)]
    denying = [s for s in statuses if not s.allowed]
    if denying:
        wait = max(math.ceil(s.retry_after_ms / 1000) for s in denying)
        h.append(("Retry-After", str(max(wait, 1))))
    return h


# Reading the request -------------------------------------------------------


def read_key(headers: HeaderGetter) -> str:
    """The key of a request, from ``Authorization: Bearer`` or ``X-API-Key``; raises ``Denial`` (401)."""
    auths, keys = headers("authorization"), headers("x-api-key")
    if len(auths) > 1 or len(keys) > 1:
        raise Denial(401, ErrorCode.UNAUTHORIZED, ERR_AMBIGUOUS)
    bearer = key = ""
    if auths:
        scheme, _, token = auths[0].strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Denial(401, ErrorCode.UNAUTHORIZED, ERR_BAD_AUTHORIZATION)
        bearer = token
    if keys:
        key = keys[0].strip()
        if not key:
            raise Denial(401, ErrorCode.UNAUTHORIZED, ERR_NO_KEY)
    if bearer and key and bearer != key:
        raise Denial(401, ErrorCode.UNAUTHORIZED, ERR_AMBIGUOUS)
    if bearer or key:
        return bearer or key
    raise Denial(401, ErrorCode.UNAUTHORIZED, ERR_NO_KEY)


def read_agent(headers: HeaderGetter, names: Sequence[str] = (HEADER_AGENT,)) -> Optional[str]:
    """The agent of a request, from ``X-Keyward-Agent`` and the headers ``names`` (aliases such as
    ``X-OpenViking-Agent``).

    Each header is checked as keyward checks its own; headers naming different agents are refused,
    as keyward refuses them. Raises ``Denial`` (400).
    """
    agent: Optional[str] = None
    seen = set()
    for name in (HEADER_AGENT, *names):
        lower = name.lower()
        if lower in seen:
            continue
        seen.add(lower)
        a = _agent_in(headers(lower))
        if a is None:
            continue
        if agent is not None and a != agent:
            raise Denial(400, ErrorCode.INVALID, ERR_AGENT_CONFLICT)
        agent = a
    return agent


def _agent_in(vs: Sequence[str]) -> Optional[str]:
    """The agent in the values of one header: None when absent or empty; raises ``Denial``."""
    if not vs:
        return None
    if len(vs) > 1:
        raise Denial(400, ErrorCode.INVALID, ERR_BAD_AGENT)
    a = vs[0].strip()
    # Servers hand header values over as latin-1 text, one character a byte.
    try:
        raw = a.encode("latin-1")
    except UnicodeEncodeError:
        raw = a.encode("utf-8", "surrogatepass")
    try:
        a = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Denial(400, ErrorCode.INVALID, ERR_BAD_AGENT) from None
    if len(raw) > MAX_AGENT_LEN or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in a):
        raise Denial(400, ErrorCode.INVALID, ERR_BAD_AGENT)
    return a or None


Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


@functools.lru_cache(maxsize=4096)
def parse_address(s: str) -> Optional[Address]:
    """One address: ``ip``, ``ip:port``, ``[ipv6]`` or ``[ipv6]:port``, unmapped and without its zone."""
    s = s.strip()
    host = s
    if s.startswith("["):
        end = s.find("]")
        if end < 0 or (end + 1 < len(s) and not re.fullmatch(r":\d+", s[end + 1:])):
            return None
        host = s[1:end]
        if ":" not in host:
            return None
    elif s.count(":") == 1:
        host, port = s.split(":")
        if not port.isdigit():
            return None
    host = host.split("%")[0]
    try:
        a = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def client_address(peer: Optional[str], xff: Sequence[str], trusted: Sequence[Network]) -> Optional[Address]:
    """The client of a request, believing ``X-Forwarded-For`` only from trusted proxies (keyward's rule)."""
    ip = parse_address(peer) if peer else None
    if ip is None or not _trusted(ip, trusted):
        return ip
    for line in reversed(xff):
        for elem in reversed(line.split(",")):
            elem = elem.strip(" \t")
            if not elem:
                continue
            hop = parse_address(elem)
            if hop is None:
                return ip
            ip = hop
            if not _trusted(ip, trusted):
                return ip
    return ip


@functools.lru_cache(maxsize=4096)
def _peer_ip(peer: str) -> Optional[str]:
    """The client IP of a request from peer when no proxy is trusted."""
    ip = parse_address(peer)
    return str(ip) if ip else None


def _trusted(a: Address, trusted: Sequence[Network]) -> bool:
    return any(a.version == n.version and a in n for n in trusted)


def _is_clean(p: str) -> bool:
    """Whether p is absolute without empty, "." or ".." segments (a trailing slash allowed)."""
    if not p.startswith("/"):
        return False
    segs = p[1:].split("/")
    for i, s in enumerate(segs):
        if s == "" and i == len(segs) - 1:
            continue
        if s in ("", ".", ".."):
            return False
    return True


# The guard -------------------------------------------------------------------


def identity_of(res: t.VerifyResult, agent: Optional[str]) -> t.Identity:
    """The identity of a valid result for a request by agent."""
    ident = res.identity
    if ident is None:
        ident = t.Identity(key_id=res.key_id or "", role="", permissions=res.permissions, expires_at=res.expires_at)
    elif not ident.key_id:
        ident = dataclasses.replace(ident, key_id=res.key_id or "")
    if ident.agent != agent:
        ident = dataclasses.replace(ident, agent=agent)
    return ident


def denial_of(res: t.VerifyResult) -> Denial:
    """The refusal of a result that is not VALID, as keyward maps it for its own routes."""
    c = res.code
    d = Denial(503, ErrorCode.UNAVAILABLE, ERR_UNAVAILABLE, decision=c, key_id=res.key_id)
    if c in t.Decision.UNAUTHENTICATED:
        d.status, d.code, d.detail = 401, ErrorCode.UNAUTHORIZED, ERR_INVALID_KEY
    elif c == t.Decision.INSUFFICIENT_PERMISSIONS:
        d.status, d.code, d.detail = 403, ErrorCode.FORBIDDEN, ERR_PERMISSIONS
    elif c == t.Decision.WRONG_ENVIRONMENT:
        d.status, d.code, d.detail = 403, ErrorCode.FORBIDDEN, "the API key is for another environment: use a key of this service's environment"
    elif c in (t.Decision.IP_BLOCKED, t.Decision.IP_NOT_ALLOWED):
        d.status, d.code, d.detail = 403, ErrorCode.FORBIDDEN, "requests from this address are not allowed"
    elif c == t.Decision.RATE_LIMITED:
        d.status, d.code, d.detail = 429, ErrorCode.RATE_LIMITED, "rate limit exceeded: slow down"
        d.rate_limits, d.limit_level = res.rate_limits, res.limit_level
    elif c == t.Decision.USAGE_EXCEEDED:
        d.status, d.code, d.detail = 429, ErrorCode.RATE_LIMITED, "usage quota exhausted"
        d.rate_limits, d.limit_level = res.rate_limits, res.limit_level
    elif c != t.Decision.UNAVAILABLE:
        # An unknown code, or VALID with valid false: fail closed.
        d.cause = KeywardError(ErrorCode.INTERNAL, f"the verifier answered code {c!r} with valid={res.valid}")
    return d


@dataclasses.dataclass
class Passed:
    """A request the guard let through: ``identity`` is None on an exempt path."""

    identity: Optional[t.Identity] = None
    result: Optional[t.VerifyResult] = None

    def headers(self) -> List[Tuple[str, str]]:
        """The RateLimit fields of a key with rate limits, for the handler's response."""
        return rate_limit_headers(self.result.rate_limits) if self.result is not None else []


Verifier = Any  # anything with verify_key(key, *, permissions, agent, ip): a (cached) client, sync or async

_default_lock = threading.Lock()
_defaults: dict = {}


def default_verifier(asynchronous: bool) -> Verifier:
    """The process's cached verifier configured from ``KEYWARD_URL`` and ``KEYWARD_API_KEY``, made on first use."""
    v = _defaults.get(asynchronous)
    if v is not None:
        return v
    with _default_lock:
        v = _defaults.get(asynchronous)
        if v is None:
            c = Client()
            if c._api_key is None:
                raise ConfigError(
                    "keyward: no verifier key: set KEYWARD_API_KEY to a keyward key holding keys:verify "
                    "(and KEYWARD_URL to keyward's URL), or pass verifier="
                )
            v = AsyncCachedVerifier(AsyncClient(c.url, c._api_key, agent=c.agent)) if asynchronous else CachedVerifier(c)
            _defaults[asynchronous] = v
        return v


class Guard:
    """Admits a request only with a key the verifier accepts, holding ``permissions``.

    ``verifier`` is an ``AsyncCachedVerifier`` for ``acheck`` or a
    ``CachedVerifier`` for ``check`` (or a bare ``AsyncClient``/``Client``, to
    reach keyward on every request); None makes one from the environment on
    first use. ``exempt`` paths pass without a key: an exact
    path, or a prefix ending in ``*``; a path that is not clean
    (``/a/../b``) is never exempt. ``exempt_func`` exempts by anything else
    (say, OPTIONS requests). ``trusted_proxies`` are the networks whose
    ``X-Forwarded-For`` is believed for the client IP sent to keyward.
    ``challenge`` is the ``WWW-Authenticate`` value of a 401 (``'ApiKey
    realm="notes"'``). ``agent_headers`` name headers read as the agent
    besides ``X-Keyward-Agent``, which is always read (a service whose
    clients send ``X-OpenViking-Agent`` adds it); headers naming different
    agents are refused with 400, as keyward refuses them.
    """

    def __init__(
        self,
        verifier: Verifier = None,
        *,
        permissions: Iterable[str] = (),
        exempt: Iterable[str] = (),
        exempt_func: Optional[Callable[[Request], bool]] = None,
        trusted_proxies: Iterable[str] = (),
        challenge: str = DEFAULT_CHALLENGE,
        agent_headers: Iterable[str] = (HEADER_AGENT,),
        query: Optional[str] = None,
        require_role: Optional[str] = None,
        environment: Optional[str] = None,
    ) -> None:
        self.permissions = tuple(permissions)
        #: The query, least role and environment every key must meet too.
        self.needs = Needs(query, require_role, environment)
        self._tail = _tail(self.permissions or None, None, None, self.needs)
        self.agent_headers = tuple(agent_headers)
        for h in self.agent_headers:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", h):
                raise ConfigError(f"agent header {h!r} is not a header name: use letters, digits and '-', e.g. X-OpenViking-Agent")
            if h.lower() in ("authorization", "x-api-key"):
                raise ConfigError(f"agent header {h!r} is a credential header: pick another name")
        self.exempt = tuple(exempt)
        for p in self.exempt:
            if not p.startswith("/"):
                raise ConfigError(f"exempt path {p!r} must start with /")
        self.exempt_func = exempt_func
        self.trusted = tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)
        self.challenge = challenge
        self._verifier = verifier
        #: The lowercase names, as bytes, of every header the guard reads.
        self.raw_header_names = frozenset(
            n.lower().encode("latin-1")
            for n in ("authorization", "x-api-key", HEADER_AGENT, *self.agent_headers)
            + (("x-forwarded-for",) if self.trusted else ())
        )

    def verifier(self, asynchronous: bool) -> Verifier:
        """The verifier, the environment's default when none was given."""
        return self._verifier if self._verifier is not None else default_verifier(asynchronous)

    def is_exempt(self, r: Request) -> bool:
        """Whether r may pass without a key."""
        if self.exempt_func is not None and self.exempt_func(r):
            return True
        return self._exempt_path(r.path)

    def _exempt_path(self, path: str) -> bool:
        """Whether path is one of the exempt paths."""
        if not self.exempt or not _is_clean(path):
            return False
        for e in self.exempt:
            if e.endswith("*"):
                if path.startswith(e[:-1]):
                    return True
            elif path == e:
                return True
        return False

    def cached(self, key: str, peer: Optional[str], path: str) -> Optional[Passed]:
        """What ``acheck`` decides for a request from peer that sends ``key`` and no agent nor
        ``X-Forwarded-For``, when the verifier's cache holds a VALID answer for it.

        The shortcut of the common request: no ``Request`` is built and no
        header read twice. None when it cannot answer (a miss, an exempt path
        or ``exempt_func``, the environment not the one required): the caller
        then asks ``acheck``, which decides everything else (no verifier
        configured included).
        """
        if self.exempt_func is not None or (self.exempt and self._exempt_path(path)):
            return None
        v = self._verifier
        if v is None:
            v = _defaults.get(True)
            if v is None:
                return None  # acheck makes the default verifier, or refuses with 503 when it cannot
        if not isinstance(v, _Cache):
            return None
        res = v.hit(key, _peer_ip(peer) if peer else None, self._tail)
        if res is None or (self.needs.environment is not None and res.environment != self.needs.environment):
            return None
        ident = res.identity
        if ident is None or not ident.key_id:
            ident = identity_of(res, None)
        return Passed(ident, res)

    def _prepare(self, r: Request) -> Tuple[str, Optional[str], Optional[str]]:
        """The key, agent and client IP of r; raises ``Denial``."""
        key = read_key(r.headers)
        agent = read_agent(r.headers, self.agent_headers)
        if self.trusted:
            ip = client_address(r.peer, r.headers("x-forwarded-for"), self.trusted)
            return key, agent, str(ip) if ip else None
        return key, agent, _peer_ip(r.peer) if r.peer else None

    def _ask(self, v: Verifier, key: str, agent: Optional[str], ip: Optional[str]) -> Any:
        """v's answer from its cache when it holds one, else its verify_key (a result or an awaitable)."""
        perms = self.permissions or None
        if isinstance(v, _Cache):
            res = v.lookup(key, perms, ip, agent, self.needs)
            if res is not None:
                return res
        if self.needs.part:
            return v.verify_key(key, permissions=perms, agent=agent, ip=ip, **self.needs.fields())
        return v.verify_key(key, permissions=perms, agent=agent, ip=ip)

    def _decide(self, r: Request, res: Any, agent: Optional[str]) -> Passed:
        if not isinstance(res, t.VerifyResult):
            raise self._unavailable(r, KeywardError(ErrorCode.INTERNAL, "the verifier returned no result"))
        if not res.valid or res.code != t.Decision.VALID:
            d = denial_of(res)
            if d.cause is not None:
                raise self._unavailable(r, d.cause)
            raise self._refused(r, d)
        env = self.needs.environment
        if env is not None and res.environment != env:
            # A verifier that answered without the environment asked for
            # (one that knows none) fails closed, as keyward's middleware does.
            raise self._refused(r, denial_of(dataclasses.replace(res, valid=False, code=t.Decision.WRONG_ENVIRONMENT)))
        return Passed(identity_of(res, agent), res)

    def _unavailable(self, r: Request, cause: BaseException) -> Denial:
        log.warning("API key could not be checked: %s", cause, extra={"method": r.method})
        return self._refused(r, Denial(503, ErrorCode.UNAVAILABLE, ERR_UNAVAILABLE, cause=cause))

    def _refused(self, r: Request, d: Denial) -> Denial:
        d.challenge = self.challenge
        if log.isEnabledFor(logging.DEBUG):
            # The method, never the path: a path can hold anything a client typed, a key included.
            log.debug("request refused: method=%s status=%d decision=%s key_id=%s",
                      r.method, d.status, d.decision, d.key_id)
        return d

    def check(self, r: Request) -> Passed:
        """Checks r with a blocking verifier; raises ``Denial``."""
        if self.is_exempt(r):
            return Passed()
        try:
            key, agent, ip = self._prepare(r)
        except Denial as d:
            raise self._refused(r, d) from None
        try:
            res = self._ask(self.verifier(False), key, agent, ip)
        except (KeywardError, ConfigError, OSError) as e:
            raise self._unavailable(r, e) from None
        if inspect.isawaitable(res):
            getattr(res, "close", lambda: None)()
            raise ConfigError("Guard.check needs a blocking verifier (CachedVerifier or Client): use acheck")
        return self._decide(r, res, agent)

    async def acheck(self, r: Request) -> Passed:
        """Checks r with an asyncio verifier (or a blocking one); raises ``Denial``."""
        if self.is_exempt(r):
            return Passed()
        try:
            key, agent, ip = self._prepare(r)
        except Denial as d:
            raise self._refused(r, d) from None
        try:
            res: Union[t.VerifyResult, Awaitable[t.VerifyResult]] = self._ask(self.verifier(True), key, agent, ip)
            if not isinstance(res, t.VerifyResult) and inspect.isawaitable(res):
                res = await res
        except (KeywardError, ConfigError, OSError) as e:
            raise self._unavailable(r, e) from None
        return self._decide(r, res, agent)

    def authorize(self, r: Request, identity: Optional[t.Identity], permissions: Sequence[str]) -> None:
        """Checks an identity already verified for more permissions; raises ``Denial`` (401 without one, 403)."""
        if identity is None:
            raise self._refused(r, Denial(401, ErrorCode.UNAUTHORIZED, ERR_NO_KEY))
        if not identity.has_permissions(*permissions):
            raise self._refused(r, Denial(403, ErrorCode.FORBIDDEN, ERR_PERMISSIONS,
                                          decision=t.Decision.INSUFFICIENT_PERMISSIONS, key_id=identity.key_id))
