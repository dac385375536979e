import os


class Actor:
    def __init__(self):
        if not os.environ.get("CHUTES_API_KEY"):
            raise RuntimeError("CHUTES_API_KEY not set")

    def ping(self):
        return "pong"
