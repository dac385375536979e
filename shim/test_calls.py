"""Calls against one shared server with an Actor: methods, binding, auth, errors, conversions."""

import base64
import os
import threading
import time
import unittest

from shimtest import ACTOR_ENV, ACTOR_METHODS, AUTH, TOKEN, Shim, poll


class ActorTest(unittest.TestCase):
    """One shared server with an Actor; tests that leave no state behind."""

    @classmethod
    def setUpClass(cls):
        cls.shim = Shim(ACTOR_ENV)
        cls.shim.wait_ready()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.shim.check_log()
        finally:
            cls.shim.close()

    def test_health_ok(self):
        self.assertEqual(self.shim.health(), (200, {"status": "ok"}))
        status, h = self.shim.health(auth=True)
        self.assertEqual(status, 200)
        self.assertEqual(set(h), {"status", "boot_id", "capacity", "in_flight", "queued", "overdue"})
        self.assertRegex(h["boot_id"], "^[0-9a-f]{32}$")
        self.assertEqual(h["boot_id"], self.shim.stats()["boot_id"])
        # a mixed Actor: the async limit plus the sync pool
        self.assertEqual(h["capacity"], 4096 + min(32, (os.cpu_count() or 1) + 4))
        self.assertEqual((h["status"], h["queued"], h["overdue"]), ("ok", 0, 0))
        status, h = self.shim.health_with({"Authorization": "Bearer wrong"})
        self.assertEqual((status, h), (200, {"status": "ok"}))

    def test_methods(self):
        status, data, _ = self.shim.request("GET", "/methods", headers=AUTH)
        self.assertEqual(status, 200)
        self.assertEqual(data["kind"], "actor")
        by_name = {m["name"]: m for m in data["methods"]}
        self.assertEqual(set(by_name), ACTOR_METHODS)
        add = by_name["add"]
        self.assertEqual(add["signature"], "(a, b)")
        self.assertEqual(add["doc"], "Add two numbers.")
        self.assertIs(add["async"], False)
        self.assertEqual(add["source"], "actor")
        self.assertEqual(add["parameters"][0], {"name": "a", "kind": "POSITIONAL_OR_KEYWORD",
                                                "annotation": None, "default": None,
                                                "has_default": False})
        aadd = by_name["aadd"]
        self.assertIs(aadd["async"], True)
        self.assertEqual(aadd["signature"], "(a: int, b: int = 2) -> int")
        self.assertEqual(aadd["parameters"][1], {"name": "b", "kind": "POSITIONAL_OR_KEYWORD",
                                                 "annotation": "int", "default": "2",
                                                 "has_default": True})
        kinds = [p["kind"] for p in by_name["kw"]["parameters"]]
        self.assertEqual(kinds, ["POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY", "VAR_KEYWORD"])
        self.assertEqual(by_name["static"]["signature"], "(x)")
        self.assertEqual(by_name["clsm"]["signature"], "(x)")
        self.assertEqual(by_name["inherited"]["doc"], "From a base class in env.py.")

    def test_calls(self):
        s = self.shim
        self.assertEqual(s.call("add", 1, 2), (200, {"result": 3}))
        self.assertEqual(s.call("add", "a", b="b"), (200, {"result": "ab"}))
        self.assertEqual(s.call("aadd", 40), (200, {"result": 42}))
        self.assertEqual(s.call("kw", 1, scale=3, z=9),
                         (200, {"result": {"a": 1, "scale": 3, "extra": {"z": 9}}}))
        self.assertEqual(s.call("static", 21), (200, {"result": 42}))
        self.assertEqual(s.call("clsm", 1), (200, {"result": "Actor1"}))
        self.assertEqual(s.call("inherited"), (200, {"result": "base"}))
        self.assertEqual(s.call("overridden"), (200, {"result": "actor"}))
        self.assertEqual(s.call("where"), (200, {"result": os.path.realpath(s.dir)}))

    def test_args_and_kwargs_optional(self):
        status, data, _ = self.shim.request("POST", "/call", {"method": "inherited"}, AUTH)
        self.assertEqual((status, data), (200, {"result": "base"}))

    def test_bind_error(self):
        for args, kwargs in (([1], {}), ([1, 2, 3], {}), ([1], {"c": 2}), ([1], {"a": 2})):
            status, data = self.shim.call("add", *args, **kwargs)
            self.assertEqual(status, 400, data)
            self.assertEqual(data["error"]["type"], "TypeError")
            self.assertIn("signature: add(a, b)", data["error"]["message"])
        status, data = self.shim.call("add", 1)
        self.assertIn("missing a required argument: 'b'", data["error"]["message"])
        status, data = self.shim.call("kw")  # no positional: bind() decides
        self.assertEqual(status, 400)

    def test_auth(self):
        s = self.shim
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": "Bearer " + TOKEN + "x"}):
            for method, path in (("POST", "/call"), ("GET", "/methods"), ("GET", "/stats")):
                body = {"method": "add", "args": [1, 2]} if method == "POST" else None
                status, data, r = s.request(method, path, body, headers)
                self.assertEqual(status, 401, (headers, path))
                self.assertEqual(data["error"]["type"], "Unauthorized")
                self.assertIn("Bearer", r.getheader("WWW-Authenticate"))
        status, data, _ = s.request("GET", "/health")
        self.assertEqual(status, 200)

    def test_not_found(self):
        s = self.shim
        for name in ("nope", "__init__", "_private", "__getattribute__", "__setattr__",
                     "imported", "join", "limit", "value", "encode", "default", "iterencode",
                     "__class__"):
            status, data = s.call(name)
            self.assertEqual(status, 404, name)
            self.assertEqual(data["error"]["type"], "NotFound")
            self.assertIn("available: aadd, aboom, add,", data["error"]["message"])
        status, data, _ = s.request("GET", "/nope")
        self.assertEqual(status, 404)

    def test_method_not_allowed(self):
        status, data, r = self.shim.request("GET", "/call", headers=AUTH)
        self.assertEqual(status, 405)
        self.assertEqual(r.getheader("Allow"), "POST")
        status, data, r = self.shim.request("POST", "/health", b"{}")
        self.assertEqual(status, 405)

    def test_method_raises(self):
        status, data = self.shim.call("boom")
        self.assertEqual(status, 500)
        err = data["error"]
        self.assertEqual(err["type"], "ValueError")
        self.assertEqual(err["message"], "bad value 7")
        self.assertIn('raise ValueError("bad value 7")', err["traceback"])
        self.assertIn("env.py", err["traceback"])
        self.assertNotIn("server.py", err["traceback"])
        status, data = self.shim.call("aboom")
        self.assertEqual(status, 500)
        self.assertEqual(data["error"]["type"], "KeyError")
        self.assertEqual(data["error"]["message"], "'k'")
        self.assertNotIn("server.py", data["error"]["traceback"])

    def test_bad_requests(self):
        s = self.shim
        cases = [b"not json", b"[1, 2]", b'{"args": []}', b'{"method": 3}',
                 b'{"method": "add", "args": {"a": 1}}', b'{"method": "add", "kwargs": [1]}',
                 b'{"method": "add", "args": [1, 2]', b"\xff\xfe", b""]
        for body in cases:
            status, data, _ = s.request("POST", "/call", body, AUTH)
            self.assertEqual(status, 400, body)
            self.assertEqual(data["error"]["type"], "BadRequest", body)

    def test_conversions(self):
        status, data = self.shim.call("special")
        self.assertEqual(status, 200)
        self.assertEqual(data["result"], ["NaN", "Infinity", "-Infinity", {"k": "NaN"}, 1.5,
                                          {"Infinity": "key"}])
        status, _, r = self.shim.request("POST", "/call", {"method": "convert"}, AUTH)
        self.assertEqual(status, 200)
        c = self.shim.request("POST", "/call", {"method": "convert"}, AUTH)[1]["result"]
        self.assertEqual(base64.b64decode(c["bytes"]), b"\x00\x01hi")
        self.assertEqual(c["point"], {"x": 1, "y": 2.5})
        self.assertEqual(c["tuple"], [1, [2, 3]])
        self.assertEqual(c["set"], [3])
        self.assertEqual(c["frozen"], [4])
        self.assertEqual(c["pyd"], {"a": 1})
        self.assertEqual(c["td"], {"b": 2})
        self.assertEqual(c["nd"], [[1, 2], [3, 4]])
        self.assertEqual(self.shim.call("notnumpy")[0], 500)  # tolist() alone is no licence
        self.assertEqual(c["1"], "intkey")
        self.assertEqual(c["surrogate"], "a\udc80b")
        self.assertIsNone(c["none"])

    def test_not_serialisable(self):
        status, data = self.shim.call("bad")
        self.assertEqual(status, 500)
        self.assertEqual(data["error"]["type"], "TypeError")
        self.assertRegex(data["error"]["message"],
                         r"^result of bad is not JSON-serialisable: object of type Foo ")
        status, data = self.shim.call("badkey")
        self.assertEqual(status, 500)
        self.assertIn("result of badkey is not JSON-serialisable", data["error"]["message"])
        self.assertIn("tuple", data["error"]["message"])

    def test_calls_run_concurrently(self):
        s = self.shim
        results = {}

        def run(key, *call):
            results[key] = s.call(*call)

        t0 = time.monotonic()
        threads = [threading.Thread(target=run, args=("s%d" % i, "ssleep", 0.4)) for i in range(4)]
        threads.append(threading.Thread(target=run, args=("a", "sleep", 0.4)))
        for t in threads:
            t.start()
        # an instant call is not held up by the sleeping ones
        poll(lambda: s.stats()["in_flight"] >= 5, 5, what="5 calls in flight")
        t1 = time.monotonic()
        self.assertEqual(s.call("add", 1, 1), (200, {"result": 2}))
        self.assertLess(time.monotonic() - t1, 0.3)
        for t in threads:
            t.join()
        self.assertLess(time.monotonic() - t0, 1.2)  # not 5 x 0.4 s
        self.assertEqual(results["a"], (200, {"result": 0.4}))
        self.assertEqual(results["s3"], (200, {"result": 0.4}))

    def test_stats(self):
        s = self.shim
        before = s.stats()
        s.call("add", 1, 2)
        s.call("boom")
        s.call("nope")
        after = s.stats()
        self.assertEqual(after["requests"] - before["requests"], 3)
        self.assertEqual(after["errors"] - before["errors"], 2)
        self.assertEqual(set(after), {"boot_id", "requests", "capacity", "in_flight", "queued",
                                      "errors", "overdue", "uptime_s", "latency_ms", "restarts"})
        self.assertEqual(after["restarts"], {"overdue": 0, "last": None})
        self.assertEqual(set(after["latency_ms"]), {"mean", "p50"})
        self.assertGreater(after["uptime_s"], 0)
        self.assertGreater(after["latency_ms"]["mean"], 0)


if __name__ == "__main__":
    unittest.main()
