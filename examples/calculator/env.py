"""A small function-based environment: an Actor whose methods rfenv serves over HTTP."""
import asyncio
import os
import random


class Actor:
    def __init__(self):
        # Secrets and settings arrive as environment variables (rfenv up -e KEY=VALUE).
        self.greeting = os.environ.get("GREETING", "hello")
        self.rng = random.Random(0)

    def add(self, a: float, b: float = 0) -> float:
        """Add two numbers."""
        return a + b

    async def evaluate(self, task_type: str = "sat", num_samples: int = 3) -> dict:
        """Score a batch of fake samples for a task type."""
        await asyncio.sleep(0.01)
        scores = [round(self.rng.random(), 3) for _ in range(num_samples)]
        return {"task_type": task_type, "scores": scores, "mean": sum(scores) / max(len(scores), 1)}

    def greet(self, name: str) -> str:
        """Greet someone."""
        return f"{self.greeting}, {name}!"
