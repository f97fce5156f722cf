"""The guard's reading of requests, case by case, with the cases of keyward's own Go packages."""

from __future__ import annotations

import ipaddress
import json
import pathlib

import pytest

import keyward
from keyward.guard import client_address, go_duration_seconds, rate_limit_headers, read_agent, read_key

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


# clientaddr/clientaddr_test.go
@pytest.mark.parametrize("peer,xff,want", [
    ("198.51.100.9:1234", ["203.0.113.7"], "198.51.100.9"),
    ("10.0.0.1:1234", [], "10.0.0.1"),
    ("10.0.0.1:1234", ["203.0.113.7"], "203.0.113.7"),
    ("10.0.0.1:1234", ["203.0.113.7, "], "203.0.113.7"),
    ("10.0.0.1:1234", [" , 203.0.113.7,,\t, "], "203.0.113.7"),
    ("10.0.0.1:1234", ["[2001:db8::1]"], "2001:db8::1"),
    ("10.0.0.1:1234", ["[2001:db8::1]:443"], "2001:db8::1"),
    ("10.0.0.1:1234", ["2001:db8::1"], "2001:db8::1"),
    ("10.0.0.1:1234", ["203.0.113.7:41234"], "203.0.113.7"),
    ("10.0.0.1:1234", ["fe80::1%eth0"], "fe80::1"),
    ("10.0.0.1:1234", ["::ffff:203.0.113.7"], "203.0.113.7"),
    ("10.0.0.1:1234", ["192.0.2.1, 203.0.113.7, 10.0.0.2"], "203.0.113.7"),
    ("10.0.0.1:1234", ["192.0.2.1", "203.0.113.7, 10.0.0.2"], "203.0.113.7"),
    ("10.0.0.1:1234", ["203.0.113.7, unknown, 10.0.0.2"], "10.0.0.2"),
    ("10.0.0.1:1234", ["nonsense, 10.0.0.2"], "10.0.0.2"),
    ("10.0.0.1:1234", ["203.0.113.7, _hidden"], "10.0.0.1"),
    ("10.0.0.1:1234", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
    ("[2001:db8:ffff::5]:443", ["203.0.113.7"], "203.0.113.7"),
    ("[::ffff:10.0.0.1]:443", ["203.0.113.7"], "203.0.113.7"),
    ("@", ["203.0.113.7"], None),
    ("", [], None),
    ("10.0.0.1:1234", ["[203.0.113.7]"], "10.0.0.1"),
    ("10.0.0.1", ["203.0.113.7"], "203.0.113.7"),
])
def test_client_address(peer: str, xff: list, want) -> None:  # type: ignore[no-untyped-def]
    got = client_address(peer or None, xff, TRUSTED)
    assert (str(got) if got else None) == want


def headers(**h):  # type: ignore[no-untyped-def]
    lower = {k.lower().replace("_", "-"): v if isinstance(v, list) else [v] for k, v in h.items()}
    return lambda name: lower.get(name, [])


@pytest.mark.parametrize("h,want", [
    (headers(authorization="Bearer kw_a"), "kw_a"),
    (headers(authorization="bearer   kw_a  "), "kw_a"),
    (headers(x_api_key=" kw_a "), "kw_a"),
    (headers(authorization="Bearer kw_a", x_api_key="kw_a"), "kw_a"),
    (headers(), "no API key"),
    (headers(x_api_key=""), "no API key"),
    (headers(authorization="Bearer"), "must be"),
    (headers(authorization="Basic kw_a"), "must be"),
    (headers(authorization="Bearer kw_a", x_api_key="kw_b"), "different keys"),
    (headers(authorization=["Bearer kw_a", "Bearer kw_a"]), "different keys"),
    (headers(x_api_key=["kw_a", "kw_a"]), "different keys"),
])
def test_read_key(h, want: str) -> None:  # type: ignore[no-untyped-def]
    try:
        assert read_key(h) == want
    except keyward.Denial as d:
        assert d.status == 401 and d.code == "unauthorized" and want in d.detail


@pytest.mark.parametrize("value,want", [
    ("claude-code/1.0", "claude-code/1.0"),
    ("  spaced  ", "spaced"),
    ("", None),
    ("caf\u00c3\u00a9", "caf\u00e9"),  # UTF-8 bytes as a server hands them over (latin-1)
    ("\u00ff\u00fe", 400),  # not UTF-8
    ("a" * 200, "a" * 200),
    ("a" * 201, 400),
    ("tab\there", 400),
    ("del\x7f", 400),
    (["a", "b"], 400),
])
def test_read_agent(value, want) -> None:  # type: ignore[no-untyped-def]
    h = headers(x_keyward_agent=value)
    if want == 400:
        with pytest.raises(keyward.Denial) as e:
            read_agent(h)
        assert e.value.status == 400 and e.value.code == "invalid"
    else:
        assert read_agent(h) == want


@pytest.mark.parametrize("s,want", [("1m0s", 60), ("24h0m0s", 86400), ("1.5s", 1.5), ("500ms", 0.5),
                                    ("1h30m", 5400), ("0s", 0), ("junk", 0), ("1m junk", 0)])
def test_go_duration(s: str, want: float) -> None:
    assert go_duration_seconds(s) == pytest.approx(want)


def test_rate_limit_headers() -> None:
    ok = keyward.RateLimitStatus(name="per-minute", limit=100, window="1m0s", allowed=True, remaining=42, reset_ms=16001)
    denied = keyward.RateLimitStatus(name='we"ird', limit=10, window="24h0m0s", allowed=False, remaining=0,
                                     reset_ms=1000, retry_after_ms=2500)
    assert rate_limit_headers([]) == []
    assert rate_limit_headers([ok]) == [("RateLimit-Policy", '"per-minute";q=100;w=60'),
                                        ("RateLimit", '"per-minute";r=42;t=17')]
    assert rate_limit_headers([ok, denied]) == [
        ("RateLimit-Policy", '"per-minute";q=100;w=60, "we\\"ird";q=10;w=86400'),
        ("RateLimit", '"per-minute";r=42;t=17, "we\\"ird";r=0;t=1'),
        ("Retry-After", "3"),
    ]


def test_exempt_paths() -> None:
    g = keyward.Guard(exempt=["/", "/docs", "/static/*"])

    def exempt(path: str) -> bool:
        return g.is_exempt(keyward.Request(headers=lambda n: [], path=path))

    assert exempt("/") and exempt("/docs") and exempt("/static/a.css") and exempt("/static/")
    for p in ["/docs/", "/docsx", "/static", "/static/../admin", "//docs", "/static/./a", "/a"]:
        assert not exempt(p), p
    with pytest.raises(keyward.ConfigError, match="must start with /"):
        keyward.Guard(exempt=["docs"])


# permission/testdata/covers.json: the cases keyward's own matching is tested with.
_COVERS = json.loads((pathlib.Path(__file__).resolve().parents[3] / "permission" / "testdata" / "covers.json").read_text())


@pytest.mark.parametrize("case", _COVERS, ids=lambda c: f"{c['held']}>{c['wanted']}")
def test_covers_as_keyward(case):
    assert keyward.covers(case["held"], case["wanted"]) is case["covers"]


def test_identity_holds_through_wildcards():
    ident = keyward.Identity(key_id="key_1", role=keyward.Role.USER, permissions=("memories:*", "search:run"))
    assert ident.has_permissions("memories:read", "search:run")
    assert not ident.has_permissions("memories")
    assert not ident.has_permissions("memories:read", "admin:keys")
    root = keyward.Identity(key_id="key_2", role=keyward.Role.ROOT)
    assert root.has_permissions("anything:at.all")
