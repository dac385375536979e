"""Startup and shutdown: read the settings, listen, load env.py in a thread, run the loop."""

import asyncio
import os
import signal
import sys
import threading

from . import SHIM_VERSION
from . import config as C
from . import loader
from . import restart
from . import state as S
from . import wire
from .conn import Conn
from .pool import Pool


def _sweep(interval):
    S.NOW = now = S.mono()
    for c in list(S.CONNS):
        c._timeout_check(now)
    S.LOOP.call_later(interval, _sweep, interval)


def _make_task_factory(loop):
    if sys.version_info >= (3, 12):
        Task = asyncio.Task

        def create(coro):
            # eager: runs synchronously until the first real suspension; a method that
            # never awaits a pending future finishes without a loop round-trip
            return Task(coro, loop=loop, eager_start=True)
        return create
    return loop.create_task


def _auth_from_env():
    token = os.environ.get("RFENV_TOKEN", "")
    if token:
        S.AUTH = b"Bearer " + token.encode("utf-8", "surrogateescape")
    elif os.environ.get("RFENV_INSECURE_NO_AUTH") == "1":
        S.AUTH = None
        C.log("warning: RFENV_TOKEN is empty and RFENV_INSECURE_NO_AUTH=1: no authentication")
    else:
        # an unguessable value: every authenticated request is refused
        S.AUTH = b"\x00" + os.urandom(32)
        S.AUTH_401 = wire.BODY_401_NOTOKEN
        C.log("warning: RFENV_TOKEN is empty: /call, /methods and /stats answer 401")


def main():
    S.START = S.NOW = S.mono()
    try:
        sys.stdout.reconfigure(line_buffering=True)  # env.py's prints reach `docker logs`
    except Exception:
        pass
    C.load()
    port = C.env_num("RFENV_PORT", 8000)
    host = os.environ.get("RFENV_HOST") or "0.0.0.0"
    _auth_from_env()
    secrets_err = loader.load_secrets()
    restart.load()

    if os.environ.get("RFENV_UVLOOP") == "1":
        try:
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            C.log("RFENV_UVLOOP=1 but uvloop is not importable; using asyncio")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    S.LOOP = loop
    S.create_task = _make_task_factory(loop)
    S.POOL = Pool(loop, C.SYNC_WORKERS)
    S.ASYNC_CAP = C.MAX_CONCURRENCY

    server = loop.run_until_complete(loop.create_server(
        Conn, host, port, reuse_address=True, backlog=C.BACKLOG))
    bound = server.sockets[0].getsockname()
    C.log("v%s listening on %s:%d (python %s, pid %d, boot %s)"
          % (SHIM_VERSION, bound[0], bound[1], sys.version.split()[0], os.getpid(), S.BOOT_ID))

    stopping = []

    def stop(signame):
        if stopping:
            os._exit(1)
        stopping.append(signame)
        loop.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)

    init = loader.start(loop, secrets_err)
    interval = max(0.05, min(1.0, C.REQUEST_TIMEOUT / 4, C.IDLE_TIMEOUT / 4))
    loop.call_later(interval, _sweep, interval)
    try:
        loop.run_forever()
    finally:
        server.close()
        for c in list(S.CONNS):
            if c.transport is not None:
                c.transport.abort()
    C.log("%s: exiting" % (stopping[0] if stopping else "stopped"))
    busy = S.ST.in_flight or S.ST.overdue or S.POOL.pending or S.LOADING or init.is_alive()
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
