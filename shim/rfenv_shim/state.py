"""The process-wide state, touched only on the event loop's thread except where noted.

Other modules read and set these as attributes of this module (``state.STATE``), so that
there is one copy of each.
"""

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
FAILED_BODY = b""  # /health body in state FAILED
NOT_READY_BODY = wire.BODY_NOT_READY  # /call and /methods body while not READY
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
    return wire.jbytes({
        "requests": st.requests,
        "in_flight": st.in_flight,
        "errors": st.errors,
        "overdue": st.overdue,
        "uptime_s": round(mono() - START, 3),
        "latency_ms": {"mean": round(mean, 4), "p50": round(p50, 4)},
    })
