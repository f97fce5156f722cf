"""The FastAPI app bench/python-sdk/run puts under load, by BENCH_AUTH:

- none: /notes without auth (the baseline);
- noop: /notes with a dependency that takes the Request and returns a constant
  (what FastAPI's dependency machinery costs by itself);
- keyward: /notes with Depends(keyward.require("notes:read")), verifying through
  KEYWARD_URL with KEYWARD_API_KEY;
- spin: the control, /notes without auth after SPIN_NS nanoseconds of busy CPU
  (what adding that much work to a request costs by itself under load).
"""

import os
import time

from fastapi import Depends, FastAPI
from starlette.requests import Request

import keyward

app = FastAPI()
mode = os.environ.get("BENCH_AUTH", "none")

if mode == "keyward":

    @app.get("/notes")
    async def notes(who: keyward.Identity = Depends(keyward.require("notes:read"))):  # type: ignore[no-untyped-def]
        return {"notes": [], "account": who.account_id}

elif mode == "noop":
    WHO = keyward.Identity(key_id="key_0", role="user", account_id="acc_0Qx3Zk1aBcDeFgHiJkLmNo")

    async def noop(request: Request) -> keyward.Identity:
        return WHO

    @app.get("/notes")
    async def notes(who: keyward.Identity = Depends(noop)):  # type: ignore[no-untyped-def]
        return {"notes": [], "account": who.account_id}

elif mode == "spin":
    SPIN_NS = int(os.environ.get("SPIN_NS", "8000"))

    @app.get("/notes")
    async def notes():  # type: ignore[no-untyped-def]
        until = time.perf_counter_ns() + SPIN_NS
        while time.perf_counter_ns() < until:
            pass
        return {"notes": [], "account": "acc_0Qx3Zk1aBcDeFgHiJkLmNo"}

else:

    @app.get("/notes")
    async def notes():  # type: ignore[no-untyped-def]
        return {"notes": [], "account": "acc_0Qx3Zk1aBcDeFgHiJkLmNo"}
