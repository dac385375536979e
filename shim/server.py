#!/usr/bin/env python3
"""rfenv shim: the HTTP server that rfenv injects into function-based images.

It serves the methods of /app/env.py (an ``Actor`` class or module-level functions)
over HTTP/1.1.  The wire protocol is "version 1" of ARCHITECTURE.md ("Wire protocol
between rfenv and the shim"); choices beyond it are in shim/README.md.

Standard library only, Python 3.8+.  Runs as the container's PID 1:
``CMD ["python3", "/rfenv/shim.py"]``.

Environment:
  RFENV_TOKEN             bearer token required on /call, /methods, /stats
  RFENV_INSECURE_NO_AUTH  "1": serve without auth when RFENV_TOKEN is empty
  RFENV_PORT              port to listen on (default 8000; 0 picks a free one)
  RFENV_HOST              address to listen on (default 0.0.0.0)
  RFENV_APP_DIR           directory holding env.py (default /app)
  RFENV_SECRETS_FILE      secrets JSON (default /run/rfenv/secrets.json)
  RFENV_THREADS           worker threads for sync methods (default 32)
  RFENV_MAX_BODY          request body limit in bytes (default 64 MiB)
  RFENV_REQUEST_TIMEOUT   seconds a partial request may stall (default 30)
  RFENV_UVLOOP            "1": use uvloop if importable (default: stdlib asyncio)
"""

import asyncio
import base64
import collections
import dataclasses
import hmac
import importlib.util
import inspect
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback

# The wire-protocol version.  Keep in sync with `Version` in shim/embed.go (the Go
# side labels images with it: rfenv.shim.version).
SHIM_VERSION = "1"

_perf = time.perf_counter
_mono = time.monotonic
_compare = hmac.compare_digest
_SHIM_FILE = os.path.abspath(__file__) if "__file__" in globals() else ""


def _env_num(name, default, conv=int):
    v = os.environ.get(name, "").strip()
    if not v:
        return default
    try:
        return conv(v)
    except ValueError:
        _log("ignoring invalid %s=%r" % (name, v))
        return default


def _log(msg):
    try:
        sys.stderr.write("rfenv-shim: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


MAX_BODY = 64 << 20
MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 << 10
REQUEST_TIMEOUT = 30.0
PAUSE_READ_AT = 256 << 10  # pipelined bytes buffered behind a running call
LINGER = 2.0  # seconds to drain a connection we are closing after an error

_REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    411: "Length Required", 413: "Content Too Large",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    503: "Service Unavailable", 504: "Gateway Timeout",
}
_PREFIXES = {}


def _prefix(code, extra=b""):
    """Status line and headers up to (not including) the Content-Length value."""
    key = (code, extra)
    p = _PREFIXES.get(key)
    if p is None:
        p = (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: "
             % (code, _REASONS[code].encode(), extra))
        _PREFIXES[key] = p
    return p


P200 = _prefix(200)
P400 = _prefix(400)
P401 = _prefix(401, b'WWW-Authenticate: Bearer realm="rfenv"\r\n')
P404 = _prefix(404)
P405_GET = _prefix(405, b"Allow: GET\r\n")
P405_POST = _prefix(405, b"Allow: POST\r\n")
P500 = _prefix(500)
P503 = _prefix(503)
P504 = _prefix(504)

SUFFIX_KEEP = b"\r\n\r\n"
SUFFIX_CLOSE = b"\r\nConnection: close\r\n\r\n"
SUFFIX_KEEP10 = b"\r\nConnection: keep-alive\r\n\r\n"

_decode = json.JSONDecoder().decode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def _jbytes(obj):
    return _dumps_ascii(obj).encode("ascii")


def _err_body(etype, message, tb=""):
    return _jbytes({"error": {"type": etype, "message": message, "traceback": tb}})


def _exc_info(e):
    """(type, message, traceback) of an exception, without the shim's own frames."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == _SHIM_FILE:
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(e), e, tb))
    except Exception:  # a broken __str__ must not break error reporting
        text = "<traceback unavailable>"
    try:
        msg = str(e)
    except Exception:
        msg = "<unprintable %s>" % type(e).__name__
    return type(e).__name__, msg, text


def _exc_body(e):
    t, m, tb = _exc_info(e)
    return _err_body(t, m, tb)


BODY_401 = _err_body("Unauthorized", "missing or wrong bearer token")
BODY_401_NOTOKEN = _err_body(
    "Unauthorized", "RFENV_TOKEN is not set in the container; every call is refused")
BODY_404_PATH = _err_body("NotFound", "unknown path; the shim serves /health, /methods, /call, /stats")
BODY_405_GET = _err_body("MethodNotAllowed", "use GET")
BODY_405_POST = _err_body("MethodNotAllowed", "use POST")
BODY_STARTING = b'{"status":"starting"}'
BODY_OK = b'{"status":"ok","overdue":0}'
BODY_504 = _err_body("DeadlineExceeded", "the call's deadline (X-Rfenv-Timeout-Ms) passed")
BODY_NOT_READY = _err_body("NotReady", "the environment is still starting")

# ---------------------------------------------------------------------------
# Result conversion


def _default(o):
    """json `default` hook: the conversions of the contract, else TypeError."""
    if isinstance(o, (set, frozenset)):
        return list(o)
    if isinstance(o, (bytes, bytearray, memoryview)):
        return base64.b64encode(o).decode("ascii")
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if not isinstance(o, type):
        f = getattr(o, "model_dump", None)  # pydantic v2
        if f is not None and callable(f):
            return f()
        if hasattr(o, "__fields__"):  # pydantic v1
            f = getattr(o, "dict", None)
            if f is not None and callable(f):
                return f()
        f = getattr(o, "to_dict", None)
        if f is not None and callable(f):
            return f()
        # numpy arrays and scalars (and torch tensors): what evaluation code returns most often.
        # Checked by module so that an arbitrary object with a tolist() is not taken for one.
        mod = getattr(type(o), "__module__", "") or ""
        if mod.split(".")[0] in ("numpy", "torch"):
            f = getattr(o, "tolist", None)
            if f is not None and callable(f):
                return f()
    raise TypeError("object of type %s is not JSON serializable" % _typename(o))


def _typename(o):
    t = type(o)
    mod = getattr(t, "__module__", "")
    if mod in ("builtins", "__main__", "env", None, ""):
        return t.__qualname__
    return "%s.%s" % (mod, t.__qualname__)


_enc_result = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"),
                               default=_default).encode
_INF = float("inf")


def _special(x):
    if x != x:
        return "NaN"
    if x == _INF:
        return "Infinity"
    if x == -_INF:
        return "-Infinity"
    return x


def _sanitize(o):
    """Replace NaN/±Infinity (values and keys) by strings; slow path only."""
    if isinstance(o, float):
        return _special(o)
    if isinstance(o, (str, int)) or o is None:
        return o
    if isinstance(o, dict):
        return {(_special(k) if isinstance(k, float) else k): _sanitize(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [_sanitize(v) for v in o]
    try:
        c = _default(o)
    except Exception:
        return o  # the final encode reports it
    if isinstance(c, str):
        return c
    return _sanitize(c)


def _encode_result(name, value):
    """(prefix, body) of a method's result."""
    try:
        return P200, b'{"result":' + _enc_result(value).encode("ascii") + b"}"
    except ValueError as e:  # NaN/Infinity (or circular / huge int: reported below)
        first = e
    except Exception as e:  # TypeError (unsupported type/key), RecursionError, ...
        return P500, _not_serialisable(name, e)
    try:
        return P200, b'{"result":' + _enc_result(_sanitize(value)).encode("ascii") + b"}"
    except Exception as e:
        return P500, _not_serialisable(name, e if isinstance(e, TypeError) else first)


def _not_serialisable(name, e):
    try:
        detail = str(e)
    except Exception:
        detail = type(e).__name__
    return _err_body("TypeError", "result of %s is not JSON-serialisable: %s" % (name, detail))


# ---------------------------------------------------------------------------
# Global state (touched only on the event loop's thread, except where noted)


class _Stats(object):
    __slots__ = ("requests", "errors", "in_flight", "overdue", "lat", "lat_n")

    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self.overdue = 0
        self.lat = [0.0] * 1024
        self.lat_n = 0


ST = _Stats()
START = _mono()
NOW = START  # coarse clock for request timeouts, refreshed by the sweeper

STARTING, READY, FAILED = 0, 1, 2
STATE = STARTING
FAILED_BODY = b""  # /health body in state FAILED
NOT_READY_BODY = BODY_NOT_READY  # /call and /methods body while not READY
METHODS = {}  # name -> _Method
METHODS_BODY = b""
AVAILABLE = ""

AUTH = None  # expected Authorization value (bytes), or None when auth is off
AUTH_401 = BODY_401

LOOP = None
POOL = None
CONNS = set()
_TASKS = set()  # running async calls (strong refs)
_create_task = None


class _Method(object):
    __slots__ = ("name", "fn", "is_async", "sig", "min_pos", "max_pos", "verdicts")

    def __init__(self, name, fn, is_async, sig):
        self.name = name
        self.fn = fn
        self.is_async = is_async
        self.sig = sig
        # Whether arguments bind depends only on how many positional ones there are and which
        # keywords are named, never on values: cache bind()'s verdict by that shape.
        self.verdicts = {}
        # Fast path of bind(): with no kwargs, a positional count in [min_pos, max_pos]
        # binds exactly when inspect's bind() would.  Otherwise bind() decides.
        self.min_pos, self.max_pos = 1 << 62, -1
        if sig is None:
            return
        mn, mx = 0, 0
        for p in sig.parameters.values():
            k = p.kind
            if k is p.POSITIONAL_ONLY or k is p.POSITIONAL_OR_KEYWORD:
                mx += 1
                if p.default is p.empty:
                    mn = mx
            elif k is p.VAR_POSITIONAL:
                mx = 1 << 62
            elif k is p.KEYWORD_ONLY and p.default is p.empty:
                return  # a required keyword-only parameter: always bind()
        self.min_pos, self.max_pos = mn, mx

    def check(self, args, kwargs):
        """None if (args, kwargs) bind to the signature, else the error message."""
        if not kwargs and self.min_pos <= len(args) <= self.max_pos:
            return None
        if self.sig is None:
            return None
        shape = (len(args), frozenset(kwargs))
        verdict = self.verdicts.get(shape, False)
        if verdict is not False:
            return verdict
        try:
            self.sig.bind(*args, **kwargs)
            verdict = None
        except TypeError as e:
            verdict = "%s; signature: %s%s" % (e, self.name, self.sig)
        if len(self.verdicts) < 256:  # callers use few shapes; bound the cache against odd ones
            self.verdicts[shape] = verdict
        return verdict


# ---------------------------------------------------------------------------
# Worker threads for sync methods

JOB_RUNNING, JOB_OVERDUE, JOB_ABANDONED = 0, 1, 2


class _Job(object):
    __slots__ = ("fn", "args", "kwargs", "conn", "ok", "value", "state")

    def __init__(self, fn, args, kwargs, conn):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.conn = conn
        self.state = JOB_RUNNING


class _Pool(object):
    """Worker threads for sync methods, tuned for the GIL.

    Many threads that each run a tiny method mostly fight over the GIL (measured: one
    worker thread served a trivial method 50% faster than 32).  So the pool keeps as few
    workers awake as keeps the queue moving: a job wakes a parked worker only when no
    worker is awake, and a monitor on the loop (every STALL seconds while jobs wait)
    wakes more workers when every awake worker has been inside its current job for over
    STALL: the jobs block (I/O, sleep, a lock) or run long, so the queue would stall.
    Up to `max` threads; results come back to the loop in batches (one self-pipe
    write per batch, not per call).  No concurrent.futures or asyncio.Future per call.
    """

    STALL = 0.002  # > the time a runnable worker typically waits for the GIL

    def __init__(self, loop, max_threads):
        self.loop = loop
        self.max = max(1, max_threads)
        self.lock = threading.Lock()  # guards jobs/active/threads against lost wake-ups
        self.jobs = collections.deque()
        self.parked = queue.SimpleQueue()  # one token wakes one parked worker
        self.threads = 0  # started
        self.active = 0  # awake: running a job or looking for one
        self.starts = [0.0] * self.max  # per worker: start of its current job, 0 if none
        self.results = collections.deque()
        self.scheduled = False  # a _drain() is queued on the loop
        self.armed = False  # a _monitor() is scheduled
        self.batch = []  # jobs submitted in this loop iteration
        self.flush_scheduled = False
        self.pending = 0  # jobs submitted whose result the loop has not handled yet

    def submit(self, job):
        # Jobs are handed over once per loop iteration, not one by one: the worker then
        # runs a batch while the loop waits in epoll, instead of both threads trading
        # the GIL (futex calls) at every socket syscall the loop makes.
        self.pending += 1
        self.batch.append(job)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self):
        self.flush_scheduled = False
        batch = self.batch
        self.batch = []
        with self.lock:
            idle = self.active == 0
            self.jobs.extend(batch)
            if idle:
                self._wake(1)
            elif self.active < self.max and self._all_stuck():
                self._wake(len(batch))
        if not idle and not self.armed:
            self.armed = True
            self.loop.call_later(self.STALL / 2, self._monitor)

    def _all_stuck(self):
        """Whether every awake worker is past STALL in its job.  Lock held."""
        limit = _perf() - self.STALL
        stuck = 0
        for s in self.starts[:self.threads]:
            if s and s < limit:
                stuck += 1
        return stuck >= self.active

    def _wake(self, n):
        """Wake (or start) up to n more workers.  Called with self.lock held."""
        k = min(n, self.threads - self.active)
        for _ in range(k):
            self.parked.put(None)
        self.active += k
        n -= k
        while n > 0 and self.threads < self.max:
            idx = self.threads
            self.threads += 1
            self.active += 1
            n -= 1
            threading.Thread(target=self._worker, args=(idx,), name="rfenv-worker-%d" % idx,
                             daemon=True).start()

    def _monitor(self):
        self.armed = False
        jobs = self.jobs
        if not jobs:
            return
        with self.lock:
            if jobs and self.active < self.max and self._all_stuck():
                self._wake(len(jobs))
        if jobs:
            self.armed = True
            self.loop.call_later(self.STALL / 2, self._monitor)

    def _worker(self, idx):
        lock = self.lock
        jobs = self.jobs
        starts = self.starts
        park = self.parked.get
        results = self.results
        wake = self.loop.call_soon_threadsafe
        drain = self._drain
        while True:
            with lock:
                if jobs:
                    job = jobs.popleft()
                else:
                    job = None
                    self.active -= 1
            if job is None:
                park()  # whoever wakes us has counted us in self.active again
                continue
            if job.state == JOB_RUNNING:
                starts[idx] = _perf()
                try:
                    job.value = job.fn(*job.args, **job.kwargs)
                    job.ok = True
                except BaseException as e:  # SystemExit in a method is an error too
                    job.value = e
                    job.ok = False
                starts[idx] = 0.0
            else:  # its client left or its deadline passed before it started: skip it
                job.ok = False
                job.value = None
            results.append(job)
            job = None
            if not self.scheduled:
                self.scheduled = True
                try:
                    wake(drain)
                except RuntimeError:  # loop closed: shutting down
                    return

    def _drain(self):
        self.scheduled = False  # before popping: a result appended now schedules anew
        results = self.results
        while results:
            job = results.popleft()
            self.pending -= 1
            job.conn._job_done(job)


# ---------------------------------------------------------------------------
# The per-connection protocol


class Conn(asyncio.Protocol):
    __slots__ = (
        "transport", "buf", "closing", "busy", "wpaused", "rpaused",
        "body_parts", "body_have", "body_need", "t_head", "t_data", "linger",
        # the request being handled
        "r_method", "r_path", "r_auth", "r_timeout", "suffix", "keep",
        # the call in flight
        "c_t0", "c_name", "c_task", "c_job", "c_timer",
    )

    def __init__(self):
        self.transport = None
        self.buf = b""
        self.closing = False
        self.busy = False
        self.wpaused = False
        self.rpaused = False
        self.body_parts = None
        self.body_have = 0
        self.body_need = 0
        self.t_head = None
        self.t_data = NOW
        self.linger = None
        self.r_auth = None
        self.r_timeout = None
        self.suffix = SUFFIX_KEEP
        self.keep = True
        self.c_task = None
        self.c_job = None
        self.c_timer = None

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except (OSError, AttributeError):
                pass
        CONNS.add(self)

    def connection_lost(self, exc):
        self.closing = True
        CONNS.discard(self)
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        self._abandon_call()
        self.transport = None
        self.buf = b""
        self.body_parts = None

    def eof_received(self):
        # The client closed its side.  Like nginx, treat it as the client going away:
        # a call in flight is cancelled (this is how Ctrl-C on the client cancels work).
        self.closing = True
        self._abandon_call()
        return False  # close the transport (after flushing what was written)

    def pause_writing(self):
        self.wpaused = True

    def resume_writing(self):
        self.wpaused = False
        if not self.busy and not self.closing and self.buf:
            self._process()

    def data_received(self, data):
        if self.closing:
            return
        try:
            self._received(data)
        except Exception as e:
            self._internal_error(e)

    def _received(self, data):
        if self.body_need:
            self.t_data = NOW
            self.body_parts.append(data)
            self.body_have += len(data)
            if self.body_have < self.body_need:
                return
            whole = b"".join(self.body_parts)
            need = self.body_need
            self.body_parts = None
            self.body_need = 0
            if len(whole) == need:
                body = whole
            else:
                body = whole[:need]
                self.buf = whole[need:]
            self._dispatch(body)
            if not self.busy and self.buf:
                self._process()
            return
        if self.buf:
            self.buf += data
        else:
            self.buf = data
        if self.busy or self.wpaused:
            if len(self.buf) > PAUSE_READ_AT and not self.rpaused:
                self.rpaused = True
                self.transport.pause_reading()
            return
        self._process()

    # -- request parsing ---------------------------------------------------

    def _process(self):
        """Handle the complete requests in self.buf, in order, until a call is pending."""
        try:
            self._process_loop()
        except Exception as e:  # a bug in the shim: answer 500 and close, keep serving
            self._internal_error(e)

    def _internal_error(self, e):
        _log("internal error: %s" % _exc_info(e)[2].rstrip())
        self._fail(500, "internal error in the rfenv shim: %s: %s" % (type(e).__name__, e))

    def _process_loop(self):
        while not self.busy and not self.closing and not self.wpaused:
            buf = self.buf
            if not buf:
                break
            if buf[0] in (13, 10):  # CRLF after a previous body
                buf = self.buf = buf.lstrip(b"\r\n")
                if not buf:
                    break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._partial_head(buf)
                break
            if end > MAX_HEAD_BYTES:
                self._fail(431, "request headers exceed %d bytes" % MAX_HEAD_BYTES)
                break
            self.t_head = None
            rl = buf.find(b"\r\n", 0, end)
            if rl < 0:
                rl = end
            parts = buf[:rl].split(b" ")
            if len(parts) != 3:
                self._fail(400, "malformed request line")
                break
            method, target, version = parts
            if version == b"HTTP/1.1":
                keep = True
            elif version == b"HTTP/1.0":
                keep = False
            else:
                self._fail(400, "unsupported HTTP version")
                break
            if not (method.isalpha() and method.isupper()) or target[:1] != b"/":
                self._fail(400, "malformed request line")
                break
            clen = 0
            auth = None
            timeout = None
            expect = False
            if rl < end:
                # Header block "\r\nName: value\r\nName: value" lowercased once; the few
                # headers the shim uses are found with bytes.find (C speed) instead of a
                # Python loop over every line.  Other headers are not validated.
                hdrs = buf[rl:end]
                if hdrs.count(b"\n") > MAX_HEADERS:
                    self._fail(431, "more than %d headers" % MAX_HEADERS)
                    break
                low = hdrs.lower()
                i = low.find(b"\r\ncontent-length:")
                if i >= 0:
                    j = low.find(b"\r", i + 17)
                    v = hdrs[i + 17:j if j >= 0 else None].strip()
                    if not v.isdigit() or low.find(b"\r\ncontent-length:", i + 17) >= 0:
                        self._fail(400, "invalid or repeated Content-Length")
                        break
                    clen = int(v) if len(v) < 16 else MAX_BODY + 1
                i = low.find(b"\r\nauthorization:")
                if i >= 0:
                    j = low.find(b"\r", i + 16)
                    auth = hdrs[i + 16:j if j >= 0 else None].strip()
                i = low.find(b"\r\nx-rfenv-timeout-ms:")
                if i >= 0:
                    j = low.find(b"\r", i + 21)
                    timeout = hdrs[i + 21:j if j >= 0 else None].strip()
                i = low.find(b"\r\nconnection:")
                if i >= 0:
                    j = low.find(b"\r", i + 13)
                    toks = [t.strip() for t in low[i + 13:j if j >= 0 else None].split(b",")]
                    if b"close" in toks:
                        keep = False
                    elif b"keep-alive" in toks:
                        keep = True
                if b"\r\ntransfer-encoding:" in low:
                    self._fail(411, "Transfer-Encoding is not supported; send Content-Length")
                    break
                if clen and b"\r\nexpect:" in low:
                    i = low.find(b"\r\nexpect:")
                    j = low.find(b"\r", i + 9)
                    expect = low[i + 9:j if j >= 0 else None].strip() == b"100-continue"
            self.keep = keep
            self.suffix = SUFFIX_KEEP if keep and version == b"HTTP/1.1" else (
                SUFFIX_KEEP10 if keep else SUFFIX_CLOSE)
            q = target.find(b"?")
            self.r_path = target if q < 0 else target[:q]
            self.r_method = method
            self.r_auth = auth
            self.r_timeout = timeout
            start = end + 4
            if clen:
                if clen > MAX_BODY:
                    self._fail(413, "request body of %d bytes exceeds the limit of %d bytes"
                               % (clen, MAX_BODY))
                    break
                stop = start + clen
                if len(buf) >= stop:
                    body = buf[start:stop]
                    self.buf = buf[stop:]
                else:
                    # wait for the rest of the body, collecting chunks in a list
                    self.body_parts = [buf[start:]]
                    self.body_have = len(buf) - start
                    self.body_need = clen
                    self.buf = b""
                    self.t_data = NOW
                    if expect:
                        self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    break
            else:
                body = b""
                self.buf = buf[start:]
            self._dispatch(body)
        if self.rpaused and not self.busy and not self.closing:
            self.rpaused = False
            self.transport.resume_reading()

    def _partial_head(self, buf):
        if len(buf) > MAX_HEAD_BYTES:
            self._fail(431, "request headers exceed %d bytes" % MAX_HEAD_BYTES)
            return
        # reject garbage early instead of waiting for a blank line that never comes
        sp = buf.find(b" ", 0, 24)
        tok = buf[:sp] if sp >= 0 else buf[:24]
        if (tok and not (tok.isalpha() and tok.isupper())) or (sp < 0 and len(buf) >= 24):
            self._fail(400, "malformed request line")
            return
        nl = buf.find(b"\n")
        if nl >= 0:
            parts = buf[:nl].rstrip(b"\r").split(b" ")
            if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
                self._fail(400, "malformed request line")
                return
        elif len(buf) > 8192:
            self._fail(400, "request line too long")
            return
        if self.t_head is None:
            self.t_head = NOW

    def _fail(self, code, message):
        """Answer a protocol error and close (draining what the client still sends)."""
        body = _err_body({400: "BadRequest", 408: "RequestTimeout", 411: "LengthRequired",
                          413: "PayloadTooLarge", 431: "HeadersTooLarge"}.get(code, "InternalError"),
                         message)
        self.closing = True
        self.buf = b""
        self.body_parts = None
        self.body_need = 0
        t = self.transport
        if t is None:
            return
        t.write(b"".join((_prefix(code), str(len(body)).encode(), SUFFIX_CLOSE, body)))
        # lingering close: half-close now, drop incoming bytes, close at EOF or after LINGER,
        # so the client reads the answer instead of a reset.
        try:
            if t.can_write_eof():
                t.write_eof()
                if self.rpaused:
                    self.rpaused = False
                    t.resume_reading()
                self.linger = LOOP.call_later(LINGER, t.close)
                return
        except Exception:
            pass
        t.close()

    def _timeout_check(self, now):
        if self.closing or self.busy:
            return
        if self.body_need:
            if now - self.t_data > REQUEST_TIMEOUT:
                self._fail(408, "request body stalled for %gs" % REQUEST_TIMEOUT)
        elif self.buf and self.t_head is not None and now - self.t_head > REQUEST_TIMEOUT:
            self._fail(408, "request headers not complete after %gs" % REQUEST_TIMEOUT)

    # -- responses ---------------------------------------------------------

    def _send(self, prefix, body):
        t = self.transport
        if t is None:
            return
        t.write(b"".join((prefix, str(len(body)).encode(), self.suffix, body)))
        if not self.keep:
            self.closing = True
            t.close()

    def _dispatch(self, body):
        path = self.r_path
        method = self.r_method
        if path == b"/call":
            if method == b"POST":
                self._call(body)
            else:
                self._send(P405_POST, BODY_405_POST)
        elif path == b"/health":
            if method != b"GET":
                self._send(P405_GET, BODY_405_GET)
            elif STATE == READY:
                if ST.overdue:
                    self._send(P503, b'{"status":"busy","overdue":%d}' % ST.overdue)
                else:
                    self._send(P200, BODY_OK)
            elif STATE == STARTING:
                self._send(P503, BODY_STARTING)
            else:
                self._send(P503, FAILED_BODY)
        elif path == b"/methods" or path == b"/stats":
            if method != b"GET":
                self._send(P405_GET, BODY_405_GET)
            elif AUTH is not None and (self.r_auth is None or not _compare(self.r_auth, AUTH)):
                self._send(P401, AUTH_401)
            elif path == b"/stats":
                self._send(P200, _stats_body())
            elif STATE != READY:
                self._send(P503, NOT_READY_BODY)
            else:
                self._send(P200, METHODS_BODY)
        else:
            self._send(P404, BODY_404_PATH)

    # -- /call ---------------------------------------------------------------

    def _reply_call(self, t0, prefix, body):
        st = ST
        st.requests += 1
        if prefix is not P200:
            st.errors += 1
        st.lat[st.lat_n & 1023] = _perf() - t0
        st.lat_n += 1
        self._send(prefix, body)

    def _call(self, body):
        t0 = _perf()
        if AUTH is not None and (self.r_auth is None or not _compare(self.r_auth, AUTH)):
            return self._reply_call(t0, P401, AUTH_401)
        if STATE != READY:
            return self._reply_call(t0, P503, NOT_READY_BODY)
        try:
            req = _decode(body.decode("utf-8"))
        except Exception as e:  # ValueError, UnicodeDecodeError, RecursionError
            return self._reply_call(t0, P400, _err_body("BadRequest", "malformed JSON body: %s" % e))
        if type(req) is not dict:
            return self._reply_call(t0, P400, _err_body(
                "BadRequest", 'the body must be a JSON object {"method","args","kwargs"}'))
        name = req.get("method")
        m = METHODS.get(name) if type(name) is str else None
        if m is None:
            if type(name) is not str:
                msg = '"method" (a string) is missing'
                return self._reply_call(t0, P400, _err_body("BadRequest", msg))
            return self._reply_call(t0, P404, _err_body(
                "NotFound", "no method %r; available: %s" % (name, AVAILABLE)))
        args = req.get("args")
        if args is None:
            args = ()
        elif type(args) is not list:
            return self._reply_call(t0, P400, _err_body("BadRequest", '"args" must be a JSON array'))
        kwargs = req.get("kwargs")
        if kwargs is None:
            kwargs = {}
        elif type(kwargs) is not dict:
            return self._reply_call(t0, P400, _err_body("BadRequest", '"kwargs" must be a JSON object'))
        if kwargs or not (m.min_pos <= len(args) <= m.max_pos):
            err = m.check(args, kwargs)
            if err is not None:
                return self._reply_call(t0, P400, _err_body("TypeError", err))
        delay = None
        if self.r_timeout is not None:
            tv = self.r_timeout
            if not tv.isdigit():
                try:
                    delay = int(tv)
                except ValueError:
                    return self._reply_call(t0, P400, _err_body(
                        "BadRequest", "invalid X-Rfenv-Timeout-Ms header"))
            else:
                delay = int(tv)
            if delay <= 0:
                return self._reply_call(t0, P504, BODY_504)
            delay = min(delay, 10 ** 10) / 1000.0  # (no float overflow on absurd values)
        self.c_t0 = t0
        self.c_name = name
        if m.is_async:
            try:
                task = _create_task(m.fn(*args, **kwargs))
            except BaseException as e:
                return self._reply_call(t0, P500, _exc_body(e))
            if task.done():  # finished eagerly (Python 3.12+)
                return self._task_reply(task)
            ST.in_flight += 1
            _TASKS.add(task)
            self.c_task = task
            task.add_done_callback(self._task_done)
        else:
            ST.in_flight += 1
            job = _Job(m.fn, args, kwargs, self)
            self.c_job = job
            POOL.submit(job)
        self.busy = True
        if delay is not None:
            self.c_timer = LOOP.call_later(delay, self._deadline)

    def _task_reply(self, task):
        if task.cancelled():
            self._reply_call(self.c_t0, P500, _err_body(
                "CancelledError", "the call was cancelled inside the environment"))
            return
        exc = task.exception()
        if exc is not None:
            self._reply_call(self.c_t0, P500, _exc_body(exc))
        else:
            prefix, body = _encode_result(self.c_name, task.result())
            self._reply_call(self.c_t0, prefix, body)

    def _task_done(self, task):
        ST.in_flight -= 1
        _TASKS.discard(task)
        if task is not self.c_task:  # abandoned: deadline passed or client gone
            if not task.cancelled():
                task.exception()  # mark retrieved
            return
        self.c_task = None
        if self.c_timer is not None:
            self.c_timer.cancel()
            self.c_timer = None
        self._task_reply(task)
        self._next()

    def _job_done(self, job):
        st = job.state
        if st == JOB_OVERDUE:
            ST.overdue -= 1
            return
        ST.in_flight -= 1
        if st == JOB_ABANDONED:
            return
        self.c_job = None
        if self.c_timer is not None:
            self.c_timer.cancel()
            self.c_timer = None
        if job.ok:
            prefix, body = _encode_result(self.c_name, job.value)
            self._reply_call(self.c_t0, prefix, body)
        else:
            self._reply_call(self.c_t0, P500, _exc_body(job.value))
        job.value = None
        self._next()

    def _deadline(self):
        self.c_timer = None
        task = self.c_task
        job = self.c_job
        if task is not None:
            self.c_task = None
            task.cancel()  # _task_done drops in_flight when it has unwound
        elif job is not None:
            self.c_job = None
            job.state = JOB_OVERDUE
            ST.in_flight -= 1
            ST.overdue += 1
        else:
            return
        self._reply_call(self.c_t0, P504, BODY_504)
        self._next()

    def _next(self):
        """The call is answered: go on with the connection's next request."""
        self.busy = False
        if not self.closing and self.buf and not self.wpaused:
            self._process()
        elif self.rpaused and not self.closing:
            self.rpaused = False
            self.transport.resume_reading()

    def _abandon_call(self):
        """The client went away: cancel the async call in flight, forget a sync one."""
        if self.c_timer is not None:
            self.c_timer.cancel()
            self.c_timer = None
        task = self.c_task
        job = self.c_job
        if task is None and job is None:
            return
        self.c_task = None
        self.c_job = None
        ST.requests += 1
        ST.errors += 1
        if task is not None:
            task.cancel()
        else:
            job.state = JOB_ABANDONED


def _stats_body():
    st = ST
    n = min(st.lat_n, 1024)
    if n:
        lat = st.lat[:n]
        mean = sum(lat) / n * 1000.0
        lat.sort()
        p50 = (lat[(n - 1) // 2] + lat[n // 2]) / 2 * 1000.0
    else:
        mean = p50 = 0.0
    return _jbytes({
        "requests": st.requests,
        "in_flight": st.in_flight,
        "errors": st.errors,
        "overdue": st.overdue,
        "uptime_s": round(_mono() - START, 3),
        "latency_ms": {"mean": round(mean, 4), "p50": round(p50, 4)},
    })


# ---------------------------------------------------------------------------
# Loading env.py


def _load_secrets():
    path = os.environ.get("RFENV_SECRETS_FILE") or "/run/rfenv/secrets.json"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        return OSError("cannot read the secrets file %s: %s" % (path, e.strerror))
    err = None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for k, v in data.items():
            os.environ[str(k)] = v if isinstance(v, str) else json.dumps(v)
    except ValueError as e:
        # the parser's message has a position only, never secret content
        err = ValueError("the secrets file %s is not a JSON object of strings: %s" % (path, e))
    try:
        os.unlink(path)
    except OSError as e:
        _log("warning: cannot delete the secrets file %s: %s" % (path, e.strerror))
    return err


def _first_doc_line(obj):
    doc = inspect.getdoc(obj)
    if not doc:
        return ""
    for line in doc.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _fmt_annotation(a):
    if a is inspect.Parameter.empty:
        return None
    if isinstance(a, str):
        return a
    try:
        return inspect.formatannotation(a)
    except Exception:
        return repr(a)


def _describe(name, fn, is_async, sig, source):
    params = []
    if sig is not None:
        for p in sig.parameters.values():
            has_default = p.default is not p.empty
            try:
                default = repr(p.default) if has_default else None
            except Exception:
                default = "<unrepresentable>"
            params.append({
                "name": p.name,
                "kind": p.kind.name,
                "annotation": _fmt_annotation(p.annotation),
                "default": default,
                "has_default": has_default,
            })
    try:
        sig_s = str(sig) if sig is not None else "(...)"
    except Exception:
        sig_s = "(...)"
    return {"name": name, "signature": sig_s, "doc": _first_doc_line(fn),
            "async": is_async, "source": source, "parameters": params}


def _signature(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _is_async(fn):
    return inspect.iscoroutinefunction(fn)


def _collect_methods(mod, actor):
    """(kind, [(name, callable, is_async, signature)]) of the public methods."""
    modname = mod.__name__
    out = []
    if actor is not None:
        cls = type(actor)
        seen = set()
        for klass in cls.__mro__:
            defined_here = getattr(klass, "__module__", None) == modname
            for name, attr in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)  # the nearest definition wins, even if not public
                if name.startswith("_") or not defined_here:
                    continue
                raw = attr
                if isinstance(attr, (staticmethod, classmethod)):
                    raw = attr.__func__
                if not inspect.isfunction(raw) or getattr(raw, "__module__", None) != modname:
                    continue  # not a function, or an imported one assigned in the class body
                fn = getattr(actor, name, None)
                if not callable(fn):
                    continue  # shadowed by an instance attribute
                out.append((name, fn, _is_async(fn), _signature(fn)))
        return "actor", out
    for name, obj in list(vars(mod).items()):
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if getattr(obj, "__module__", None) != modname:
            continue
        out.append((name, obj, _is_async(obj), _signature(obj)))
    return "module", out


def _init_env(loop, secrets_err):
    """Runs in a thread: import env.py, build the Actor, publish methods to the loop."""
    try:
        asyncio.set_event_loop(loop)  # so asyncio.get_event_loop() in a constructor works
        if secrets_err is not None:
            raise secrets_err
        app_dir = os.path.abspath(os.environ.get("RFENV_APP_DIR") or "/app")
        path = os.path.join(app_dir, "env.py")
        if not os.path.isfile(path):
            raise FileNotFoundError("no env.py in %s" % app_dir)
        os.chdir(app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
        spec = importlib.util.spec_from_file_location("env", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["env"] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop("env", None)
            raise
        actor = None
        cls = vars(mod).get("Actor")
        if cls is not None:
            if not inspect.isclass(cls):
                raise TypeError("env.py's Actor must be a class, not %s" % type(cls).__name__)
            actor = cls()
            ainit = getattr(actor, "__ainit__", None)
            if ainit is not None:
                r = ainit()
                if inspect.isawaitable(r):
                    async def _await(a):
                        return await a
                    asyncio.run_coroutine_threadsafe(_await(r), loop).result()
        kind, found = _collect_methods(mod, actor)
        methods = {}
        desc = []
        for name, fn, is_async, sig in found:
            methods[name] = _Method(name, fn, is_async, sig)
            desc.append(_describe(name, fn, is_async, sig, kind))
        body = _jbytes({"kind": kind, "methods": desc})
    except BaseException as e:
        t, m, tb = _exc_info(e)
        _log("loading env.py failed:\n%s" % tb.rstrip())
        loop.call_soon_threadsafe(_set_failed, t, m, tb)
        return
    loop.call_soon_threadsafe(_set_ready, methods, body)


def _set_ready(methods, body):
    global STATE, METHODS, METHODS_BODY, AVAILABLE
    METHODS = methods
    METHODS_BODY = body
    AVAILABLE = ", ".join(sorted(methods)) or "(none)"
    STATE = READY
    _log("ready: %d method(s): %s" % (len(methods), AVAILABLE))


def _set_failed(t, m, tb):
    global STATE, FAILED_BODY, NOT_READY_BODY
    err = {"type": t, "message": m, "traceback": tb}
    FAILED_BODY = _jbytes({"status": "failed", "error": err})
    NOT_READY_BODY = _jbytes({"error": {"type": "EnvFailed",
                                        "message": "env.py failed to load: %s: %s" % (t, m),
                                        "traceback": tb}})
    STATE = FAILED


# ---------------------------------------------------------------------------
# main


def _sweep(interval):
    global NOW
    NOW = now = _mono()
    for c in list(CONNS):
        c._timeout_check(now)
    LOOP.call_later(interval, _sweep, interval)


def _make_task_factory(loop):
    if sys.version_info >= (3, 12):
        Task = asyncio.Task

        def create(coro):
            # eager: runs synchronously until the first real suspension; a method that
            # never awaits a pending future finishes without a loop round-trip
            return Task(coro, loop=loop, eager_start=True)
        return create
    return loop.create_task


def main():
    global LOOP, POOL, AUTH, AUTH_401, MAX_BODY, REQUEST_TIMEOUT, NOW, START, _create_task
    START = NOW = _mono()
    try:
        sys.stdout.reconfigure(line_buffering=True)  # env.py's prints reach `docker logs`
    except Exception:
        pass
    MAX_BODY = _env_num("RFENV_MAX_BODY", MAX_BODY)
    REQUEST_TIMEOUT = _env_num("RFENV_REQUEST_TIMEOUT", REQUEST_TIMEOUT, float)
    threads = _env_num("RFENV_THREADS", 32)
    port = _env_num("RFENV_PORT", 8000)
    host = os.environ.get("RFENV_HOST") or "0.0.0.0"

    token = os.environ.get("RFENV_TOKEN", "")
    if token:
        AUTH = b"Bearer " + token.encode("utf-8", "surrogateescape")
    elif os.environ.get("RFENV_INSECURE_NO_AUTH") == "1":
        AUTH = None
        _log("warning: RFENV_TOKEN is empty and RFENV_INSECURE_NO_AUTH=1: no authentication")
    else:
        # an unguessable value: every authenticated request is refused
        AUTH = b"\x00" + os.urandom(32)
        AUTH_401 = BODY_401_NOTOKEN
        _log("warning: RFENV_TOKEN is empty: /call, /methods and /stats answer 401")

    secrets_err = _load_secrets()

    if os.environ.get("RFENV_UVLOOP") == "1":
        try:
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            _log("RFENV_UVLOOP=1 but uvloop is not importable; using asyncio")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    LOOP = loop
    _create_task = _make_task_factory(loop)
    POOL = _Pool(loop, threads)

    server = loop.run_until_complete(loop.create_server(
        Conn, host, port, reuse_address=True, backlog=1024))
    bound = server.sockets[0].getsockname()
    _log("v%s listening on %s:%d (python %s, pid %d)"
         % (SHIM_VERSION, bound[0], bound[1], sys.version.split()[0], os.getpid()))

    stopping = []

    def stop(signame):
        if stopping:
            os._exit(1)
        stopping.append(signame)
        loop.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)

    init = threading.Thread(target=_init_env, args=(loop, secrets_err), name="rfenv-init",
                            daemon=True)
    init.start()
    interval = max(0.05, min(1.0, REQUEST_TIMEOUT / 4))
    loop.call_later(interval, _sweep, interval)
    try:
        loop.run_forever()
    finally:
        server.close()
        for c in list(CONNS):
            if c.transport is not None:
                c.transport.abort()
    _log("%s: exiting" % (stopping[0] if stopping else "stopped"))
    busy = ST.in_flight or ST.overdue or POOL.pending or init.is_alive()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    if busy:
        # calls still run in daemon threads or tasks: finalising the interpreter
        # under them can hang or abort, so leave at once
        os._exit(0)
    # idle: a normal exit (runs env.py's atexit handlers), with a watchdog
    watchdog = threading.Timer(0.8, os._exit, (0,))
    watchdog.daemon = True
    watchdog.start()
    loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
