"""Errors of the keyward client."""

from __future__ import annotations

from typing import Optional


class ErrorCode:
    """The stable error codes of keyward's API (``KeywardError.code``)."""

    INVALID = "invalid"
    INVALID_QUERY = "invalid_query"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_TIMEOUT = "upstream_timeout"


# The inverse of the server's error table, for responses without a code
# (a proxy's HTML 502 page, say).
_CODE_OF_STATUS = {
    400: ErrorCode.INVALID,
    405: ErrorCode.INVALID,
    415: ErrorCode.INVALID,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
    502: ErrorCode.UNAVAILABLE,
    503: ErrorCode.UNAVAILABLE,
    504: ErrorCode.UNAVAILABLE,
}


def code_of_status(status: int) -> str:
    """The error code of an HTTP status that came without one."""
    return _CODE_OF_STATUS.get(status, ErrorCode.INTERNAL)


class KeywardError(Exception):
    """An error of a keyward call: match on ``code``, never on the message.

    ``status`` is the HTTP status keyward (or a proxy in front of it)
    answered; ``None`` when it could not be reached. The message never holds a
    key.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"KeywardError(code={self.code!r}, message={self.message!r}, status={self.status!r})"


class ConfigError(ValueError):
    """A client was configured in a way that cannot work (or is unsafe); the message says the fix."""
