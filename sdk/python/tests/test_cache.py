"""The cached verifiers against the real keyward: what is kept, for how long, and what is never cached."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from typing import List

import pytest

import keyward
from keyward import Decision, ErrorCode, KeywardError


class Counting(keyward.Client):
    """A real client that counts its calls to keyward."""

    def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*a, **kw)
        self.calls = 0
        self.lock = threading.Lock()

    def _send(self, *a, **kw):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls += 1
        return super()._send(*a, **kw)


def counting(tenant) -> Counting:  # type: ignore[no-untyped-def]
    return Counting(tenant.server.url, tenant.verifier_key.key, environ={})


def test_valid_answers_are_reused_and_revocation_shows_within_ttl(tenant, clock) -> None:
    k = tenant.user_key("notes:read")
    c = counting(tenant)
    v = keyward.CachedVerifier(c, ttl=15, clock=clock)
    for _ in range(3):
        assert v.verify_key(k.key, permissions=["notes:read"]).valid
    assert c.calls == 1
    tenant.root.revoke_key(k.id)
    clock.advance(14)
    assert v.verify_key(k.key, permissions=["notes:read"]).valid, "within the TTL the cached answer stands"
    clock.advance(1)
    assert v.verify_key(k.key, permissions=["notes:read"]).code == Decision.REVOKED
    assert c.calls == 2


def test_lookup_answers_from_the_cache_alone(tenant, clock) -> None:
    """lookup: the cached answer with the request's agent, else None (a miss, expired, metered)."""
    k = tenant.user_key("notes:read")
    c = counting(tenant)
    v = keyward.CachedVerifier(c, ttl=15, clock=clock)
    assert v.lookup(k.key, ("notes:read",)) is None
    v.verify_key(k.key, permissions=["notes:read"], ip="127.0.0.1")
    hit = v.lookup(k.key, ("notes:read",), "127.0.0.1", "claude")
    assert hit is not None and hit.valid and hit.identity is not None
    assert hit.identity.key_id == k.id and hit.identity.agent == "claude"
    assert v.lookup(k.key, ("notes:read",)) is None, "another IP is another entry"
    assert v.lookup(k.key, ("notes:write",), "127.0.0.1") is None, "another permission set is another entry"
    clock.advance(15)
    assert v.lookup(k.key, ("notes:read",), "127.0.0.1") is None, "expired"
    limited = tenant.user_key(rate_limits=[keyward.RateLimit(name="m", limit=100, window="1m")])
    assert v.verify_key(limited.key).valid
    assert v.lookup(limited.key) is None, "a metered key must reach keyward every time"
    assert c.calls == 2


def test_refusals_are_cached_for_the_negative_ttl(tenant, clock) -> None:
    c = counting(tenant)
    v = keyward.CachedVerifier(c, negative_ttl=5, clock=clock)
    unknown = "kw_user_" + "A" * 49
    for _ in range(3):
        assert not v.verify_key(unknown).valid
    assert c.calls == 1
    clock.advance(5)
    v.verify_key(unknown)
    assert c.calls == 2


def test_negative_ttl_below_zero_caches_no_refusal(tenant, clock) -> None:
    c = counting(tenant)
    v = keyward.CachedVerifier(c, negative_ttl=-1, clock=clock)
    v.verify_key("kw_user_nope")
    v.verify_key("kw_user_nope")
    assert c.calls == 2


def test_entry_is_keyed_by_permissions_and_ip(tenant, clock) -> None:
    k = tenant.user_key("notes:read", "notes:write")
    c = counting(tenant)
    v = keyward.CachedVerifier(c, clock=clock)
    v.verify_key(k.key, permissions=["notes:read", "notes:write"])
    v.verify_key(k.key, permissions=["notes:write", "notes:read", "notes:read"])  # the same set
    assert c.calls == 1
    assert v.verify_key(k.key, permissions=["admin"]).code == Decision.INSUFFICIENT_PERMISSIONS
    v.verify_key(k.key, permissions=["notes:read", "notes:write"], ip="203.0.113.9")
    assert c.calls == 3


def test_each_answer_carries_its_own_agent(tenant, clock) -> None:
    k = tenant.user_key()
    c = counting(tenant)
    v = keyward.CachedVerifier(c, clock=clock)
    assert v.verify_key(k.key, agent="claude").identity.agent == "claude"
    assert v.verify_key(k.key, agent="cursor").identity.agent == "cursor"
    assert v.verify_key(k.key).identity.agent is None
    assert c.calls == 1


def test_never_past_the_keys_expiry(tenant, clock) -> None:
    k = tenant.user_key(expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60))
    c = counting(tenant)
    v = keyward.CachedVerifier(c, ttl=3600, clock=clock)
    v.verify_key(k.key)
    clock.advance(59)
    v.verify_key(k.key)
    assert c.calls == 1
    clock.advance(2)
    v.verify_key(k.key)
    assert c.calls == 2


def test_metered_keys_are_never_answered_from_the_cache(tenant, clock) -> None:
    k = tenant.user_key(credits=keyward.Credits(remaining=3))
    c = counting(tenant)
    v = keyward.CachedVerifier(c, clock=clock)
    left = [v.verify_key(k.key).credits_remaining for _ in range(3)]
    assert left == [2, 1, 0]
    assert v.verify_key(k.key).code == Decision.USAGE_EXCEEDED
    assert v.verify_key(k.key).code == Decision.USAGE_EXCEEDED
    assert c.calls == 5
    assert tenant.root.get_credits(k.id).remaining == 0


def test_rate_limited_key_reaches_keyward_every_time(tenant, clock) -> None:
    k = tenant.user_key(rate_limits=[keyward.RateLimit(name="per-minute", limit=2, window="1m")])
    c = counting(tenant)
    v = keyward.CachedVerifier(c, clock=clock)
    codes = [v.verify_key(k.key).code for _ in range(3)]
    assert codes == [Decision.VALID, Decision.VALID, Decision.RATE_LIMITED]
    assert c.calls == 3


def test_errors_are_raised_and_not_cached(tenant, start_keyward, clock) -> None:
    """keyward down: a cached key still passes, an uncached one raises unavailable, each time anew."""
    srv = start_keyward()
    root = srv.root()
    acct = root.create_account(name="down")
    verifier = root.create_key(account_id=acct.id, role="account_admin", permissions=["keys:verify"])
    user = root.create_user(acct.id, name="u")
    known = root.create_key(account_id=acct.id, user_id=user.id)
    other = root.create_key(account_id=acct.id, user_id=user.id)
    tenant.secrets += [srv.root_key, verifier.key, known.key, other.key]
    c = Counting(srv.url, verifier.key, environ={})
    v = keyward.CachedVerifier(c, clock=clock)
    assert v.verify_key(known.key).valid
    srv.stop()
    assert v.verify_key(known.key).valid
    for _ in range(2):
        with pytest.raises(KeywardError) as e:
            v.verify_key(other.key)
        assert e.value.code == ErrorCode.UNAVAILABLE
    assert c.calls == 3


def test_a_refused_verifier_key_is_an_error(tenant, clock) -> None:
    k = tenant.user_key()
    tenant.root.revoke_key(tenant.verifier_key.id)
    v = keyward.CachedVerifier(counting(tenant), clock=clock)
    with pytest.raises(KeywardError) as e:
        v.verify_key(k.key)
    assert e.value.code == ErrorCode.UNAUTHORIZED
    assert len(v) == 0


def test_concurrent_requests_share_one_call(tenant, clock) -> None:
    k = tenant.user_key()
    c = counting(tenant)
    v = keyward.CachedVerifier(c, clock=clock)
    waiters = 7
    all_waiting = threading.Event()
    n = 0

    def on_wait() -> None:
        nonlocal n
        n += 1
        if n == waiters:
            all_waiting.set()

    v._on_wait = on_wait
    entered, release = threading.Event(), threading.Event()
    real_send = c._send

    def held_send(*a, **kw):  # type: ignore[no-untyped-def]
        entered.set()
        assert release.wait(30)
        return real_send(*a, **kw)

    c._send = held_send  # type: ignore[method-assign]
    results: List[keyward.VerifyResult] = []
    threads = [threading.Thread(target=lambda a=a: results.append(v.verify_key(k.key, agent=a)))
               for a in ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"]]
    threads[0].start()
    assert entered.wait(30)
    for th in threads[1:]:
        th.start()
    assert all_waiting.wait(30)
    release.set()
    for th in threads:
        th.join(30)
    assert c.calls == 1
    assert sorted(r.identity.agent for r in results) == [f"a{i}" for i in range(8)]


def test_bounds(tenant, clock) -> None:
    v = keyward.CachedVerifier(counting(tenant), max_entries=2, max_negative=3, clock=clock)
    keys = [tenant.user_key() for _ in range(4)]
    for k in keys:
        v.verify_key(k.key)
    for i in range(5):
        v.verify_key(f"kw_user_unknown{i}")
    assert len(v) == 2 + 3


def test_async_verifier(tenant, clock) -> None:
    k = tenant.user_key("notes:read")
    metered = tenant.user_key(credits=keyward.Credits(remaining=10))

    async def run() -> None:
        c = tenant.async_client()
        calls = 0
        real = c.sync._send

        def send(*a, **kw):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return real(*a, **kw)

        c.sync._send = send  # type: ignore[method-assign]
        v = keyward.AsyncCachedVerifier(c, clock=clock)
        rs = await asyncio.gather(*(v.verify_key(k.key, permissions=["notes:read"], agent=f"a{i}") for i in range(10)))
        assert calls == 1 and [r.identity.agent for r in rs] == [f"a{i}" for i in range(10)]
        assert (await v.verify_key(k.key, permissions=["notes:read"])).valid and calls == 1
        # A metered key shared by concurrent requests is counted once per request.
        rs = await asyncio.gather(*(v.verify_key(metered.key) for _ in range(4)))
        assert sorted(r.credits_remaining for r in rs) == [6, 7, 8, 9]
        tenant.root.revoke_key(k.id)
        clock.advance(15)
        assert (await v.verify_key(k.key, permissions=["notes:read"])).code == Decision.REVOKED

    asyncio.run(run())


def test_async_cancelled_waiter_does_not_fail_the_others(tenant, clock) -> None:
    k = tenant.user_key()

    async def run() -> None:
        v = keyward.AsyncCachedVerifier(tenant.async_client(), clock=clock)
        first = asyncio.ensure_future(v.verify_key(k.key))
        second = asyncio.ensure_future(v.verify_key(k.key))
        await asyncio.sleep(0)  # both are now waiting on the one call
        first.cancel()
        assert (await second).valid
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(run())
