"""The seed README's example environment, plus session (episode) methods for the session tests."""
import asyncio
import os


class Actor:
    def __init__(self):
        self.api_key = os.getenv("CHUTES_API_KEY")
        if not self.api_key:
            raise ValueError("CHUTES_API_KEY not set")
        self.episodes = {}

    async def evaluate(self, task_type="sat", num_samples=1, **kwargs):
        return {"task_name": task_type, "total_score": 1.0, "samples": num_samples,
                "replica": os.environ.get("RFENV_REPLICA", "")}

    async def sleep(self, seconds: float = 1.0):
        await asyncio.sleep(seconds)
        return seconds

    def fail(self, message="boom"):
        raise ValueError(message)

    def add(self, a, b=1):
        return a + b

    def reset(self, seed=0, episode_id=None):
        eid = episode_id or "ep-%s-%d" % (os.environ.get("RFENV_REPLICA", ""), len(self.episodes))
        self.episodes[eid] = {"seed": seed, "steps": 0}
        return {"episode_id": eid, "observation": seed}

    def step(self, action=0, episode_id=None):
        ep = self.episodes[episode_id]  # KeyError on another replica: the pin matters
        ep["steps"] += 1
        return {"observation": ep["seed"] + action, "steps": ep["steps"], "replica": os.environ.get("RFENV_REPLICA", "")}

    def state(self, episode_id=None):
        return dict(self.episodes[episode_id], episode_id=episode_id)

    def stop(self, episode_id=None):
        return self.episodes.pop(episode_id, None) is not None
