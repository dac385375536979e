"""HTTP/1.1 keep-alive clients of rfenv serve: asyncio (for calls) and blocking (for the rest).

Both speak to a unix socket or to TCP (optionally TLS, with a bearer token). They are small on
purpose: a call's cost through rfenv serve should be the server's, not the client library's.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
import threading
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ._errors import InfraError, UsageError, from_body

# How many connections one event loop keeps to the server: calls beyond it wait for a free one.
MAX_CONNECTIONS = 256


class Target:
    """Where rfenv serve listens: ``unix:///path``, ``http://host:port`` or ``https://host:port``."""

    def __init__(self, url: str, token: str = "") -> None:
        if url.startswith("/"):
            url = "unix://" + url
        parts = urlsplit(url)
        self.url = url
        self.token = token
        self.scheme = parts.scheme
        if parts.scheme == "unix":
            self.path = parts.path
            self.host, self.port = "", 0
        elif parts.scheme in ("http", "https"):
            self.path = ""
            self.host, self.port = parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)
        else:
            raise InfraError("RFENV_SERVE=%r: expected unix:///path, http://HOST:PORT or https://HOST:PORT" % url)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        self._head = "Host: rfenv\r\n%sContent-Type: application/json\r\n" % auth

    def headers(self) -> Dict[str, str]:
        h = {"Host": "rfenv", "Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        return h


def _decode(status: int, data: bytes) -> Any:
    try:
        body = json.loads(data) if data else None
    except ValueError:
        raise InfraError("rfenv serve answered HTTP %d with a body that is not JSON: %r" % (status, data[:200]))
    if status >= 400:
        raise from_body(status, body)
    return body


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass


class AsyncClient:
    """A pool of keep-alive connections, for one event loop."""

    def __init__(self, target: Target) -> None:
        self.t = target
        self._idle: List[_Conn] = []
        self._sem = asyncio.Semaphore(MAX_CONNECTIONS)

    async def _open(self) -> _Conn:
        t = self.t
        try:
            if t.scheme == "unix":
                r, w = await asyncio.open_unix_connection(t.path, limit=1 << 22)
            else:
                r, w = await asyncio.open_connection(t.host, t.port, ssl=t.ssl, limit=1 << 22)
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            raise InfraError("cannot reach rfenv serve at %s: %s" % (t.url, e))
        return _Conn(r, w)

    async def request(self, method: str, path: str, body: Optional[bytes] = None) -> Any:
        """Send one request and return its decoded JSON answer (raising the error's exception)."""
        data = body or b""
        head = ("%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (method, path, self.t._head, len(data))).encode()
        async with self._sem:
            for attempt in (0, 1):
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._open()
                try:
                    conn.writer.write(head + data)
                    status, keep, payload = await _read_response(conn.reader)
                except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
                    conn.close()
                    # A reused connection the server had closed (it restarts idle ones): nothing
                    # of the request was read, so sending it again on a new one is safe.
                    if reused and attempt == 0 and not getattr(e, "partial_answer", False):
                        continue
                    raise InfraError("rfenv serve closed the connection: %s" % (e or type(e).__name__))
                except BaseException:
                    conn.close()  # cancelled mid-answer: the connection's state is unknown
                    raise
                if keep:
                    self._idle.append(conn)
                else:
                    conn.close()
                return _decode(status, payload)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for c in self._idle:
            c.close()
        self._idle = []


class _PartialAnswer(ConnectionError):
    partial_answer = True


async def _read_response(r: asyncio.StreamReader) -> Tuple[int, bool, bytes]:
    try:
        head = await r.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            # Closed before answering anything: the server dropped an idle connection.
            raise ConnectionResetError("connection closed before the answer")
        raise _PartialAnswer(str(e))
    try:
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = -1
        chunked = False
        keep = True
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v.strip())
            elif k == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
            elif k == "connection" and v.strip().lower() == "close":
                keep = False
        if chunked:
            parts = []
            while True:
                size = int((await r.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    await r.readuntil(b"\r\n")
                    break
                parts.append(await r.readexactly(size))
                await r.readexactly(2)
            return status, keep, b"".join(parts)
        if length >= 0:
            return status, keep, await r.readexactly(length)
        return status, False, await r.read()
    except (asyncio.IncompleteReadError, ConnectionError) as e:
        raise _PartialAnswer(str(e))


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: Optional[float]) -> None:
        super().__init__("rfenv", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class SyncClient:
    """Blocking keep-alive client: one connection per thread."""

    def __init__(self, target: Target) -> None:
        self.t = target
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None:
            t = self.t
            if t.scheme == "unix":
                c = _UnixHTTPConnection(t.path, None)
            elif t.scheme == "https":
                c = http.client.HTTPSConnection(t.host, t.port, context=t.ssl)
            else:
                c = http.client.HTTPConnection(t.host, t.port)
            self._local.conn = c
        return c

    def request(self, method: str, path: str, body: Optional[bytes] = None, raw: bool = False) -> Any:
        """Send one request; return the decoded JSON answer (or the bytes, with raw)."""
        for attempt in (0, 1):
            c = self._conn()
            reused = c.sock is not None
            try:
                c.request(method, path, body=body, headers=self.t.headers())
                resp = c.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                c.close()
                self._local.conn = None
                if reused and attempt == 0 and isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    continue
                raise InfraError("cannot reach rfenv serve at %s: %s" % (self.t.url, e))
            if resp.will_close:
                c.close()
                self._local.conn = None
            if raw and resp.status < 400:
                return data
            return _decode(resp.status, data)
        raise AssertionError("unreachable")

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None


def dumps(obj: Any) -> bytes:
    """JSON for the wire; a value JSON cannot carry is a usage error naming it."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise UsageError("arguments are not JSON-serialisable: %s" % e, field="args")
