"""The fixtures of kwtest.py (shared with examples/conftest.py)."""

from kwtest import *  # noqa: F401,F403
