"""Test environment: an Actor with sync and async methods, one that raises, one that sleeps."""
import asyncio
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from os.path import join  # an imported name: must not be callable


@dataclass
class Point:
    x: int
    y: int


# One id per server process: a replica restarted in the same container (same pid numbers in its
# namespace) writes a different log file.
_BOOT = uuid.uuid4().hex[:12]


class Actor:
    def __init__(self):
        self.secret = os.environ.get("TEST_SECRET", "")
        self.calls = 0

    def add(self, a: int, b: int = 1) -> int:
        """Add two integers."""
        self.calls += 1
        return a + b

    async def echo(self, value=None):
        """Return the value unchanged."""
        return value

    def fail(self, message: str = "boom"):
        """Raise ValueError."""
        raise ValueError(message)

    async def sleep(self, seconds: float) -> float:
        """Sleep asynchronously."""
        await asyncio.sleep(seconds)
        return seconds

    def sleep_sync(self, seconds: float) -> float:
        """Sleep in a thread."""
        time.sleep(seconds)
        return seconds

    def block_sync(self, gate: str, limit: float = 600) -> str:
        """Block a thread until the file /tmp/gate-GATE exists (a test creates it with docker exec)."""
        path = "/tmp/gate-" + gate
        end = time.monotonic() + limit
        while not os.path.exists(path) and time.monotonic() < end:
            time.sleep(0.01)
        return gate

    def point(self) -> Point:
        return Point(1, 2)

    def has_secret(self, name: str) -> bool:
        """Say whether an environment variable is set (never its value)."""
        return bool(os.environ.get(name))

    def secret_digest(self, name: str) -> str:
        """The sha256 of an environment variable (so a test compares values without printing them)."""
        return hashlib.sha256(os.environ.get(name, "").encode()).hexdigest()

    def hostname(self) -> str:
        return os.environ.get("HOSTNAME", "")

    def replica(self) -> str:
        return os.environ.get("RFENV_REPLICA", "")

    def record(self, call_id: int) -> str:
        """Append call_id to a log under /data (a bind mount in tests); return the replica index."""
        replica = os.environ.get("RFENV_REPLICA", "x")
        with open("/data/%s-%s.log" % (replica, _BOOT), "a") as f:
            f.write("%d\n" % call_id)
        return replica

    async def slow_on(self, replica: str, seconds: float = 0.05) -> str:
        """Sleep only on the given replica; return the replica index."""
        me = os.environ.get("RFENV_REPLICA", "")
        if me == replica:
            await asyncio.sleep(seconds)
        return me

    def _private(self):
        return "hidden"
