"""The memories service of docs/adopt/admin-key.md, before: one admin key from the environment,
compared by the service itself. Every client shares it; unset, there is no auth at all."""

import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

PUBLIC = {"/", "/docs", "/openapi.json"}


class Memory(BaseModel):
    text: str


def create_app(api_key: str = os.environ.get("MEMORIES_API_KEY", "")) -> FastAPI:
    app = FastAPI(title="memories")
    memories: list = []

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        if api_key and request.url.path not in PUBLIC:
            if request.headers.get("x-api-key") != api_key:
                return JSONResponse({"detail": "Invalid API key"}, status_code=401)
        return await call_next(request)

    @app.get("/")
    def index():
        return {"service": "memories"}

    @app.get("/memories")
    def list_memories():
        return memories

    @app.post("/memories", status_code=201)
    def add_memory(m: Memory):
        memories.append({"text": m.text})
        return memories[-1]

    return app


app = create_app()
