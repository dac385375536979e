"""Settings from the environment, the server's limits, and logging to stderr."""

import os
import sys

# Limits; main() overrides some of them from the environment (see load()).
MAX_BODY = 64 << 20
MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 << 10
REQUEST_TIMEOUT = 30.0
PAUSE_READ_AT = 256 << 10  # pipelined bytes buffered behind a running call
LINGER = 2.0  # seconds to drain a connection we are closing after an error
MAX_CONCURRENCY = 4096  # async calls run at once
SYNC_WORKERS = min(32, (os.cpu_count() or 1) + 4)  # threads for sync calls (as concurrent.futures)
MAX_QUEUE = 4096  # calls waiting inside the shim for a slot
OVERDUE_RESTART = 0.0  # seconds past its deadline a call may run before the shim restarts; 0: never
BACKLOG = 4096
IDLE_TIMEOUT = 120.0  # seconds an idle keep-alive connection stays open
MAX_CONNECTIONS = 8192  # connections served; beyond, 429 and close (the async limit, twice)
CONN_OVERFLOW = 64  # connections beyond MAX_CONNECTIONS that still get their 429; then: reset
MIN_BODY_RATE = float(1 << 20)  # bytes/s a body may be sent at, beyond REQUEST_TIMEOUT


def log(msg):
    try:
        sys.stderr.write("rfenv-shim: %s\n" % msg)
        sys.stderr.flush()
    except Exception:
        pass


def env_num(name, default, conv=int):
    v = os.environ.get(name, "").strip()
    if not v:
        return default
    try:
        return conv(v)
    except ValueError:
        log("ignoring invalid %s=%r" % (name, v))
        return default


def load():
    """Read the limits from the environment (once, at startup)."""
    global MAX_BODY, REQUEST_TIMEOUT, MAX_CONCURRENCY, SYNC_WORKERS, MAX_QUEUE, OVERDUE_RESTART
    global IDLE_TIMEOUT, MAX_CONNECTIONS
    MAX_BODY = env_num("RFENV_MAX_BODY", MAX_BODY)
    REQUEST_TIMEOUT = env_num("RFENV_REQUEST_TIMEOUT", REQUEST_TIMEOUT, float)
    conc = env_num("RFENV_MAX_CONCURRENCY", 0)
    MAX_CONCURRENCY = max(1, conc) if conc else MAX_CONCURRENCY
    # RFENV_THREADS: the name of version 1
    SYNC_WORKERS = max(1, env_num("RFENV_SYNC_WORKERS", env_num("RFENV_THREADS", SYNC_WORKERS)))
    if conc:  # "calls run at once" bounds the sync pool too
        SYNC_WORKERS = min(SYNC_WORKERS, MAX_CONCURRENCY)
    MAX_QUEUE = max(0, env_num("RFENV_MAX_QUEUE", MAX_QUEUE))
    IDLE_TIMEOUT = env_num("RFENV_IDLE_TIMEOUT", IDLE_TIMEOUT, float)
    MAX_CONNECTIONS = max(1, env_num("RFENV_MAX_CONNECTIONS", MAX_CONNECTIONS))
    OVERDUE_RESTART = max(0.0, env_num("RFENV_OVERDUE_RESTART_MS", 0, float) / 1000.0)
