"""Test environment for rfenv validate: a deterministic task generator.

make_task gives the same prompt for the same task_id on every call and replica; its "served_by"
field names the replica, so only --field prompt is consistent across replicas. same_task ignores
task_id (no diversity); picky raises for task_id 3.
"""
import os
import random


class Actor:
    def make_task(self, task_id: int, level: str = "easy"):
        rng = random.Random(f"{level}:{task_id}")
        a, b = rng.randint(1, 999), rng.randint(1, 999)
        return {
            "prompt": f"[{level}] what is {a} + {b}?",
            "answer": a + b,
            "served_by": os.environ.get("RFENV_REPLICA", "?"),
        }

    def same_task(self, task_id: int):
        return {"prompt": "what is 1 + 1?"}

    def picky(self, task_id: int):
        if task_id == 3:
            raise ValueError("task 3 is broken")
        return {"prompt": f"task {task_id}"}
