"""Helpers of the shim's tests: the real server in a subprocess, raw sockets, an env.py.

Run the tests from the repository root:  python3 -m unittest discover -s shim -p 'test_*.py'
No container is needed.  The server runs under the same interpreter as the tests, so
running them with an old Python (e.g. 3.8) checks the server's compatibility too.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")  # the launcher of the rfenv_shim package
TOKEN = "0123456789abcdef" * 4
AUTH = {"Authorization": "Bearer " + TOKEN}


def poll(fn, timeout=60.0, interval=0.01, what="condition"):
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

    def __init__(self, env_src, env=None, token=TOKEN, secrets=None, write_env=True, files=None,
                 restarts_file=None):
        self.dir = tempfile.mkdtemp(prefix="rfenv-shim-test-")
        for name, src in (files or {}).items():  # other files of the code directory
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(textwrap.dedent(src))
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
            "RFENV_RESTARTS_FILE": restarts_file or os.path.join(self.dir, "restarts.json"),
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

    def health(self, auth=False):
        """GET /health; with auth=True, with the token (the details, not only the status)."""
        status, data, _ = self.request("GET", "/health", headers=AUTH if auth else None)
        return status, data

    def health_with(self, headers):
        status, data, _ = self.request("GET", "/health", headers=headers)
        return status, data

    def failed(self, timeout=60):
        """The authenticated /health body once the status is failed."""
        return poll(lambda: (lambda r: r[1] if r[1]["status"] == "failed" else None)(
            self.health(auth=True)), timeout, what="/health failed: " + self.log())

    def stats(self):
        status, data, _ = self.request("GET", "/stats", headers=AUTH)
        assert status == 200, (status, data)
        return data

    def wait_ready(self, timeout=60):
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
