"""The memories service of docs/adopt/tenant-keys.md, after: keyward keeps the keys.

keyward's roles are the service's (root, account_admin, user). The /admin router
stays, for the clients that use it, but forwards to keyward with the caller's own
key: keyward decides what each role may do. The service verifies with a root key
(it serves every account): KEYWARD_URL and KEYWARD_API_KEY.
"""

from typing import Optional

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

import keyward
from keyward.guard import read_key

AGENT_HEADERS = ["X-OpenViking-Agent", "X-Keyward-Agent"]
USER_PERMISSIONS = ["memories:read", "memories:write"]
STATUS = {keyward.ErrorCode.INVALID: 400, keyward.ErrorCode.FORBIDDEN: 403, keyward.ErrorCode.NOT_FOUND: 404,
          keyward.ErrorCode.CONFLICT: 409, keyward.ErrorCode.UNAUTHORIZED: 401}


class NewAccount(BaseModel):
    name: str


class NewUser(BaseModel):
    name: str


def create_app(verifier=None, keyward_url: Optional[str] = None) -> FastAPI:
    app = FastAPI(title="memories")

    def authenticated(*permissions: str):
        return Depends(keyward.require(*permissions, verifier=verifier, agent_headers=AGENT_HEADERS))

    def as_caller(request: Request, who: keyward.Identity) -> keyward.AsyncClient:
        """A keyward client acting with the caller's own key: keyward checks what it may do."""
        key = read_key(lambda name: request.headers.getlist(name))
        return keyward.AsyncClient(keyward_url, key, agent=who.agent)

    async def call(op):
        try:
            return await op
        except keyward.KeywardError as e:
            raise HTTPException(STATUS.get(e.code, 503), e.message) from None

    admin = APIRouter(prefix="/admin")

    @admin.post("/accounts", status_code=201)
    async def create_account(body: NewAccount, request: Request, who: keyward.Identity = authenticated()):
        kw = as_caller(request, who)
        acct = await call(kw.create_account(name=body.name))
        admin_key = await call(kw.create_key(account_id=acct.id, role=keyward.Role.ACCOUNT_ADMIN,
                                             name="admin", permissions=USER_PERMISSIONS))
        return {"id": acct.id, "name": acct.name, "admin_key": admin_key.key}

    @admin.post("/accounts/{account_id}/users", status_code=201)
    async def create_user(account_id: str, body: NewUser, request: Request, who: keyward.Identity = authenticated()):
        kw = as_caller(request, who)
        user = await call(kw.create_user(account_id, name=body.name))
        key = await call(kw.create_key(account_id=account_id, user_id=user.id, permissions=USER_PERMISSIONS))
        return {"user_id": user.id, "key": key.key}

    @admin.get("/accounts/{account_id}/keys")
    async def list_keys(account_id: str, request: Request, who: keyward.Identity = authenticated()):
        page = await call(as_caller(request, who).list_keys(account_id=account_id))
        return [{"id": k.id, "name": k.name, "role": k.role, "user_id": k.user_id} for k in page.items]

    @admin.delete("/keys/{key_id}", status_code=204)
    async def revoke_key(key_id: str, request: Request, who: keyward.Identity = authenticated()):
        await call(as_caller(request, who).revoke_key(key_id))

    app.include_router(admin)

    @app.get("/memories")
    def list_memories(who: keyward.Identity = authenticated("memories:read")):
        return {"agent": who.agent, "account": who.account_id, "user": who.user_id, "memories": []}

    return app


app = create_app()
