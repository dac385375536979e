"""The shim's job done the usual way, for comparison: uvicorn + FastAPI serving the same Actor on
POST /call with the same request and reply bodies ({"method","args","kwargs"} -> {"result"}) and the
same bearer-token check."""
import asyncio
import hmac
import os
from typing import Any, Dict, List

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel


class Actor:
    async def echo(self, x=None):
        return x

    async def sleep(self, seconds: float = 0.02) -> float:
        await asyncio.sleep(seconds)
        return seconds


ACTOR = Actor()
TOKEN = "Bearer " + os.environ.get("RFENV_TOKEN", "")

app = FastAPI()


class CallBody(BaseModel):
    method: str
    args: List[Any] = []
    kwargs: Dict[str, Any] = {}


@app.get("/health")
async def health():
    return {"status": "ok", "overdue": 0}


@app.post("/call")
async def call(body: CallBody, authorization: str = Header("")):
    if not hmac.compare_digest(authorization.encode(), TOKEN.encode()):
        raise HTTPException(status_code=401, detail="unauthorized")
    fn = None if body.method.startswith("_") else getattr(ACTOR, body.method, None)
    if fn is None:
        raise HTTPException(status_code=404, detail="no such method")
    return {"result": await fn(*body.args, **body.kwargs)}
