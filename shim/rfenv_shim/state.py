"""The process-wide state, touched only on the event loop's thread except where noted.

Other modules read and set these as attributes of this module (``state.STATE``), so that
there is one copy of each.
"""

import binascii
import collections
import os
import time

from . import wire

perf = time.perf_counter
mono = time.monotonic


class Stats(object):
    __slots__ = ("requests", "errors", "in_flight", "overdue", "lat", "lat_n")

    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.in_flight = 0
        self.overdue = 0
        self.lat = [0.0] * 1024
        self.lat_n = 0


ST = Stats()
START = mono()
NOW = START  # coarse clock for request timeouts, refreshed by the sweeper

STARTING, READY, FAILED = 0, 1, 2
STATE = STARTING
NOT_READY_PREFIX = wire.P503  # /call and /methods status while not READY (500 after a reload)
NOT_READY_BODY = wire.BODY_NOT_READY  # /call and /methods body while not READY
FAILED_ERROR = None  # the load error {type, message, traceback, file, line} in state FAILED
METHODS = {}  # name -> methods.Method
METHODS_BODY = b""
AVAILABLE = ""

AUTH = None  # expected Authorization value (bytes), or None when auth is off
AUTH_401 = wire.BODY_401

LOOP = None
POOL = None
CONNS = set()
TASKS = set()  # running async calls (strong refs)
create_task = None

# random per process start: a restarted replica has a new one
BOOT_ID = binascii.hexlify(os.urandom(16)).decode("ascii")
BOOT_ID_BYTES = BOOT_ID.encode("ascii")  # as the X-Rfenv-Boot header arrives
DRAINING = False  # draining before an overdue restart: no call starts
HAS_ASYNC = HAS_SYNC = False  # what env.py's methods are (capacity)
ASYNC_CAP = 4096  # async calls run at once (config.MAX_CONCURRENCY)
ASYNC_RUNNING = 0
WAITQ = collections.deque()  # connections whose async call waits for a slot
LOADING = False  # env.py is being (re)loaded
RELOAD_WAITERS = []  # connections whose POST /reload waits for the next load
RESTARTS = {"overdue": 0, "last": None}  # from the restarts file (restart.py)


def queued():
    """Calls accepted that wait for a slot: async ones for ASYNC_CAP, sync ones for a thread."""
    p = POOL
    return len(WAITQ) + (max(0, p.pending - p.max) if p is not None else 0)


def capacity():
    """How many calls can run at once: the async limit, the sync pool, or both for a mixed env.py."""
    n = 0
    if HAS_ASYNC:
        n += ASYNC_CAP
    if HAS_SYNC and POOL is not None:
        n += POOL.max
    return n


def _status():
    """(ok, status) of /health."""
    if STATE == STARTING:
        return False, "starting"
    if STATE == FAILED:
        return False, "failed"
    if DRAINING:
        return False, "draining"
    if ST.overdue:
        return False, "busy"
    return True, "ok"


def health(authed):
    """(ok, body) of GET /health: the status only, unless the caller has the token."""
    ok, status = _status()
    if not authed:
        return ok, b'{"status":"%s"}' % status.encode()
    q = queued()
    h = {"status": status, "boot_id": BOOT_ID, "capacity": capacity(),
         "in_flight": ST.in_flight - (q - len(WAITQ)), "queued": q, "overdue": ST.overdue}
    if STATE == FAILED and FAILED_ERROR is not None:
        h["error"] = FAILED_ERROR
    return ok, wire.jbytes(h)


def stats_body():
    st = ST
    n = min(st.lat_n, 1024)
    if n:
        lat = st.lat[:n]
        mean = sum(lat) / n * 1000.0
        lat.sort()
        p50 = (lat[(n - 1) // 2] + lat[n // 2]) / 2 * 1000.0
    else:
        mean = p50 = 0.0
    q = queued()
    return wire.jbytes({
        "boot_id": BOOT_ID,
        "requests": st.requests,
        "capacity": capacity(),
        # in_flight counts the sync calls waiting for a thread from their submission on
        "in_flight": st.in_flight - (q - len(WAITQ)),
        "queued": q,
        "errors": st.errors,
        "overdue": st.overdue,
        "uptime_s": round(mono() - START, 3),
        "latency_ms": {"mean": round(mean, 4), "p50": round(p50, 4)},
        "restarts": RESTARTS,
    })
