"""Benchmark environment served by rfenv's shim: trivial methods, so that a call measures rfenv."""
import asyncio


class Actor:
    async def echo(self, x=None):
        """Return x unchanged (the trivial method every benchmark calls)."""
        return x

    async def sleep(self, seconds: float = 0.02) -> float:
        """Sleep asynchronously (keeps many calls in flight at once)."""
        await asyncio.sleep(seconds)
        return seconds
