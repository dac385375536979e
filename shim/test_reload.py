"""POST /reload: env.py and the modules of the code directory are read again from disk."""

import os
import textwrap
import unittest

from shimtest import AUTH, Shim, poll

V1 = '''
from helper import VALUE

class Actor:
    def __init__(self):
        self.n = 0

    def value(self):
        self.n += 1
        return [VALUE, self.n]
'''

V2 = '''
from helper import VALUE

class Actor:
    def value(self):
        return ["v2", VALUE]

    def extra(self):
        return "new"
'''


class ReloadTest(unittest.TestCase):

    def setUp(self):
        self.s = Shim(V1, files={"helper.py": "VALUE = 'one'\n"})
        self.addCleanup(self.s.close)
        self.s.wait_ready()

    def write(self, name, src):
        with open(os.path.join(self.s.dir, name), "w") as f:
            f.write(textwrap.dedent(src))

    def reload(self, headers=AUTH):
        status, data, _ = self.s.request("POST", "/reload", b"", headers)
        return status, data

    def test_reload_reads_the_files_again(self):
        s = self.s
        self.assertEqual(s.call("value"), (200, {"result": ["one", 1]}))
        self.assertEqual(s.call("value"), (200, {"result": ["one", 2]}))
        self.write("env.py", V2)
        self.write("helper.py", "VALUE = 'two'\n")  # an imported module of the code directory
        self.assertEqual(self.reload(), (200, {"status": "ok", "methods": ["extra", "value"]}))
        self.assertEqual(s.call("value"), (200, {"result": ["v2", "two"]}))
        self.assertEqual(s.call("extra"), (200, {"result": "new"}))
        self.write("env.py", V1)
        self.assertEqual(self.reload()[0], 200)
        self.assertEqual(s.call("value"), (200, {"result": ["two", 1]}))  # a new Actor
        self.assertEqual(s.log().count("rfenv-shim: reloaded: "), 2)
        s.check_log()

    def test_reload_needs_the_token(self):
        status, data = self.reload(headers={"Authorization": "Bearer wrong"})
        self.assertEqual((status, data["error"]["type"]), (401, "Unauthorized"))
        status, _, r = self.s.request("GET", "/reload", headers=AUTH)
        self.assertEqual((status, r.getheader("Allow")), (405, "POST"))

    def check_failed(self, line, etype):
        s = self.s
        status, data = self.reload()
        self.assertEqual(status, 500, data)
        err = data["error"]
        path = os.path.join(s.dir, "env.py")
        self.assertEqual((err["type"], err["file"], err["line"]), ("EnvLoadError", path, line))
        self.assertIn("%s:%d: %s" % (path, line, etype), err["message"])
        for method, p in (("POST", "/call"), ("GET", "/methods")):
            body = {"method": "value"} if method == "POST" else None
            status, data2, _ = s.request(method, p, body, AUTH)
            self.assertEqual((status, data2), (500, data), p)
        self.assertEqual(s.health(), (503, {"status": "failed"}))
        h = s.health(auth=True)[1]
        self.assertEqual((h["error"]["type"], h["error"]["file"], h["error"]["line"]),
                         (etype, path, line))
        poll(lambda: "reload failed: " in s.log(), 60, what="the reload logged")
        self.assertEqual(len([x for x in s.log().splitlines() if "reload failed" in x]), 1)
        # a good reload brings it back
        self.write("env.py", V2)
        self.assertEqual(self.reload()[0], 200)
        self.assertEqual(s.call("extra"), (200, {"result": "new"}))
        self.assertEqual(s.health(), (200, {"status": "ok"}))

    def test_syntax_error(self):
        self.write("env.py", "x = 1\n\ndef broken(:\n    pass\n")
        self.check_failed(3, "SyntaxError")

    def test_constructor_raises(self):
        self.write("env.py", "class Actor:\n    def __init__(self):\n"
                             "        raise RuntimeError('no model')\n")
        self.check_failed(3, "RuntimeError")


if __name__ == "__main__":
    unittest.main()
