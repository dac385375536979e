"""Startup and shutdown: loading env.py, secrets, auth settings, signals."""

import signal
import os
import time
import unittest

from shimtest import ACTOR_ENV, AUTH, Shim, call_bytes, poll


class StartupTest(unittest.TestCase):

    def start(self, src, **kw):
        s = Shim(src, **kw)
        self.addCleanup(s.close)
        return s

    def test_slow_constructor(self):
        s = self.start('''
            import os, time
            class Actor:
                def __init__(self):
                    while not os.path.exists("go"):
                        time.sleep(0.01)
                def hi(self):
                    return "hi"
        ''')
        self.assertEqual(s.health(), (503, {"status": "starting"}))
        status, data = s.call("hi")
        self.assertEqual(status, 503)
        self.assertEqual(data["error"]["type"], "NotReady")
        status, data, _ = s.request("GET", "/methods", headers=AUTH)
        self.assertEqual(status, 503)
        self.assertEqual(s.stats()["requests"], 1)  # /stats works while starting
        open(os.path.join(s.dir, "go"), "w").close()
        s.wait_ready()
        self.assertEqual(s.call("hi"), (200, {"result": "hi"}))

    def test_failing_constructor(self):
        s = self.start('''
            class Actor:
                def __init__(self):
                    raise RuntimeError("cannot open the model file 42")
                def hi(self):
                    return "hi"
        ''')
        data = s.failed()
        # without the token: the status only (a traceback can carry secrets)
        self.assertEqual(s.health(), (503, {"status": "failed"}))
        err = data["error"]
        self.assertEqual(err["type"], "RuntimeError")
        self.assertEqual(err["message"], "cannot open the model file 42")
        self.assertIn('raise RuntimeError("cannot open the model file 42")', err["traceback"])
        self.assertNotIn("server.py", err["traceback"])
        status, data = s.call("hi")
        self.assertEqual(status, 503)
        self.assertIn("cannot open the model file 42", data["error"]["message"])
        poll(lambda: "cannot open the model file 42" in s.log(), 5, what="traceback in stderr")
        self.assertIn("Traceback", s.log())
        time.sleep(0.2)
        self.assertIsNone(s.proc.poll())  # still running, still answering
        self.assertEqual(s.health()[1]["status"], "failed")

    def test_import_error(self):
        s = self.start("def broken(:\n    pass\n")
        data = s.failed()
        self.assertEqual(data["error"]["type"], "SyntaxError")

    def test_missing_env_py(self):
        s = self.start("", write_env=False)
        data = s.failed()
        self.assertEqual(data["error"]["type"], "FileNotFoundError")

    def test_module_functions(self):
        s = self.start('''
            import asyncio
            from os.path import join
            from os import getcwd as cwd
            LIMIT = 3
            class Helper:
                pass
            def greet(name: str, punct: str = "!") -> str:
                """Say hello."""
                return "hello " + name + punct
            async def agreet(name):
                await asyncio.sleep(0)
                return "hi " + name
            def _private():
                return 1
            helper = lambda: 1
        ''')
        s.wait_ready()
        status, data, _ = s.request("GET", "/methods", headers=AUTH)
        self.assertEqual(data["kind"], "module")
        names = {m["name"]: m for m in data["methods"]}
        self.assertEqual(set(names), {"greet", "agreet", "helper"})
        self.assertEqual(names["greet"]["source"], "module")
        self.assertEqual(names["greet"]["doc"], "Say hello.")
        self.assertEqual(names["greet"]["signature"], "(name: str, punct: str = '!') -> str")
        self.assertIs(names["agreet"]["async"], True)
        self.assertEqual(s.call("greet", "bob"), (200, {"result": "hello bob!"}))
        self.assertEqual(s.call("agreet", "bob"), (200, {"result": "hi bob"}))
        for name in ("join", "cwd", "_private", "Helper", "LIMIT", "asyncio"):
            self.assertEqual(s.call(name)[0], 404, name)

    def test_async_ainit(self):
        s = self.start('''
            import asyncio
            class Actor:
                def __init__(self):
                    self.ready = False
                async def __ainit__(self):
                    await asyncio.sleep(0.01)
                    self.ready = True
                def is_ready(self):
                    return self.ready
        ''')
        s.wait_ready()
        self.assertEqual(s.call("is_ready"), (200, {"result": True}))
        self.assertEqual(s.call("__ainit__")[0], 404)

    def test_secrets(self):
        s = self.start('''
            import os
            AT_IMPORT = os.environ.get("MY_SECRET")
            def secret():
                return [AT_IMPORT, os.environ.get("OTHER")]
        ''', secrets={"MY_SECRET": "s3cret", "OTHER": "two"})
        s.wait_ready()
        self.assertEqual(s.call("secret"), (200, {"result": ["s3cret", "two"]}))
        # kept for the next start of the container (docker restart): issue 11 defect 2
        self.assertTrue(os.path.exists(s.secrets_path))
        self.assertNotIn("s3cret", s.log())

    def test_bad_secrets_file_fails_startup(self):
        s = self.start("def f():\n    return 1\n", secrets=["not", "an", "object"])
        data = s.failed()
        self.assertIn("secrets file", data["error"]["message"])

    def test_empty_token_refuses_calls(self):
        s = self.start("def f():\n    return 1\n", token="")
        s.wait_ready()
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            status, data, _ = s.request("POST", "/call", {"method": "f"}, headers)
            self.assertEqual(status, 401)
        self.assertIn("RFENV_TOKEN is not set", data["error"]["message"])

    def test_insecure_no_auth(self):
        s = self.start("def f():\n    return 1\n", token="", env={"RFENV_INSECURE_NO_AUTH": "1"})
        s.wait_ready()
        status, data, _ = s.request("POST", "/call", {"method": "f"})
        self.assertEqual((status, data), (200, {"result": 1}))

    def test_sigterm_exits_fast(self):
        for busy in (False, True):
            s = self.start(ACTOR_ENV)
            s.wait_ready()
            rc = None
            if busy:  # a sync call that would run for 30 s, plus an async one
                rc = s.raw()
                rc.send(call_bytes("ssleep", [30]))
                rc2 = s.raw()
                rc2.send(call_bytes("sleep", [30]))
                poll(lambda: s.stats()["in_flight"] == 2, 5, what="calls in flight")
            t0 = time.monotonic()
            s.proc.send_signal(signal.SIGTERM)
            code = s.proc.wait(5)
            elapsed = time.monotonic() - t0
            self.assertLess(elapsed, 1.0)
            self.assertEqual(code, 0, s.log())
            if rc is not None:
                rc.close()
                rc2.close()

    def test_sigint_exits_fast(self):
        s = self.start("def f():\n    return 1\n")
        s.wait_ready()
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGINT)
        s.proc.wait(5)
        self.assertLess(time.monotonic() - t0, 1.0)


if __name__ == "__main__":
    unittest.main()
