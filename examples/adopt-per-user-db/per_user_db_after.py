"""The notes service of docs/adopt/per-user-db.md, after: keyward verifies the key and returns the
user's database in the same answer (the key's secret metadata), cached by the SDK.

    KEYWARD_URL=... KEYWARD_API_KEY=<a key holding keys:verify_secrets> uvicorn per_user_db_after:app
"""

import sqlite3

from fastapi import Depends, FastAPI, HTTPException, Request

import keyward
import keyward.fastapi


def create_app(verifier=None) -> FastAPI:
    app = FastAPI(title="notes")
    reader = keyward.require("notes:read", verifier=verifier)

    def user_db(request: Request, who: keyward.Identity = Depends(reader)):
        secret = keyward.fastapi.current_result(request).secret_meta or {}
        database = secret.get("database")
        if not database:
            raise HTTPException(403, "this key has no database")
        conn = sqlite3.connect(database, check_same_thread=False)
        try:
            yield conn
        finally:
            conn.close()

    @app.get("/notes")
    def notes(db: sqlite3.Connection = Depends(user_db)):
        return [text for (text,) in db.execute("SELECT text FROM notes ORDER BY id")]

    return app


app = create_app()
