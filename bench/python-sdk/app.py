"""The FastAPI app bench/python-sdk/run puts under load: /notes with the keyward dependency
(BENCH_AUTH=1, verifying through KEYWARD_URL with KEYWARD_API_KEY) or without any auth."""

import os

from fastapi import Depends, FastAPI

import keyward

app = FastAPI()

if os.environ.get("BENCH_AUTH") == "1":

    @app.get("/notes")
    async def notes(who: keyward.Identity = Depends(keyward.require("notes:read"))):  # type: ignore[no-untyped-def]
        return {"notes": [], "account": who.account_id}

else:

    @app.get("/notes")
    async def notes():  # type: ignore[no-untyped-def]
        return {"notes": [], "account": "acc_0Qx3Zk1aBcDeFgHiJkLmNo"}
