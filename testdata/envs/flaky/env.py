"""Test environment for rfenv validate: a task generator that is not deterministic (it seeds
from the system's randomness), so the same task_id gives a different prompt on each call."""
import random


class Actor:
    def make_task(self, task_id: int):
        return {"prompt": f"task {task_id}: what is {random.randint(1, 10**9)} + 1?"}
