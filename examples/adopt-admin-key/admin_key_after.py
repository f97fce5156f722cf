"""The memories service of docs/adopt/admin-key.md, after: keyward checks the keys.

Configured by KEYWARD_URL and KEYWARD_API_KEY (a key holding keys:verify):

    KEYWARD_URL=http://127.0.0.1:8080 KEYWARD_API_KEY=kw_acct_... uvicorn admin_key_after:app
"""

from fastapi import Depends, FastAPI
from pydantic import BaseModel

import keyward
from keyward.asgi import KeywardMiddleware


class Memory(BaseModel):
    text: str


def create_app(verifier=None) -> FastAPI:
    app = FastAPI(title="memories")
    app.add_middleware(KeywardMiddleware, verifier=verifier, exempt=["/", "/docs", "/openapi.json"])
    memories: dict = {}  # per account: each tenant sees its own

    @app.get("/")
    def index():
        return {"service": "memories"}

    @app.get("/memories")
    def list_memories(who: keyward.Identity = Depends(keyward.require("memories:read", verifier=verifier))):
        return memories.get(who.account_id, [])

    @app.post("/memories", status_code=201)
    def add_memory(m: Memory, who: keyward.Identity = Depends(keyward.require("memories:write", verifier=verifier))):
        memories.setdefault(who.account_id, []).append({"text": m.text, "by": who.key_id})
        return memories[who.account_id][-1]

    return app


app = create_app()
