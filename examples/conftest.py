"""The examples' tests use the SDK's fixtures: the real keyward binary, a served keyward, tenants."""

import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "sdk" / "python" / "tests")]

from kwtest import *  # noqa: E402,F401,F403
