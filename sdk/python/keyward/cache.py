"""Verifiers that remember keyward's answers for a few seconds.

The semantics are the Go SDK's ``client.CachedVerifier`` (docs/sdk.md, "The
cached verifier"):

- a VALID answer is reused for ``ttl`` (never past the key's expiry), a
  refusal for ``negative_ttl``, each kind bounded in number;
- errors (keyward unreachable, the verifier's own key refused) are raised and
  never cached, nor are UNAVAILABLE, RATE_LIMITED and USAGE_EXCEEDED;
- a key with rate limits or credits is never answered from the cache: every
  request for it must reach keyward to be counted; for ``ttl`` the verifier
  remembers the key is metered and sends each of its requests on its own;
- concurrent requests for the same uncached key make one call;
- entries are keyed by a SHA-256 digest of the key, the permission and limit
  sets, the cost and the client IP, never by the raw key. The agent is not
  part of the entry: each answer carries the agent of its own request.

What the cache trades: a revoked key keeps passing for up to ``ttl``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

from . import _types as t
from ._errors import ErrorCode, KeywardError
from .client import AsyncClient, Client

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_NEGATIVE",
    "DEFAULT_NEGATIVE_TTL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TTL",
    "AsyncCachedVerifier",
    "CachedVerifier",
]

DEFAULT_TTL = 15.0
DEFAULT_NEGATIVE_TTL = 5.0
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_NEGATIVE = 10_000
DEFAULT_TIMEOUT = 5.0

# Bounds the entries looked at for an expired one to evict.
_EVICT_SCAN = 8

_VERIFY_ROUTE = Client.verify_key._keyward_route  # type: ignore[attr-defined]


class _Entry:
    __slots__ = ("result", "expires")

    def __init__(self, result: Optional[t.VerifyResult], expires: float) -> None:
        # result None marks a metered key, whose requests each go to keyward.
        self.result = result
        self.expires = expires


# The encoded permission and limit sets seen, bounded: a service asks for a
# few fixed sets, so their encoding is not redone on every request.
_set_parts: Dict[Tuple[str, ...], str] = {}
_MAX_SET_PARTS = 4096


def _set_part(items: Optional[Sequence[str]]) -> str:
    if not items:
        return "0|"
    key = items if type(items) is tuple else tuple(items)
    part = _set_parts.get(key)  # type: ignore[arg-type]
    if part is None:
        s = sorted(set(key))
        part = f"{len(s)}|" + "".join(f"{len(x)}:{x}" for x in s)
        if len(_set_parts) < _MAX_SET_PARTS:
            _set_parts[key] = part  # type: ignore[index]
    return part


class Needs:
    """What a verification asks of a key besides its permissions: a permission query, a least role, an environment.

    Made once (a guard makes it from its options); ``part`` is its share of
    the cache digest, so answers to different needs never mix.
    """

    __slots__ = ("query", "require_role", "environment", "part")

    def __init__(self, query: Optional[str] = None, require_role: Optional[str] = None,
                 environment: Optional[str] = None) -> None:
        self.query = query or None
        self.require_role = require_role or None
        self.environment = environment or None
        parts = (self.query or "", self.require_role or "", self.environment or "")
        self.part = "|" + "".join(f"{len(p)}:{p}" for p in parts) if any(parts) else ""

    def fields(self) -> Dict[str, Optional[str]]:
        """The request fields of these needs (None: not asked)."""
        return {"query": self.query, "require_role": self.require_role, "environment": self.environment}


def _tail(permissions: Optional[Sequence[str]], limits: Optional[Sequence[str]], cost: Optional[int],
          needs: "Optional[Needs]" = None) -> str:
    """What decides a verification besides the key and the client IP, encoded for ``_digest``.

    A guard asks the same every time: it encodes this once.
    """
    return f"{_set_part(permissions)}{_set_part(limits)}{cost or 0}{needs.part if needs is not None else ''}"


def _digest(key: str, ip: Optional[str], tail: str) -> bytes:
    """What decides a verification, hashed: each part length-prefixed or delimited, so no two requests share a digest."""
    ip = ip or ""
    s = f"{len(key)}:{key}|{len(ip)}:{ip}{tail}"
    try:
        b = s.encode()
    except UnicodeEncodeError:  # lone surrogates: not from HTTP, but still a distinct key
        b = s.encode("utf-8", "surrogatepass")
    return hashlib.sha256(b).digest()


def _for_agent(res: t.VerifyResult, agent: Optional[str]) -> t.VerifyResult:
    """res for a request by agent: the same object when the agent is already the one it carries."""
    ident = res.identity
    if ident is None or ident.agent == (agent or None):
        return res
    return dataclasses.replace(res, identity=dataclasses.replace(ident, agent=agent or None))


class _Cache:
    """The answers and the rules of what is kept, shared by both verifiers."""

    def __init__(self, ttl: float, negative_ttl: float, max_entries: int, max_negative: int,
                 timeout: float, clock: Optional[Callable[[], float]]) -> None:
        self.ttl = DEFAULT_TTL if ttl == 0 else ttl
        self.negative_ttl = DEFAULT_NEGATIVE_TTL if negative_ttl == 0 else negative_ttl
        self.max_entries = max_entries if max_entries > 0 else DEFAULT_MAX_ENTRIES
        self.max_negative = max_negative if max_negative > 0 else DEFAULT_MAX_NEGATIVE
        self.timeout = timeout if timeout > 0 else DEFAULT_TIMEOUT
        self.clock = clock or time.time
        self._lock = threading.Lock()
        self._pos: Dict[bytes, _Entry] = {}
        self._neg: Dict[bytes, _Entry] = {}

    def _cached(self, d: bytes, now: float) -> Tuple[bool, Optional[t.VerifyResult]]:
        """The unexpired answer for d (None for a metered key), and whether there is one. Under _lock."""
        for m in (self._pos, self._neg):
            e = m.get(d)
            if e is not None:
                if now < e.expires:
                    return True, e.result
                del m[d]
        return False, None

    def lookup(self, key: str, permissions: Optional[Sequence[str]] = None, ip: Optional[str] = None,
               agent: Optional[str] = None, needs: Optional[Needs] = None) -> Optional[t.VerifyResult]:
        """The cached answer to ``verify_key(key, permissions=, ip=, agent=)``, None when keyward must be asked.

        A guard asks it first: a cache hit then costs neither a coroutine nor
        the call's bookkeeping. None for a miss, an expired entry or a metered
        key (whose requests each go to keyward); ``verify_key`` handles those.
        """
        d = _digest(key, ip, _tail(permissions, None, None, needs))
        with self._lock:
            hit, res = self._cached(d, self.clock())
        return _for_agent(res, agent) if hit and res is not None else None

    def hit(self, key: str, ip: Optional[str], tail: str) -> Optional[t.VerifyResult]:
        """``lookup`` for a request without an agent, when it finds a VALID answer; None otherwise.

        ``tail`` is ``_tail(permissions, None, None, needs)``. A guard's
        shortcut for the common request: it reads without the lock (one dict
        read, atomic; entries are never changed once stored, and only VALID
        answers are kept in ``_pos``) and leaves expired entries to ``lookup``,
        which removes them.
        """
        e = self._pos.get(_digest(key, ip, tail))
        if e is None or e.result is None or self.clock() >= e.expires:
            return None
        res = e.result
        return res if res.identity is None or res.identity.agent is None else _for_agent(res, None)

    def _store(self, d: bytes, res: t.VerifyResult, start: float) -> None:
        """Caches res, asked for at start, if its kind is cacheable."""
        code = res.code
        with self._lock:
            if res.valid != (code == t.Decision.VALID):
                return  # inconsistent: the guard refuses it; do not keep it
            if res.metered:
                if self.ttl < 0:
                    return
                self._neg.pop(d, None)
                self._put(self._pos, self.max_entries, d, _Entry(None, start + self.ttl), start)
            elif code == t.Decision.VALID:
                if self.ttl < 0:
                    return
                exp = start + self.ttl
                if res.expires_at is not None:
                    exp = min(exp, res.expires_at.timestamp())
                self._put(self._pos, self.max_entries, d, _Entry(res, exp), start)
            elif code in (t.Decision.UNAVAILABLE, t.Decision.RATE_LIMITED, t.Decision.USAGE_EXCEEDED):
                return  # no decision, or limits that change by the second
            elif code in t.Decision.ALL:
                if self.negative_ttl < 0:
                    return
                self._pos.pop(d, None)
                self._put(self._neg, self.max_negative, d, _Entry(res, start + self.negative_ttl), start)

    @staticmethod
    def _put(m: Dict[bytes, _Entry], limit: int, d: bytes, e: _Entry, now: float) -> None:
        """Adds e to m, evicting first when m is full: an expired entry among the oldest few, else the oldest."""
        if d not in m and len(m) >= limit:
            victim = None
            for i, (k, old) in enumerate(m.items()):
                if victim is None:
                    victim = k
                if now >= old.expires:
                    victim = k
                    break
                if i + 1 == _EVICT_SCAN:
                    break
            del m[victim]  # type: ignore[arg-type]
        m[d] = e

    def __len__(self) -> int:
        """The number of entries held, answers and metered marks."""
        with self._lock:
            return len(self._pos) + len(self._neg)


def _checked(res: Optional[t.VerifyResult]) -> t.VerifyResult:
    if res is None:
        raise KeywardError(ErrorCode.INTERNAL, "the verifier returned neither a result nor an error")
    return res


class _SyncCall:
    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Optional[t.VerifyResult] = None
        self.error: Optional[BaseException] = None


class CachedVerifier(_Cache):
    """A blocking verifier in front of a ``Client`` whose key may verify keys (root, or ``keys:verify``).

    Safe to share between threads. ``ttl``/``negative_ttl``: seconds, 0 for
    the default, negative to not cache that kind. ``timeout`` bounds one call
    to keyward, shared by the requests waiting on it. ``clock`` (seconds since
    the epoch, default ``time.time``) is for tests.
    """

    def __init__(self, client: Optional[Client] = None, *, ttl: float = DEFAULT_TTL,
                 negative_ttl: float = DEFAULT_NEGATIVE_TTL, max_entries: int = DEFAULT_MAX_ENTRIES,
                 max_negative: int = DEFAULT_MAX_NEGATIVE, timeout: float = DEFAULT_TIMEOUT,
                 clock: Optional[Callable[[], float]] = None) -> None:
        super().__init__(ttl, negative_ttl, max_entries, max_negative, timeout, clock)
        self.client = client if client is not None else Client()
        self._calls: Dict[bytes, _SyncCall] = {}
        # Set by tests: runs (under the lock) each time a request starts
        # waiting on another's call.
        self._on_wait: Optional[Callable[[], None]] = None

    def verify_key(self, key: str, *, permissions: Optional[Sequence[str]] = None, agent: Optional[str] = None,
                   ip: Optional[str] = None, limits: Optional[Sequence[str]] = None,
                   cost: Optional[int] = None, query: Optional[str] = None, require_role: Optional[str] = None,
                   environment: Optional[str] = None) -> t.VerifyResult:
        """``Client.verify_key`` answered from the cache when it holds an answer; raises ``KeywardError``."""
        needs = Needs(query, require_role, environment)
        d = _digest(key, ip, _tail(permissions, limits, cost, needs))
        with self._lock:
            hit, res = self._cached(d, self.clock())
            if not hit:
                call = self._calls.get(d)
                own = call is None
                if own:
                    call = self._calls[d] = _SyncCall()
                elif self._on_wait is not None:
                    self._on_wait()
        if hit and res is not None:
            return _for_agent(res, agent)
        args = (key,)
        kw = dict(permissions=permissions, agent=agent, ip=ip, limits=limits, cost=cost, **needs.fields())
        if hit:
            return self._direct(d, args, kw)
        assert call is not None
        if own:
            self._fetch(d, call, args, kw)
        elif not call.done.wait(self.timeout):
            raise KeywardError(ErrorCode.UNAVAILABLE, "verifying the key: timed out waiting for keyward")
        if call.error is not None:
            raise call.error
        res = _checked(call.result)
        if not own and res.metered:
            # The shared call counted one request: this one must be counted too.
            return self._direct(d, args, kw)
        return _for_agent(res, agent)

    def _ask(self, args: tuple, kw: dict) -> t.VerifyResult:
        path, data = _VERIFY_ROUTE.request(args, kw)
        return _checked(self.client._send(_VERIFY_ROUTE.op, path, data, self.timeout))

    def _fetch(self, d: bytes, call: _SyncCall, args: tuple, kw: dict) -> None:
        start = self.clock()
        try:
            call.result = self._ask(args, kw)
            self._store(d, call.result, start)
        except BaseException as e:  # handed to every waiter
            call.error = e
        finally:
            with self._lock:
                self._calls.pop(d, None)
            call.done.set()

    def _direct(self, d: bytes, args: tuple, kw: dict) -> t.VerifyResult:
        """Asks keyward for this request alone, and caches the answer as a shared call does."""
        start = self.clock()
        res = self._ask(args, kw)
        self._store(d, res, start)
        return _for_agent(res, kw["agent"])


class AsyncCachedVerifier(_Cache):
    """The asyncio form of ``CachedVerifier``, in front of an ``AsyncClient``.

    Use it from one event loop. A request that is cancelled stops waiting
    without failing the others waiting on the same call.
    """

    def __init__(self, client: Optional[AsyncClient] = None, *, ttl: float = DEFAULT_TTL,
                 negative_ttl: float = DEFAULT_NEGATIVE_TTL, max_entries: int = DEFAULT_MAX_ENTRIES,
                 max_negative: int = DEFAULT_MAX_NEGATIVE, timeout: float = DEFAULT_TIMEOUT,
                 clock: Optional[Callable[[], float]] = None) -> None:
        super().__init__(ttl, negative_ttl, max_entries, max_negative, timeout, clock)
        self.client = client if client is not None else AsyncClient()
        self._calls: Dict[bytes, "asyncio.Future[t.VerifyResult]"] = {}

    async def verify_key(self, key: str, *, permissions: Optional[Sequence[str]] = None,
                         agent: Optional[str] = None, ip: Optional[str] = None,
                         limits: Optional[Sequence[str]] = None, cost: Optional[int] = None,
                         query: Optional[str] = None, require_role: Optional[str] = None,
                         environment: Optional[str] = None) -> t.VerifyResult:
        """``AsyncClient.verify_key`` answered from the cache when it holds an answer; raises ``KeywardError``."""
        needs = Needs(query, require_role, environment)
        d = _digest(key, ip, _tail(permissions, limits, cost, needs))
        with self._lock:
            hit, res = self._cached(d, self.clock())
        if hit and res is not None:
            return _for_agent(res, agent)
        args = (key,)
        kw = dict(permissions=permissions, agent=agent, ip=ip, limits=limits, cost=cost, **needs.fields())
        if hit:
            return await self._direct(d, args, kw)
        task = self._calls.get(d)
        own = task is None
        if task is None:
            # The call outlives any one waiter: shield it from their cancellation.
            task = self._calls[d] = asyncio.ensure_future(self._fetch(d, args, kw))
            # Its error is raised to the waiters; retrieve it even when all
            # of them gave up, so asyncio does not log it as lost.
            task.add_done_callback(lambda f: f.cancelled() or f.exception())
        answer: t.VerifyResult = await asyncio.shield(task)
        if not own and answer.metered:
            return await self._direct(d, args, kw)
        return _for_agent(answer, agent)

    async def _ask(self, args: tuple, kw: dict) -> t.VerifyResult:
        path, data = _VERIFY_ROUTE.request(args, kw)
        return _checked(await asyncio.to_thread(self.client.sync._send, _VERIFY_ROUTE.op, path, data, self.timeout))

    async def _fetch(self, d: bytes, args: tuple, kw: dict) -> t.VerifyResult:
        start = self.clock()
        try:
            res = await self._ask(args, kw)
            self._store(d, res, start)
            return res
        finally:
            self._calls.pop(d, None)

    async def _direct(self, d: bytes, args: tuple, kw: dict) -> t.VerifyResult:
        start = self.clock()
        res = await self._ask(args, kw)
        self._store(d, res, start)
        return _for_agent(res, kw["agent"])
