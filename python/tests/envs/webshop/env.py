"""A second environment for the seed's "two environments at once" example."""
import os


class Actor:
    async def evaluate(self, ids=None, max_round=10):
        return {"ids": ids or [], "max_round": max_round, "api_key_set": bool(os.getenv("API_KEY"))}
