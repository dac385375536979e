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
THREADS = 32


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
    global MAX_BODY, REQUEST_TIMEOUT, THREADS
    MAX_BODY = env_num("RFENV_MAX_BODY", MAX_BODY)
    REQUEST_TIMEOUT = env_num("RFENV_REQUEST_TIMEOUT", REQUEST_TIMEOUT, float)
    THREADS = env_num("RFENV_THREADS", THREADS)
