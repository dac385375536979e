"""Test environment: episodes live in the replica's memory, as in real RL environments.

reset() creates an episode and returns its id; step() needs the replica that holds it."""
import asyncio
import os
import uuid


class Actor:
    def __init__(self):
        self._episodes = {}
        self._running = 0
        self._peak = 0

    def reset(self, seed: int = 0) -> dict:
        episode_id = uuid.uuid4().hex
        self._episodes[episode_id] = {"seed": seed, "steps": 0}
        return {"episode_id": episode_id, "replica": os.environ.get("RFENV_REPLICA", "")}

    def step(self, episode_id: str, action: int = 0) -> dict:
        ep = self._episodes.get(episode_id)
        if ep is None:
            raise KeyError("Episode %s not found" % episode_id)
        ep["steps"] += 1
        return {"steps": ep["steps"], "replica": os.environ.get("RFENV_REPLICA", "")}

    def replica(self) -> str:
        return os.environ.get("RFENV_REPLICA", "")

    async def hold(self, seconds: float = 0.05) -> int:
        """Sleep, tracking how many calls run at once on this replica (see peak)."""
        self._running += 1
        self._peak = max(self._peak, self._running)
        try:
            await asyncio.sleep(seconds)
        finally:
            self._running -= 1
        return self._peak

    def peak(self) -> int:
        return self._peak
