"""Test environment: the user's own FastAPI server."""
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class AddRequest(BaseModel):
    a: int
    b: int = 1


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/add")
def add(req: AddRequest):
    """Add two integers."""
    return {"sum": req.a + req.b}
