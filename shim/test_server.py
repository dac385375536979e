"""Tests of shim/server.py over real sockets, against the real server in a subprocess.

Run from the repository root:  python3 -m unittest discover -s shim -p 'test_*.py'
No container is needed.  The server runs under the same interpreter as the tests, so
running them with an old Python (e.g. 3.8) checks the server's compatibility too.
"""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")
TOKEN = "0123456789abcdef" * 4
AUTH = {"Authorization": "Bearer " + TOKEN}


def poll(fn, timeout=10.0, interval=0.01, what="condition"):
    """Call fn until it returns a truthy value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class Shim(object):
    """The server in a subprocess, serving env_src as env.py."""

    def __init__(self, env_src, env=None, token=TOKEN, secrets=None, write_env=True):
        self.dir = tempfile.mkdtemp(prefix="rfenv-shim-test-")
        if write_env:
            with open(os.path.join(self.dir, "env.py"), "w") as f:
                f.write(textwrap.dedent(env_src))
        self.secrets_path = os.path.join(self.dir, "secrets.json")
        if secrets is not None:
            with open(self.secrets_path, "w") as f:
                json.dump(secrets, f)
        e = {k: v for k, v in os.environ.items() if not k.startswith("RFENV_")}
        e.update({
            "RFENV_PORT": "0",
            "RFENV_HOST": "127.0.0.1",
            "RFENV_APP_DIR": self.dir,
            "RFENV_TOKEN": token,
            "RFENV_SECRETS_FILE": self.secrets_path,
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        e.update(env or {})
        self.proc = subprocess.Popen([sys.executable, SERVER], env=e, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.stderr = []
        self._port = None
        self._port_seen = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        if not self._port_seen.wait(15):
            self.close()
            raise AssertionError("the shim did not start: %s" % "".join(self.stderr))
        self.port = self._port

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.stderr.append(line)
            m = re.search(r"listening on [\d.]+:(\d+)", line)
            if m and self._port is None:
                self._port = int(m.group(1))
                self._port_seen.set()
        self._port_seen.set()

    def log(self):
        return "".join(self.stderr)

    def check_log(self):
        """The server logged no unexpected error (e.g. an exception in a loop callback)."""
        log = self.log()
        for bad in ("Traceback", "Exception in callback", "Task exception", "Error on reading",
                    "was never retrieved", "Fatal"):
            if bad in log:
                raise AssertionError("the shim logged %r:\n%s" % (bad, log))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- HTTP helpers ---------------------------------------------------------

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None, timeout=10):
        c = conn or self.conn(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            raw = r.read()
            data = json.loads(raw.decode("utf-8")) if raw else None
            return r.status, data, r
        finally:
            if conn is None:
                c.close()

    def call(self, method, *args, **kwargs):
        """POST /call; returns (status, decoded body)."""
        headers = dict(AUTH)
        headers.update(kwargs.pop("_headers", {}))
        status, data, _ = self.request("POST", "/call", {"method": method, "args": list(args),
                                                         "kwargs": kwargs}, headers,
                                       timeout=kwargs.pop("_timeout", 10))
        return status, data

    def health(self):
        status, data, _ = self.request("GET", "/health")
        return status, data

    def stats(self):
        status, data, _ = self.request("GET", "/stats", headers=AUTH)
        assert status == 200, (status, data)
        return data

    def wait_ready(self, timeout=15):
        return poll(lambda: self.health()[0] == 200, timeout, what="/health ok: " + self.log())

    def raw(self, timeout=10):
        return RawConn(self.port, timeout)


class RawConn(object):
    """A plain socket with an HTTP/1.1 response reader that keeps pipelined bytes."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def response(self):
        """(status, headers (lower-case names), body bytes)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self, timeout=5):
        """Whether the server closes the connection (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def call_bytes(method, args=(), kwargs=None, token=TOKEN, extra=b"", version=b"HTTP/1.1"):
    body = json.dumps({"method": method, "args": list(args), "kwargs": kwargs or {}}).encode()
    return (b"POST /call " + version + b"\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
            + b"\r\nContent-Type: application/json\r\n" + extra
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


ACTOR_ENV = '''
import asyncio
import dataclasses
import os
import time
from json import JSONEncoder
from os.path import join


@dataclasses.dataclass
class Point:
    x: int
    y: float


class PydanticLike:
    def model_dump(self):
        return {"a": 1}


class FakeNdarray:
    """Stands in for numpy.ndarray (numpy is not installed here): same module, same tolist()."""
    __module__ = "numpy"

    def tolist(self):
        return [[1, 2], [3, 4]]


class NotNumpy:
    def tolist(self):
        return [1]


class HasToDict:
    def to_dict(self):
        return {"b": 2}


class Foo:
    pass


class Base:
    def inherited(self):
        """From a base class in env.py."""
        return "base"

    def overridden(self):
        return "base"


class Actor(Base, JSONEncoder):
    limit = 5
    imported = join

    def __init__(self):
        JSONEncoder.__init__(self)
        self.value = 3
        self.cancelled = 0
        self.cwd = os.getcwd()

    def add(self, a, b):
        """Add two numbers.

        More text."""
        return a + b

    async def aadd(self, a: int, b: int = 2) -> int:
        return a + b

    def kw(self, a, *, scale=1, **extra):
        return {"a": a, "scale": scale, "extra": extra}

    @staticmethod
    def static(x):
        return x * 2

    @classmethod
    def clsm(cls, x):
        return cls.__name__ + str(x)

    def overridden(self):
        return "actor"

    def _private(self):
        return "secret"

    def boom(self):
        raise ValueError("bad value 7")

    async def aboom(self):
        await asyncio.sleep(0)
        raise KeyError("k")

    def echo(self, x):
        return x

    def special(self):
        return [float("nan"), float("inf"), -float("inf"), {"k": float("nan")}, 1.5,
                {float("inf"): "key"}]

    def convert(self):
        return {"bytes": b"\\x00\\x01hi", "point": Point(1, 2.5), "tuple": (1, (2, 3)),
                "set": {3}, "frozen": frozenset([4]), "pyd": PydanticLike(),
                "td": HasToDict(), "nd": FakeNdarray(), 1: "intkey", "surrogate": "a\\udc80b", "none": None}

    def bad(self):
        return {"x": [Foo()]}

    def notnumpy(self):
        return NotNumpy()

    def badkey(self):
        return {(1, 2): 3}

    def where(self):
        return self.cwd

    def ssleep(self, s):
        time.sleep(s)
        return s

    async def sleep(self, s):
        try:
            await asyncio.sleep(s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return s

    def cancelled_count(self):
        return self.cancelled
'''

ACTOR_METHODS = {"add", "aadd", "kw", "static", "clsm", "overridden", "boom", "aboom", "echo",
                 "special", "convert", "bad", "notnumpy", "badkey", "where", "ssleep", "sleep",
                 "cancelled_count", "inherited"}


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
        self.assertEqual(self.shim.health(), (200, {"status": "ok", "overdue": 0}))

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

    def test_surrogates_escaped_and_body_is_utf8(self):
        rc = self.shim.raw()
        try:
            rc.send(call_bytes("echo", ["\u2603\udc80"]))
            status, _, raw = rc.response()
        finally:
            rc.close()
        self.assertEqual(status, 200)
        raw.decode("ascii")  # ensure_ascii: always valid UTF-8 (ASCII even)
        self.assertIn(b"\\u2603\\udc80", raw)

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

    def test_large_payload(self):
        big = "x" * (16 << 20)
        status, data = self.shim.call("echo", big, _timeout=60)
        self.assertEqual(status, 200)
        self.assertEqual(len(data["result"]), len(big))
        self.assertTrue(data["result"] == big)

    def test_body_over_limit(self):
        rc = self.shim.raw()
        try:
            rc.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                    + b"\r\nContent-Length: %d\r\n\r\n" % ((64 << 20) + 1) + b"x" * 100000)
            status, headers, body = rc.response()
            self.assertEqual(status, 413)
            self.assertEqual(headers.get("connection"), "close")
            self.assertEqual(json.loads(body)["error"]["type"], "PayloadTooLarge")
            self.assertTrue(rc.closed())
        finally:
            rc.close()
        rc = self.shim.raw()
        try:
            rc.send(b"POST /call HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
            self.assertEqual(rc.response()[0], 413)
        finally:
            rc.close()

    def test_too_many_headers(self):
        rc = self.shim.raw()
        try:
            hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
            rc.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
            status, headers, _ = rc.response()
            self.assertEqual(status, 431)
            self.assertTrue(rc.closed())
        finally:
            rc.close()
        rc = self.shim.raw()
        try:  # exactly 100 headers is fine
            hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(99))
            rc.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
            self.assertEqual(rc.response()[0], 200)
        finally:
            rc.close()

    def test_header_bytes_over_limit(self):
        rc = self.shim.raw()
        try:
            rc.send(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (70 << 10))
            status, _, _ = rc.response()
            self.assertEqual(status, 431)
            self.assertTrue(rc.closed())
        finally:
            rc.close()

    def test_garbage(self):
        for junk in (b"hello world\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                     b"GET /health HTTP/2.0\r\n\r\n", b"GET health HTTP/1.1\r\n\r\n",
                     b"GET /health HTTP/1.1 extra\r\n\r\n",
                     b"POST /call HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                     b"POST /call HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                     b"POST /call HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"):
            rc = self.shim.raw()
            try:
                rc.send(junk)
                status, headers, body = rc.response()
                self.assertEqual(status, 400, junk)
                self.assertEqual(json.loads(body)["error"]["type"], "BadRequest")
                self.assertTrue(rc.closed(), junk)
            finally:
                rc.close()

    def test_chunked_is_refused(self):
        rc = self.shim.raw()
        try:
            rc.send(b"POST /call HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            status, _, _ = rc.response()
            self.assertEqual(status, 411)
            self.assertTrue(rc.closed())
        finally:
            rc.close()

    def test_pipelined_in_one_packet(self):
        rc = self.shim.raw()
        try:
            rc.send(call_bytes("ssleep", [0.05]) + b"GET /health HTTP/1.1\r\n\r\n"
                    + call_bytes("aadd", [1]) + call_bytes("add", [2, 3])
                    + call_bytes("nope") + call_bytes("echo", ["last"]))
            results = [rc.response() for _ in range(6)]
        finally:
            rc.close()
        self.assertEqual([r[0] for r in results], [200, 200, 200, 200, 404, 200])
        self.assertEqual(json.loads(results[0][2]), {"result": 0.05})
        self.assertEqual(json.loads(results[2][2]), {"result": 3})
        self.assertEqual(json.loads(results[3][2]), {"result": 5})
        self.assertEqual(json.loads(results[5][2]), {"result": "last"})

    def test_large_pipelined_request_behind_a_slow_call(self):
        # more than the read-pause threshold arrives while a call runs: reading pauses and
        # resumes, and both requests are answered in order
        rc = self.shim.raw(timeout=30)
        try:
            big = "y" * (3 << 20)
            data = call_bytes("ssleep", [0.2]) + call_bytes("echo", [big])
            sender = threading.Thread(target=rc.send, args=(data,))
            sender.start()
            s1, _, b1 = rc.response()
            s2, _, b2 = rc.response()
            sender.join()
        finally:
            rc.close()
        self.assertEqual((s1, json.loads(b1)), (200, {"result": 0.2}))
        self.assertEqual(s2, 200)
        self.assertTrue(json.loads(b2)["result"] == big)

    def test_split_across_packets(self):
        rc = self.shim.raw()
        try:
            data = call_bytes("add", [20, 22])
            for i in range(0, len(data), 7):
                rc.send(data[i:i + 7])
                if i < 60:
                    time.sleep(0.002)
            status, _, body = rc.response()
            self.assertEqual((status, json.loads(body)), (200, {"result": 42}))
            rc.send(data)  # keep-alive: the same connection goes on
            self.assertEqual(rc.response()[0], 200)
        finally:
            rc.close()

    def test_expect_100_continue(self):
        rc = self.shim.raw()
        try:
            body = json.dumps({"method": "add", "args": [1, 1]}).encode()
            rc.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                    + b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            status, _, _ = rc.response()
            self.assertEqual(status, 100)
            rc.send(body)
            status, _, raw = rc.response()
            self.assertEqual((status, json.loads(raw)), (200, {"result": 2}))
        finally:
            rc.close()

    def test_http10_and_connection_close(self):
        rc = self.shim.raw()
        try:
            rc.send(b"GET /health HTTP/1.0\r\n\r\n")
            status, headers, _ = rc.response()
            self.assertEqual((status, headers.get("connection")), (200, "close"))
            self.assertTrue(rc.closed())
        finally:
            rc.close()
        rc = self.shim.raw()
        try:
            rc.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = rc.response()
            self.assertEqual((status, headers.get("connection")), (200, "keep-alive"))
            rc.send(b"GET /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            self.assertEqual(rc.response()[0], 200)
        finally:
            rc.close()
        rc = self.shim.raw()
        try:
            rc.send(call_bytes("add", [1, 2], extra=b"Connection: close\r\n")
                    + b"GET /health HTTP/1.1\r\n\r\n")
            status, headers, body = rc.response()
            self.assertEqual((status, headers.get("connection")), (200, "close"))
            self.assertTrue(rc.closed())
            self.assertEqual(rc.buf, b"")  # the pipelined request after it is not answered
        finally:
            rc.close()

    def test_slow_client_does_not_block_others(self):
        slow = self.shim.raw()
        try:
            slow.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                      + b"\r\nContent-Length: 40\r\n\r\n{\"meth")
            t0 = time.monotonic()
            self.assertEqual(self.shim.call("add", 1, 2), (200, {"result": 3}))
            self.assertEqual(self.shim.health()[0], 200)
            self.assertLess(time.monotonic() - t0, 2)
            slow.send(b'od": "add", "args": [1, 2]}' + b" " * 7)  # now 40 bytes
            status, _, body = slow.response()
            self.assertEqual((status, json.loads(body)), (200, {"result": 3}))
        finally:
            slow.close()

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
        self.assertEqual(set(after), {"requests", "in_flight", "errors", "overdue", "uptime_s",
                                      "latency_ms"})
        self.assertEqual(set(after["latency_ms"]), {"mean", "p50"})
        self.assertGreater(after["uptime_s"], 0)
        self.assertGreater(after["latency_ms"]["mean"], 0)


class DeadlineTest(unittest.TestCase):
    """Deadlines and cancellation; each test gets a fresh server (stats start at zero)."""

    def setUp(self):
        self.shim = Shim(ACTOR_ENV)
        self.shim.wait_ready()

    def tearDown(self):
        try:
            self.shim.check_log()
        finally:
            self.shim.close()

    def test_async_deadline(self):
        s = self.shim
        t0 = time.monotonic()
        status, data = s.call("sleep", 30, _headers={"X-Rfenv-Timeout-Ms": "200"})
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 504)
        self.assertEqual(data["error"]["type"], "DeadlineExceeded")
        self.assertGreater(elapsed, 0.15)
        self.assertLess(elapsed, 2)
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight 0")
        self.assertEqual(s.call("cancelled_count"), (200, {"result": 1}))
        st = s.stats()
        self.assertEqual(st["overdue"], 0)
        self.assertEqual(s.health()[0], 200)
        # a deadline that is not reached changes nothing
        self.assertEqual(s.call("sleep", 0.01, _headers={"X-Rfenv-Timeout-Ms": "5000"}),
                         (200, {"result": 0.01}))

    def test_expired_deadline(self):
        status, data = self.shim.call("add", 1, 2, _headers={"X-Rfenv-Timeout-Ms": "0"})
        self.assertEqual(status, 504)
        status, data = self.shim.call("add", 1, 2, _headers={"X-Rfenv-Timeout-Ms": "soon"})
        self.assertEqual(status, 400)
        status, data = self.shim.call("add", 1, 2, _headers={"X-Rfenv-Timeout-Ms": "9" * 4000})
        self.assertEqual((status, data), (200, {"result": 3}))

    def test_sync_deadline_overdue(self):
        s = self.shim
        t0 = time.monotonic()
        status, data = s.call("ssleep", 1.0, _headers={"X-Rfenv-Timeout-Ms": "100"})
        self.assertEqual(status, 504)
        self.assertLess(time.monotonic() - t0, 0.8)
        self.assertEqual(s.health(), (503, {"status": "busy", "overdue": 1}))
        st = s.stats()
        self.assertEqual((st["overdue"], st["in_flight"]), (1, 0))
        # other calls are still served meanwhile
        self.assertEqual(s.call("add", 2, 2), (200, {"result": 4}))
        poll(lambda: s.health()[0] == 200, 5, what="/health ok after the thread returned")
        self.assertEqual(s.health(), (200, {"status": "ok", "overdue": 0}))
        self.assertEqual(s.stats()["overdue"], 0)

    def test_disconnect_cancels_async_call(self):
        s = self.shim
        rc = s.raw()
        rc.send(call_bytes("sleep", [30]))
        poll(lambda: s.stats()["in_flight"] == 1, 5, what="the call in flight")
        rc.close()
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight back to 0")
        self.assertEqual(s.call("cancelled_count"), (200, {"result": 1}))

    def test_half_close_cancels_async_call(self):
        s = self.shim
        rc = s.raw()
        rc.send(call_bytes("sleep", [30]))
        poll(lambda: s.stats()["in_flight"] == 1, 5, what="the call in flight")
        rc.sock.shutdown(socket.SHUT_WR)  # what Go's transport does on cancel: FIN
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight back to 0")
        self.assertTrue(rc.closed())
        rc.close()

    def test_disconnect_during_sync_call(self):
        s = self.shim
        rc = s.raw()
        rc.send(call_bytes("ssleep", [0.3]))
        poll(lambda: s.stats()["in_flight"] == 1, 5, what="the call in flight")
        rc.close()
        # the thread cannot be stopped; it finishes and its result is dropped
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight back to 0")
        self.assertEqual(s.call("add", 1, 2), (200, {"result": 3}))

    def test_partial_request_times_out(self):
        s2 = Shim(ACTOR_ENV, env={"RFENV_REQUEST_TIMEOUT": "0.5"})
        try:
            s2.wait_ready()
            idle = s2.raw()
            partial = s2.raw()
            partial.send(b"POST /call HTTP/1.1\r\nContent-Len")
            t0 = time.monotonic()
            status, _, _ = partial.response()
            self.assertEqual(status, 408)
            self.assertLess(time.monotonic() - t0, 3)
            self.assertTrue(partial.closed())
            partial.close()
            stalled = s2.raw()  # complete headers, stalled body
            stalled.send(b"POST /call HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            self.assertEqual(stalled.response()[0], 408)
            self.assertTrue(stalled.closed())
            stalled.close()
            # an idle keep-alive connection without a partial request stays open
            idle.send(b"GET /health HTTP/1.1\r\n\r\n")
            self.assertEqual(idle.response()[0], 200)
            idle.close()
        finally:
            s2.close()


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
        status, data = poll(lambda: (lambda r: r if r[1]["status"] != "starting" else None)(
            s.health()), 10, what="not starting")
        self.assertEqual(status, 503)
        self.assertEqual(data["status"], "failed")
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
        data = poll(lambda: (lambda r: r[1] if r[1]["status"] == "failed" else None)(s.health()),
                    10, what="failed")
        self.assertEqual(data["error"]["type"], "SyntaxError")

    def test_missing_env_py(self):
        s = self.start("", write_env=False)
        data = poll(lambda: (lambda r: r[1] if r[1]["status"] == "failed" else None)(s.health()),
                    10, what="failed")
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
        self.assertFalse(os.path.exists(s.secrets_path))
        self.assertNotIn("s3cret", s.log())

    def test_bad_secrets_file_fails_startup(self):
        s = self.start("def f():\n    return 1\n", secrets=["not", "an", "object"])
        data = poll(lambda: (lambda r: r[1] if r[1]["status"] == "failed" else None)(s.health()),
                    10, what="failed")
        self.assertIn("secrets file", data["error"]["message"])
        self.assertFalse(os.path.exists(s.secrets_path))

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
