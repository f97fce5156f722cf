"""keyward's Python client for its HTTP API: ``Client`` (blocking) and ``AsyncClient``."""
# The methods of Client are declarations: @_route replaces their (empty) bodies.
# mypy: disable-error-code="empty-body"

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import functools
import inspect
import ipaddress
import json
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, TypeVar

from . import _types as t
from ._errors import ConfigError, ErrorCode, KeywardError, code_of_status
from ._operations import OPERATIONS, Operation

if TYPE_CHECKING:
    from typing import Awaitable

    from typing_extensions import Concatenate, ParamSpec

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["DEFAULT_URL", "AsyncClient", "Client"]

#: The server a client talks to when neither ``url`` nor ``KEYWARD_URL`` is given.
DEFAULT_URL = "http://127.0.0.1:8080"

#: Bounds a response body the client will read.
_MAX_RESPONSE_BYTES = 64 << 20

_USER_AGENT = "keyward-python"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_url(url: str, has_key: bool, allow_insecure_http: bool) -> str:
    """Returns url without a trailing slash, refusing what cannot work or would leak the key."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(f"keyward URL {url!r} must be http(s)://host[:port]: set url= or KEYWARD_URL")
    if u.query or u.fragment:
        raise ConfigError(f"keyward URL {url!r} may not carry a query or fragment: set url= or KEYWARD_URL")
    if u.scheme == "http" and has_key and not allow_insecure_http and not _is_loopback(u.hostname):
        raise ConfigError(
            f"refusing to send the API key over plain HTTP to {u.hostname}: use an https:// URL, "
            "or pass allow_insecure_http=True if the network to keyward is trusted"
        )
    return url.rstrip("/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the API key elsewhere and re-send bodies that
    # hold keys being verified: answer the 3xx as an error instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def _encode(v: Any) -> Any:
    """Turns an argument into its JSON form."""
    if isinstance(v, _dt.datetime):
        return t.format_time(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _encode(getattr(v, f.name)) for f in dataclasses.fields(v) if getattr(v, f.name) is not None}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {k: _encode(x) for k, x in v.items()}
    return v


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _segment(s: str) -> str:
    # An empty id becomes "-", which the server answers as not found, rather
    # than collapsing into a different route.
    return urllib.parse.quote(s, safe="") if s else "-"


@dataclasses.dataclass(frozen=True)
class _Route:
    op: Operation
    #: method parameter -> path placeholder
    path_params: Mapping[str, str]
    signature: inspect.Signature

    def request(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[str, Optional[bytes]]:
        """The path with query, and the JSON body, of a call with args."""
        bound = self.signature.bind(None, *args, **kwargs)
        path = self.op.path
        query = []
        body: Dict[str, Any] = {}
        for name, v in list(bound.arguments.items())[1:]:
            if name in self.path_params:
                path = path.replace("{" + self.path_params[name] + "}", _segment(v))
            elif v is None:
                continue
            elif name in self.op.query:
                query.append((name, _query_value(v)))
            else:
                body[name] = _encode(v)
        if query:
            path += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body, separators=(",", ":")).encode() if self.op.body else None
        return path, data


F = TypeVar("F", bound=Callable[..., Any])


def _route(op_id: str, **path_params: str) -> Callable[[F], F]:
    """Makes a method a call of operation op_id.

    The method's parameters are the call's arguments: those in path_params
    fill the path's placeholders, those named in the operation's query go to
    the query string, the others (not None) to the JSON body. Its own body is
    never run.
    """
    op = OPERATIONS[op_id]

    def wrap(f: F) -> F:
        route = _Route(op, path_params, inspect.signature(f))

        @functools.wraps(f)
        def call(self: Client, *args: Any, **kwargs: Any) -> Any:
            path, data = route.request(args, kwargs)
            return self._send(op, path, data)

        call._keyward_route = route  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return wrap


class Client:
    """A blocking client of a keyward server.

    Configured like the ``keyward`` CLI: ``url`` defaults to ``KEYWARD_URL``
    (else http://127.0.0.1:8080), ``api_key`` to ``KEYWARD_API_KEY`` and
    ``agent`` to ``KEYWARD_AGENT``; explicit arguments win. What the client
    may do follows from its key's role. A key is never sent over plain HTTP
    to a host that is not loopback unless ``allow_insecure_http=True``.

    Errors are ``KeywardError`` with the server's stable ``code``. Redirects
    are not followed. A Client is safe to share between threads.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        agent: Optional[str] = None,
        timeout: float = 30.0,
        allow_insecure_http: bool = False,
        ssl_context: Optional[ssl.SSLContext] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        env = os.environ if environ is None else environ
        key = api_key or env.get("KEYWARD_API_KEY") or None
        self.url = _check_url(url or env.get("KEYWARD_URL") or DEFAULT_URL, key is not None, allow_insecure_http)
        self.agent = agent or env.get("KEYWARD_AGENT") or None
        self.timeout = timeout
        self._api_key = key
        handlers: list = [_NoRedirect()]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"Client(url={self.url!r}, agent={self.agent!r})"

    def _send(self, op: Operation, path: str, data: Optional[bytes], timeout: Optional[float] = None) -> Any:
        """Sends one request and decodes its 2xx body into op.result."""
        headers = {"Accept": "application/json, application/problem+json", "User-Agent": _USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = "Bearer " + self._api_key
        if self.agent:
            headers["X-Keyward-Agent"] = self.agent
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=op.method)
        try:
            with self._opener.open(req, timeout=self.timeout if timeout is None else timeout) as resp:
                body = resp.read(_MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as e:
            raise self._response_error(e) from None
        except (urllib.error.URLError, OSError, HTTPException) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, socket.timeout) or isinstance(e, socket.timeout):
                reason = "timed out"
            raise KeywardError(ErrorCode.UNAVAILABLE, f"cannot reach keyward at {self.url}: {reason}") from None
        if op.result is None:
            return None
        try:
            return t.decode(op.result, json.loads(body))
        except ValueError as e:
            raise KeywardError(
                ErrorCode.INTERNAL, f"decoding the response of {op.method} {op.path} from {self.url}: {e}"
            ) from None

    def _response_error(self, e: urllib.error.HTTPError) -> KeywardError:
        """The error of a non-2xx response: the code and detail of a problem, else one from the status."""
        try:
            body = e.read(1 << 20)
        except (OSError, HTTPException):
            body = b""
        ctype = (e.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype in ("application/problem+json", "application/json"):
            try:
                p = json.loads(body)
            except ValueError:
                p = None
            if isinstance(p, dict) and isinstance(p.get("code"), str) and p["code"]:
                return KeywardError(p["code"], str(p.get("detail") or p.get("title") or ""), e.code)
        first = body.decode("utf-8", "replace").split("\n", 1)[0][:200]
        return KeywardError(code_of_status(e.code), f"keyward at {self.url} answered {e.code} {e.reason}: {first!r}", e.code)

    # Accounts -------------------------------------------------------------

    @_route("createAccount")
    def create_account(
        self,
        *,
        name: str,
        key_prefix: Optional[str] = None,
        rate_limits: Optional[Sequence[t.RateLimit]] = None,
        secret_meta: Optional[Dict[str, Any]] = None,
        policy: Optional[Dict[str, bool]] = None,
    ) -> t.Account:
        """Creates an account (root only)."""

    @_route("listAccounts")
    def list_accounts(self, *, after: Optional[str] = None, limit: Optional[int] = None) -> t.AccountList:
        """Returns one page of accounts (root only)."""

    @_route("getAccount", id="id")
    def get_account(self, id: str) -> t.Account:
        """Returns an account."""

    @_route("updateAccount", id="id")
    def update_account(
        self,
        id: str,
        *,
        name: Optional[str] = None,
        key_prefix: Optional[str] = None,
        disabled: Optional[bool] = None,
        rate_limits: Optional[Sequence[t.RateLimit]] = None,
        secret_meta: Optional[Dict[str, Any]] = None,
        clear_secret_meta: Optional[bool] = None,
        policy: Optional[Dict[str, bool]] = None,
    ) -> t.Account:
        """Changes the fields given (root only)."""

    @_route("deleteAccount", id="id")
    def delete_account(self, id: str) -> None:
        """Deletes an account with its users and keys (root only)."""

    # Users ----------------------------------------------------------------

    @_route("createUser", account_id="id")
    def create_user(
        self,
        account_id: str,
        *,
        name: str,
        external_id: Optional[str] = None,
        meta: Optional[Dict[str, Any]] = None,
        secret_meta: Optional[Dict[str, Any]] = None,
    ) -> t.User:
        """Creates a user in an account; ``external_id`` is your own id for it.

        Its keys inherit ``meta`` (root only) and ``secret_meta`` at verify,
        each key's own fields winning.
        """

    @_route("listUsers", account_id="id")
    def list_users(self, account_id: str, *, after: Optional[str] = None, limit: Optional[int] = None) -> t.UserList:
        """Returns one page of an account's users."""

    @_route("getUser", account_id="id", user_id="uid")
    def get_user(self, account_id: str, user_id: str) -> t.User:
        """Returns a user of an account."""

    @_route("lookupUser", account_id="id")
    def lookup_user(self, account_id: str, *, external_id: str) -> t.User:
        """Returns the account's user with that external id (``not_found`` if none)."""

    @_route("updateUser", account_id="id", user_id="uid")
    def update_user(
        self,
        account_id: str,
        user_id: str,
        *,
        name: Optional[str] = None,
        external_id: Optional[str] = None,
        meta: Optional[Dict[str, Any]] = None,
        secret_meta: Optional[Dict[str, Any]] = None,
        clear_secret_meta: Optional[bool] = None,
    ) -> t.User:
        """Changes the fields given; a taken ``external_id`` is a ``conflict``.

        The user's keys inherit its meta and secret metadata at verify: a
        change reaches every keyward instance at once. ``meta={}`` removes
        the meta (root only sets it).
        """

    @_route("deleteUser", account_id="id", user_id="uid")
    def delete_user(self, account_id: str, user_id: str) -> None:
        """Deletes a user and its keys."""

    # Keys -----------------------------------------------------------------

    @_route("createKey")
    def create_key(
        self,
        *,
        account_id: Optional[str] = None,
        user_id: Optional[str] = None,
        role: Optional[str] = None,
        environment: Optional[str] = None,
        name: Optional[str] = None,
        permissions: Optional[Sequence[str]] = None,
        roles: Optional[Sequence[str]] = None,
        meta: Optional[Dict[str, Any]] = None,
        secret_meta: Optional[Dict[str, Any]] = None,
        expires_at: Optional[_dt.datetime] = None,
        ip_allow: Optional[Sequence[str]] = None,
        rate_limits: Optional[Sequence[t.RateLimit]] = None,
        credits: Optional[t.Credits] = None,
    ) -> t.CreatedKey:
        """Issues a key. The result's ``key`` is the secret, shown this once."""

    @_route("listKeys")
    def list_keys(
        self,
        *,
        account_id: Optional[str] = None,
        user_id: Optional[str] = None,
        role: Optional[str] = None,
        environment: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> t.KeyList:
        """Returns one page of the keys the caller may see, filtered."""

    @_route("getKey", id="id")
    def get_key(self, id: str) -> t.Key:
        """Returns a key (never its secret)."""

    @_route("updateKey", id="id")
    def update_key(
        self,
        id: str,
        *,
        name: Optional[str] = None,
        permissions: Optional[Sequence[str]] = None,
        roles: Optional[Sequence[str]] = None,
        meta: Optional[Dict[str, Any]] = None,
        expires_at: Optional[_dt.datetime] = None,
        clear_expiry: Optional[bool] = None,
        disabled: Optional[bool] = None,
        ip_allow: Optional[Sequence[str]] = None,
        rate_limits: Optional[Sequence[t.RateLimit]] = None,
        secret_meta: Optional[Dict[str, Any]] = None,
        clear_secret_meta: Optional[bool] = None,
    ) -> t.Key:
        """Changes the fields given; ``permissions`` and ``roles`` replace the whole list."""

    @_route("disableKey", id="id")
    def disable_key(self, id: str) -> t.Key:
        """Disables a key."""

    @_route("enableKey", id="id")
    def enable_key(self, id: str) -> t.Key:
        """Enables a disabled key."""

    @_route("revokeKey", id="id")
    def revoke_key(self, id: str, *, cascade: Optional[bool] = None) -> t.KeyRevocation:
        """Makes a key stop working at once; with ``cascade=True`` also the keys it created, at any depth."""

    @_route("rotateKey", id="id")
    def rotate_key(self, id: str, *, grace: Optional[str] = None) -> t.CreatedKey:
        """Issues a replacement; the old key keeps working for ``grace`` (a Go duration: ``24h``)."""

    @_route("deleteKey", id="id")
    def delete_key(self, id: str) -> None:
        """Deletes a key."""

    # Verification ---------------------------------------------------------

    @_route("verifyKey")
    def verify_key(
        self,
        key: str,
        *,
        permissions: Optional[Sequence[str]] = None,
        agent: Optional[str] = None,
        ip: Optional[str] = None,
        limits: Optional[Sequence[str]] = None,
        cost: Optional[int] = None,
        environment: Optional[str] = None,
        query: Optional[str] = None,
        require_role: Optional[str] = None,
    ) -> t.VerifyResult:
        """Asks keyward whether ``key`` is valid and holds ``permissions``.

        ``query`` is a permission query the key must satisfy too
        (``"memories:read AND (search:run OR admin:*)"``; a malformed one is
        ``invalid_query`` with its position), ``require_role`` the least role
        of the key and ``environment`` the environment it must be in; the
        result's ``missing_permissions`` and ``missing_role`` say what a
        refused key lacked.

        Every outcome for the key is a result (see its ``code``); an error is
        about the client's own key (root, or holding ``keys:verify``) or an
        outage.
        """

    @_route("whoami")
    def whoami(self) -> t.Identity:
        """Returns the identity of the client's own key."""

    # Credits --------------------------------------------------------------

    @_route("getCredits", id="id")
    def get_credits(self, id: str) -> t.Credits:
        """Returns a key's live credits (``not_found`` if it has none)."""

    @_route("setCredits", id="id")
    def set_credits(self, id: str, *, remaining: int, refill: Optional[t.CreditRefill] = None) -> t.Credits:
        """Replaces a key's credits (root only); the refill period starts now."""

    @_route("deleteCredits", id="id")
    def delete_credits(self, id: str) -> None:
        """Removes a key's credits (root only): it verifies without a quota."""

    @_route("topUpCredits", id="id")
    def top_up_credits(self, id: str, *, amount: int) -> t.Credits:
        """Adds ``amount`` to what a key has left (root only)."""

    # Shared limits of accounts and users -----------------------------------

    @_route("getAccountLimits", account_id="id")
    def get_account_limits(self, account_id: str) -> t.Meter:
        """Returns the rate limits and live credits all of an account's keys share."""

    @_route("setAccountLimits", account_id="id")
    def set_account_limits(
        self, account_id: str, *, rate_limits: Optional[Sequence[t.RateLimit]] = None, credits: Optional[t.Credits] = None
    ) -> t.Meter:
        """Replaces the rate limits and credits all of an account's keys share (root only)."""

    @_route("deleteAccountLimits", account_id="id")
    def delete_account_limits(self, account_id: str) -> None:
        """Removes an account's shared rate limits and credits (root only)."""

    @_route("getUserLimits", account_id="id", user_id="uid")
    def get_user_limits(self, account_id: str, user_id: str) -> t.Meter:
        """Returns the rate limits and live credits all of a user's keys share."""

    @_route("setUserLimits", account_id="id", user_id="uid")
    def set_user_limits(
        self, account_id: str, user_id: str, *, rate_limits: Optional[Sequence[t.RateLimit]] = None, credits: Optional[t.Credits] = None
    ) -> t.Meter:
        """Replaces the rate limits and credits all of a user's keys share (root only)."""

    @_route("deleteUserLimits", account_id="id", user_id="uid")
    def delete_user_limits(self, account_id: str, user_id: str) -> None:
        """Removes a user's shared rate limits and credits (root only)."""

    # End-user portal -------------------------------------------------------

    @_route("createPortalSession")
    def create_portal_session(
        self,
        *,
        external_id: str,
        return_url: str,
        account_id: Optional[str] = None,
        permissions: Optional[Sequence[str]] = None,
        environments: Optional[Sequence[str]] = None,
        link_ttl: Optional[str] = None,
        session_ttl: Optional[str] = None,
    ) -> t.PortalLink:
        """Creates an end-user portal session for the user with ``external_id`` and returns its
        single-use link, to send the customer's browser to (the link is shown once).

        The caller must hold every permission it grants; root must name ``account_id``.
        ``link_ttl`` and ``session_ttl`` are Go durations (``5m``, ``1h``).
        """

    @_route("getPortalBranding", account_id="id")
    def get_portal_branding(self, account_id: str) -> t.PortalBranding:
        """Returns how an account's portal pages look."""

    @_route("setPortalBranding", account_id="id")
    def set_portal_branding(
        self, account_id: str, *, title: str = "", accent_color: str = "", background_color: str = "", text_color: str = ""
    ) -> t.PortalBranding:
        """Replaces an account's portal branding; colours are ``#rrggbb``, empty means the default."""


def _in_thread(f: Callable[Concatenate[Client, P], R]) -> Callable[Concatenate[AsyncClient, P], Awaitable[R]]:
    """The method f of Client as a coroutine method of AsyncClient, run in a worker thread."""

    @functools.wraps(f)
    async def call(self: AsyncClient, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(f, self.sync, *args, **kwargs)  # type: ignore[arg-type]

    return call  # type: ignore[return-value]


class AsyncClient:
    """The asyncio form of ``Client``: the same methods, configuration and errors, as coroutines.

    Each call runs the blocking client in a worker thread (the standard
    library has no asyncio HTTP client); ``sync`` is that client.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        agent: Optional[str] = None,
        timeout: float = 30.0,
        allow_insecure_http: bool = False,
        ssl_context: Optional[ssl.SSLContext] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.sync = Client(
            url, api_key, agent=agent, timeout=timeout, allow_insecure_http=allow_insecure_http,
            ssl_context=ssl_context, environ=environ,
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.sync.url

    def __repr__(self) -> str:
        return f"AsyncClient(url={self.sync.url!r}, agent={self.sync.agent!r})"

    create_account = _in_thread(Client.create_account)
    list_accounts = _in_thread(Client.list_accounts)
    get_account = _in_thread(Client.get_account)
    update_account = _in_thread(Client.update_account)
    delete_account = _in_thread(Client.delete_account)
    create_user = _in_thread(Client.create_user)
    list_users = _in_thread(Client.list_users)
    get_user = _in_thread(Client.get_user)
    lookup_user = _in_thread(Client.lookup_user)
    update_user = _in_thread(Client.update_user)
    delete_user = _in_thread(Client.delete_user)
    create_key = _in_thread(Client.create_key)
    list_keys = _in_thread(Client.list_keys)
    get_key = _in_thread(Client.get_key)
    update_key = _in_thread(Client.update_key)
    disable_key = _in_thread(Client.disable_key)
    enable_key = _in_thread(Client.enable_key)
    revoke_key = _in_thread(Client.revoke_key)
    rotate_key = _in_thread(Client.rotate_key)
    delete_key = _in_thread(Client.delete_key)
    verify_key = _in_thread(Client.verify_key)
    whoami = _in_thread(Client.whoami)
    get_credits = _in_thread(Client.get_credits)
    set_credits = _in_thread(Client.set_credits)
    delete_credits = _in_thread(Client.delete_credits)
    top_up_credits = _in_thread(Client.top_up_credits)
    get_account_limits = _in_thread(Client.get_account_limits)
    set_account_limits = _in_thread(Client.set_account_limits)
    delete_account_limits = _in_thread(Client.delete_account_limits)
    get_user_limits = _in_thread(Client.get_user_limits)
    set_user_limits = _in_thread(Client.set_user_limits)
    delete_user_limits = _in_thread(Client.delete_user_limits)
    create_portal_session = _in_thread(Client.create_portal_session)
    get_portal_branding = _in_thread(Client.get_portal_branding)
    set_portal_branding = _in_thread(Client.set_portal_branding)
