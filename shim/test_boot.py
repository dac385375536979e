"""A session's calls name the server process they expect (X-Rfenv-Boot): another process refuses them
with 410 before running anything, so an episode's step never runs where the episode does not exist."""

import os
import unittest

from shimtest import Shim

BOOT_ENV = '''
def record(tag):
    with open("ran.log", "a") as f:
        f.write(tag + "\\n")
    return tag
'''


class BootTest(unittest.TestCase):

    def test_boot_mismatch_is_410_and_nothing_runs(self):
        s = Shim(BOOT_ENV)
        self.addCleanup(s.close)
        s.wait_ready()
        boot = s.health(auth=True)[1]["boot_id"]
        self.assertEqual(len(boot), 32)
        status, data = s.call("record", "right", _headers={"X-Rfenv-Boot": boot})
        self.assertEqual((status, data), (200, {"result": "right"}))
        status, data = s.call("record", "wrong", _headers={"X-Rfenv-Boot": "0" * 32})
        self.assertEqual(status, 410, data)
        self.assertEqual(data["error"]["type"], "BootMismatch")
        status, _ = s.call("record", "none")  # no header: any process will do
        self.assertEqual(status, 200)
        with open(os.path.join(s.dir, "ran.log")) as f:
            self.assertEqual(f.read().split(), ["right", "none"])

    def test_boot_ids_differ_between_processes(self):
        a, b = Shim(BOOT_ENV), Shim(BOOT_ENV)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.wait_ready()
        b.wait_ready()
        self.assertNotEqual(a.health(auth=True)[1]["boot_id"], b.health(auth=True)[1]["boot_id"])
        self.assertNotIn("boot_id", a.health()[1], "the boot id is shown only with the token")


if __name__ == "__main__":
    unittest.main()
