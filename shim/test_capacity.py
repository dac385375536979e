"""Protocol v2 capacity: the limits, the queue inside the shim, 429 Busy, deadlines of queued calls."""

import json
import os
import unittest

from shimtest import AUTH, Shim, call_bytes, poll

CAP_ENV = '''
import asyncio
import os
import time


def _log(tag):
    with open("ran.log", "a") as f:
        f.write(tag + "\\n")


class Actor:
    def block(self, tag):
        _log(tag)
        while not os.path.exists("go"):
            time.sleep(0.01)
        return tag

    def record(self, tag):
        _log(tag)
        return tag

    async def ablock(self, tag):
        _log(tag)
        while not os.path.exists("go"):
            await asyncio.sleep(0.01)
        return tag

    async def arecord(self, tag):
        _log(tag)
        return tag
'''


class CapacityTest(unittest.TestCase):

    def start(self, **env):
        s = Shim(CAP_ENV, env=env)
        self.addCleanup(s.close)
        s.wait_ready()
        return s

    def ran(self, s):
        try:
            with open(os.path.join(s.dir, "ran.log")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def go(self, s):
        open(os.path.join(s.dir, "go"), "w").close()

    def check_queue(self, s, block, record, capacity):
        """One call runs, two wait (one with a deadline), a fourth is refused with 429."""
        a = s.raw(timeout=60)
        a.send(call_bytes(block, ["a"]))
        poll(lambda: s.stats()["in_flight"] == 1, 60, what="a running")
        b = s.raw(timeout=60)
        b.send(call_bytes(record, ["b"], extra=b"X-Rfenv-Timeout-Ms: 300\r\n"))
        c = s.raw(timeout=60)
        c.send(call_bytes(record, ["c"]))
        poll(lambda: s.stats()["queued"] == 2, 60, what="b and c queued")
        status, h = s.health(auth=True)
        self.assertEqual((status, h["capacity"], h["in_flight"], h["queued"]), (200, capacity, 1, 2))
        status, data = s.call(record, "d")
        self.assertEqual(status, 429)
        self.assertEqual(data["error"]["type"], "Busy")
        # b reaches its deadline while it waits: 504, and it never runs
        status, _, body = b.response()
        self.assertEqual((status, json.loads(body)["error"]["type"]), (504, "DeadlineExceeded"))
        poll(lambda: s.stats()["queued"] == 1, 60, what="b out of the queue")
        self.go(s)
        self.assertEqual(json.loads(a.response()[2]), {"result": "a"})
        self.assertEqual(json.loads(c.response()[2]), {"result": "c"})
        for x in (a, b, c):
            x.close()
        self.assertEqual(self.ran(s), ["a", "c"])
        st = s.stats()
        self.assertEqual((st["in_flight"], st["queued"]), (0, 0))
        s.check_log()

    def test_sync_calls_wait_for_a_thread(self):
        s = self.start(RFENV_SYNC_WORKERS="1", RFENV_MAX_QUEUE="2")
        self.check_queue(s, "block", "record", 4096 + 1)  # mixed: the async limit + the pool

    def test_async_calls_wait_for_a_slot(self):
        s = self.start(RFENV_MAX_CONCURRENCY="1", RFENV_MAX_QUEUE="2")
        self.check_queue(s, "ablock", "arecord", 1 + 1)  # the pool is bounded by it too

    def test_defaults(self):
        s = self.start()
        h = s.health(auth=True)[1]
        self.assertEqual(h["capacity"], 4096 + min(32, (os.cpu_count() or 1) + 4))
        s2 = Shim("def f():\n    return 1\n", env={"RFENV_MAX_CONCURRENCY": "3"})
        self.addCleanup(s2.close)
        s2.wait_ready()
        self.assertEqual(s2.health(auth=True)[1]["capacity"], 3)  # sync only: the pool, bounded

    def test_boot_id_is_per_process(self):
        a = self.start()
        b = self.start()
        ida = a.health(auth=True)[1]["boot_id"]
        self.assertNotEqual(ida, b.health(auth=True)[1]["boot_id"])
        self.assertEqual(ida, a.request("GET", "/stats", headers=AUTH)[1]["boot_id"])


if __name__ == "__main__":
    unittest.main()
