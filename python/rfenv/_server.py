"""Finding or starting rfenv serve.

With ``RFENV_SERVE`` set (``unix:///path`` or ``http://127.0.0.1:PORT``) the package connects to a
server that already runs; the bearer token of a TCP server comes from ``RFENV_SERVE_TOKEN_FILE``
(default: the serve.token file beside the default socket) or ``RFENV_SERVE_TOKEN``.

Otherwise it starts ``rfenv serve`` as its own child on first use, on a socket in a fresh 0700
directory. The child watches its stdin, a pipe only this process holds: when this process ends, in
any way, SIGKILL included, the kernel closes the pipe, the server sees end of file, takes down the
environments brought up with ``cleanup=True`` and exits.
"""
from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from typing import Any, Optional

from ._errors import InfraError
from ._transport import AsyncClient, SyncClient, Target

# How long the child may take to say where it listens.
START_TIMEOUT_S = 60.0


def find_binary() -> str:
    """The rfenv binary: ``RFENV_BIN``, the one inside the wheel, or ``rfenv`` on PATH."""
    env = os.environ.get("RFENV_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise InfraError("RFENV_BIN=%s is not an executable file" % env)
        return env
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "rfenv")
    if os.access(bundled, os.X_OK):
        return bundled
    found = shutil.which("rfenv")
    if found:
        return found
    raise InfraError("the rfenv binary was not found: install a wheel that carries it, put rfenv on PATH, "
                     "or set RFENV_BIN (or RFENV_SERVE to use a running rfenv serve)")


def _runtime_dir() -> str:
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, "rfenv")
    return os.path.join(tempfile.gettempdir(), "rfenv-%d" % os.getuid())


def _token_for(url: str) -> str:
    if url.startswith("unix://") or url.startswith("/"):
        return ""
    path = os.environ.get("RFENV_SERVE_TOKEN_FILE") or os.path.join(_runtime_dir(), "serve.token")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        tok = os.environ.get("RFENV_SERVE_TOKEN", "")
        if tok:
            return tok
        raise InfraError("RFENV_SERVE=%s is a TCP server, but its token file %s cannot be read "
                         "(set RFENV_SERVE_TOKEN_FILE)" % (url, path))


class Server:
    """A connection to one rfenv serve, started by this process or not."""

    def __init__(self, target: Target, proc: Optional["subprocess.Popen[bytes]"] = None, tmpdir: str = "") -> None:
        self.target = target
        self.proc = proc
        self.tmpdir = tmpdir
        self.sync = SyncClient(target)
        self._async: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient]" = weakref.WeakKeyDictionary()

    def aclient(self) -> AsyncClient:
        """The async client of the running event loop (connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        c = self._async.get(loop)
        if c is None:
            c = AsyncClient(self.target)
            self._async[loop] = c
        return c

    def stop(self, timeout: float = 300.0) -> None:
        """Close stdin of a child server (it takes down its cleanup environments) and wait for it."""
        self.sync.close()
        if self.proc is None:
            return
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout)
        except Exception:
            self.proc.kill()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.proc = None


def start_child() -> Server:
    """Start ``rfenv serve`` as a child of this process and wait until it listens."""
    binary = find_binary()
    tmpdir = tempfile.mkdtemp(prefix="rfenv-serve-")  # 0700
    sock = os.path.join(tmpdir, "serve.sock")
    # Its own session: a Ctrl-C in the terminal reaches this process, whose exit handlers still
    # need the server; the server follows through its stdin.
    proc = subprocess.Popen(
        [binary, "serve", "--socket", sock, "--watch-stdin", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True, start_new_session=True)
    assert proc.stdout is not None
    line = b""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 1.0))
        if ready:
            b = os.read(proc.stdout.fileno(), 4096)
            if not b:
                break
            line += b
    try:
        info: Any = json.loads(line)
        url = info["url"]
    except (ValueError, KeyError, TypeError):
        proc.kill()
        proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise InfraError("%s serve did not start (exit code %s); its error is on stderr above" % (binary, proc.returncode))
    proc.stdout.close()
    return Server(Target(url), proc, tmpdir)


_lock = threading.Lock()
_server: Optional[Server] = None


def get() -> Server:
    """The process's server: RFENV_SERVE's, or a child started on first use."""
    global _server
    with _lock:
        if _server is None:
            url = os.environ.get("RFENV_SERVE", "")
            if url:
                _server = Server(Target(url, _token_for(url)))
            else:
                _server = start_child()
        return _server


def current() -> Optional[Server]:
    """The server if one was started or connected, else None."""
    return _server


def shutdown() -> None:
    """Stop the child server, if this process started one."""
    global _server
    with _lock:
        s, _server = _server, None
    if s is not None:
        s.stop()


