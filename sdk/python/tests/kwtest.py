"""Fixtures shared by the SDK's tests and the examples' (examples/conftest.py): the real keyward binary, served on a free loopback port with a fresh data directory.

The binary is $KEYWARD_BINARY, else bin/keyward built from the repository
with ``go build``. Without Go (and no $KEYWARD_BINARY) the tests are skipped,
unless CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "sdk" / "python"))

import keyward  # noqa: E402

__all__ = ["Clock", "Server", "Tenant", "clock", "keyward_binary", "need", "no_secret_in_logs", "server",
           "start_keyward", "tenant"]

# Bounds every wait for the server; tests never sleep.
WAIT_SECONDS = 60


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: a missing prerequisite is a failure)")
    pytest.skip(what)


def need(module: str):  # type: ignore[no-untyped-def]
    """Imports a framework the tests need: a skip when it is missing, a failure with CI=true."""
    if os.environ.get("CI") == "true":
        return __import__(module)
    return pytest.importorskip(module, reason=f"{module} is missing: apt-get install python3-{module}")


@pytest.fixture(scope="session")
def keyward_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    given = os.environ.get("KEYWARD_BINARY")
    if given:
        if not os.access(given, os.X_OK):
            pytest.fail(f"KEYWARD_BINARY={given} is not an executable")
        return given
    go = shutil.which("go")
    if go is None:
        _missing("no keyward binary: install Go or set KEYWARD_BINARY to a built keyward")
    out = str(tmp_path_factory.mktemp("bin") / "keyward")
    subprocess.run([go, "build", "-o", out, "./cmd/keyward"], cwd=ROOT, check=True)
    return out


class Server:
    """A running ``keyward serve``."""

    def __init__(self, binary: str, data: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYWARD_")}
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data", str(data), "--log-format", "json"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        )
        self.log: List[str] = []
        self._lines: "queue.Queue[tuple]" = queue.Queue()
        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, pipe), daemon=True).start()
        self.url = ""
        self.root_key = ""
        while not (self.url and self.root_key):
            try:
                name, line = self._lines.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                self.stop()
                raise RuntimeError("keyward serve did not start in time:\n" + "\n".join(self.log)) from None
            if name is None:
                raise RuntimeError("keyward serve exited before listening:\n" + "\n".join(self.log))
            if name == "stdout" and line.startswith("root key: "):
                self.root_key = line[len("root key: "):].strip()
            elif name == "stderr" and '"msg":"listening"' in line:
                self.url = json.loads(line)["url"]

    def _read(self, name: str, pipe) -> None:  # type: ignore[no-untyped-def]
        for line in pipe:
            line = line.rstrip("\n")
            if name == "stderr":
                self.log.append(line)
            self._lines.put((name, line))
        self._lines.put((None, ""))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def root(self, **kw) -> keyward.Client:  # type: ignore[no-untyped-def]
        """A client with the root key."""
        return keyward.Client(self.url, self.root_key, environ={}, **kw)


def start_server(binary: str, data: Path) -> Server:
    return Server(binary, data)


@pytest.fixture(scope="session")
def server(keyward_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(keyward_binary, tmp_path_factory.mktemp("keyward") / "data")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def start_keyward(keyward_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Server]]:
    """Starts further servers (for tests that stop theirs); all are stopped at the end."""
    started: List[Server] = []

    def start() -> Server:
        s = Server(keyward_binary, tmp_path_factory.mktemp("keyward") / "data")
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


class Tenant:
    """An account with a user, a verifier key and helpers to make user keys."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.root = server.root()
        self.account = self.root.create_account(name=name)
        self.user = self.root.create_user(self.account.id, name="alice", external_id="u-1")
        self.verifier_key = self.root.create_key(
            account_id=self.account.id, role=keyward.Role.ACCOUNT_ADMIN, name="service",
            permissions=["keys:verify"],
        )
        # Keys the test's logs must never hold.
        self.secrets = [server.root_key, self.verifier_key.key]

    def client(self, **kw) -> keyward.Client:  # type: ignore[no-untyped-def]
        """A client with the verifier key."""
        return keyward.Client(self.server.url, self.verifier_key.key, environ={}, **kw)

    def async_client(self, **kw) -> keyward.AsyncClient:  # type: ignore[no-untyped-def]
        return keyward.AsyncClient(self.server.url, self.verifier_key.key, environ={}, **kw)

    def user_key(self, *permissions: str, **kw) -> keyward.CreatedKey:  # type: ignore[no-untyped-def]
        k = self.root.create_key(account_id=self.account.id, user_id=self.user.id, permissions=list(permissions), **kw)
        self.secrets.append(k.key)
        return k


_tenants = iter(range(1_000_000))


@pytest.fixture
def tenant(server: Server) -> Tenant:
    return Tenant(server, f"acme-{next(_tenants)}")


@pytest.fixture(autouse=True)
def no_secret_in_logs(request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test runs with the SDK's logging at DEBUG, and no key of its tenant may appear in it."""
    caplog.set_level("DEBUG", logger="keyward")
    yield
    t: Optional[Tenant] = request.node.funcargs.get("tenant")
    if t is not None:
        text = caplog.text
        for s in t.secrets:
            assert s not in text, "a raw key was logged"


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 2_000_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    import time

    return Clock(time.time())
