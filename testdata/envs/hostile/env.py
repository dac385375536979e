"""Hardening fixture: results that are hard to serialise, large payloads, a memory hog, secrets."""
import asyncio
import hashlib
import os
import time


class Opaque:
    """Neither JSON nor convertible: returning one must be a clear error naming the type."""

    def __init__(self):
        self.handle = object()


class Actor:
    def __init__(self):
        self.hoard = []

    def specials(self) -> dict:
        """NaN and the infinities, as values, in lists and as keys."""
        nan, inf = float("nan"), float("inf")
        return {"nan": nan, "inf": inf, "ninf": -inf, "list": [1.5, nan, -inf], inf: "key"}

    def surrogates(self) -> list:
        """Text that is not valid UTF-8: a lone surrogate, and bytes decoded with surrogateescape."""
        return ["lone \udcff here", b"caf\xe9 \xff".decode("utf-8", "surrogateescape"), "ok é ✓"]

    def opaque(self):
        """Return something that is not JSON-serialisable."""
        return Opaque()

    async def echo(self, value=None):
        """Return the value unchanged."""
        return value

    def digest(self, value: str) -> dict:
        """Length and sha256 of a string argument."""
        return {"len": len(value), "sha256": hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()}

    def make(self, n: int, char: str = "x") -> str:
        """A string of n characters."""
        return char * n

    def hog(self, mb: int) -> int:
        """Allocate and touch mb MiB, and keep it (to exceed a --memory limit)."""
        block = bytearray(mb << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        self.hoard.append(block)
        return len(block)

    async def sleep(self, seconds: float) -> float:
        """Sleep asynchronously (cancellable)."""
        await asyncio.sleep(seconds)
        return seconds

    def sleep_sync(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def env_sha256(self, name: str):
        """sha256 of $name (None if unset): proves the value arrived without ever returning it."""
        v = os.environ.get(name)
        return None if v is None else hashlib.sha256(v.encode()).hexdigest()

    def secrets_file_exists(self) -> bool:
        return os.path.exists("/run/rfenv/secrets.json")

    def replica(self) -> str:
        return os.environ.get("RFENV_REPLICA", "")

    def _private(self):
        return "hidden"
