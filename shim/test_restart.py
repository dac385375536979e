"""The overdue restart: a sync call that never returns makes the shim drain and exit 75."""

import json
import os
import shutil
import tempfile
import unittest

from shimtest import Shim, call_bytes, poll

STUCK_ENV = '''
import asyncio
import os
import time


class Actor:
    def stuck(self):
        while True:  # never returns: its thread cannot be stopped
            time.sleep(0.05)

    async def slow(self):
        while not os.path.exists("go"):
            await asyncio.sleep(0.01)
        return "slow done"

    def quick(self):
        return 1
'''


class OverdueRestartTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rfenv-restarts-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.restarts = os.path.join(self.tmp, "restarts.json")

    def start(self, **env):
        s = Shim(STUCK_ENV, env=env, restarts_file=self.restarts)
        self.addCleanup(s.close)
        s.wait_ready()
        return s

    def test_overdue_restart(self):
        s = self.start(RFENV_OVERDUE_RESTART_MS="300")
        self.assertEqual(s.stats()["restarts"], {"overdue": 0, "last": None})
        # another call in flight, with a deadline far away: it is answered before the exit
        other = s.raw(timeout=120)
        other.send(call_bytes("slow", extra=b"X-Rfenv-Timeout-Ms: 600000\r\n"))
        poll(lambda: s.stats()["in_flight"] == 1, 60, what="slow in flight")
        stuck = s.raw(timeout=120)
        stuck.send(call_bytes("stuck", extra=b"X-Rfenv-Timeout-Ms: 200\r\n"))
        status, _, body = stuck.response()  # at its deadline
        self.assertEqual((status, json.loads(body)["error"]["type"]), (504, "DeadlineExceeded"))

        poll(lambda: "rfenv: restarting: call stuck is " in s.log(), 60, what="the restart line")
        line = [x for x in s.log().splitlines() if x.startswith("rfenv: restarting:")]
        self.assertRegex(line[0], r"^rfenv: restarting: call stuck is \d+s past its deadline$")
        # draining: new calls are refused without running, /health says so
        status, data = s.call("quick")
        self.assertEqual((status, data["error"]["type"]), (429, "Busy"))
        self.assertEqual(s.health(), (503, {"status": "draining"}))
        self.assertIsNone(s.proc.poll())  # still waiting for the other call
        with open(self.restarts) as f:
            self.assertEqual(json.load(f)["overdue"], 1)

        open(os.path.join(s.dir, "go"), "w").close()
        status, _, body = other.response()
        self.assertEqual((status, json.loads(body)), (200, {"result": "slow done"}))
        self.assertEqual(s.proc.wait(60), 75)
        other.close()
        stuck.close()

        # the next process of the container (same restarts file) reports it
        s2 = self.start(RFENV_OVERDUE_RESTART_MS="300")
        r = s2.stats()["restarts"]
        self.assertEqual(r["overdue"], 1)
        self.assertEqual(r["last"]["method"], "stuck")
        self.assertGreaterEqual(r["last"]["overdue_s"], 0.3)
        self.assertIsInstance(r["last"]["at"], float)
        self.assertEqual(s2.call("quick"), (200, {"result": 1}))

    def test_off_by_default(self):
        s = self.start()
        stuck = s.raw(timeout=60)
        stuck.send(call_bytes("stuck", extra=b"X-Rfenv-Timeout-Ms: 100\r\n"))
        self.assertEqual(stuck.response()[0], 504)
        stuck.close()
        self.assertEqual(s.health(), (503, {"status": "busy"}))
        self.assertEqual(s.call("quick"), (200, {"result": 1}))
        self.assertIsNone(s.proc.poll())
        self.assertFalse(os.path.exists(self.restarts))


if __name__ == "__main__":
    unittest.main()
