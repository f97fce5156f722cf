"""The memories service of docs/adopt/tenant-keys.md, before: it keeps its own keys.

A root key comes from the environment; account admin and user keys live in the
service's own table (here a dict of SHA-256 digests); an /admin router creates
accounts, users and keys; X-OpenViking-Agent names the agent.
"""

import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import Optional

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel


@dataclass
class Caller:
    role: str  # "root", "account_admin" or "user"
    account_id: Optional[str] = None
    user_id: Optional[str] = None
    agent: Optional[str] = None


class NewAccount(BaseModel):
    name: str


class NewUser(BaseModel):
    name: str


def create_app(root_key: str = os.environ.get("MEMORIES_ROOT_KEY", "")) -> FastAPI:
    app = FastAPI(title="memories")
    keys: dict = {}  # sha256(key) -> Caller
    accounts: dict = {}
    memories: dict = {}

    def issue(caller: Caller) -> str:
        key = "mem_" + secrets.token_urlsafe(32)
        keys[hashlib.sha256(key.encode()).hexdigest()] = caller
        return key

    def caller(x_api_key: str = Header(""), x_openviking_agent: Optional[str] = Header(None)) -> Caller:
        if root_key and secrets.compare_digest(x_api_key, root_key):
            return Caller("root", agent=x_openviking_agent)
        c = keys.get(hashlib.sha256(x_api_key.encode()).hexdigest())
        if c is None:
            raise HTTPException(401, "Invalid API key")
        return Caller(c.role, c.account_id, c.user_id, x_openviking_agent)

    admin = APIRouter(prefix="/admin")

    @admin.post("/accounts", status_code=201)
    def create_account(body: NewAccount, who: Caller = Depends(caller)):
        if who.role != "root":
            raise HTTPException(403, "root only")
        account_id = "acct-" + secrets.token_hex(4)
        accounts[account_id] = body.name
        return {"id": account_id, "name": body.name, "admin_key": issue(Caller("account_admin", account_id))}

    @admin.post("/accounts/{account_id}/users", status_code=201)
    def create_user(account_id: str, body: NewUser, who: Caller = Depends(caller)):
        if who.role == "user" or (who.role == "account_admin" and who.account_id != account_id):
            raise HTTPException(403, "not your account")
        if account_id not in accounts:
            raise HTTPException(404, "no such account")
        user_id = "user-" + secrets.token_hex(4)
        return {"user_id": user_id, "key": issue(Caller("user", account_id, user_id))}

    app.include_router(admin)

    @app.get("/memories")
    def list_memories(who: Caller = Depends(caller)):
        if who.role == "root":
            raise HTTPException(400, "root has no memories")
        return {"agent": who.agent, "memories": memories.get(who.account_id, [])}

    return app


app = create_app()
