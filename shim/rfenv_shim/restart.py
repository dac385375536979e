"""The overdue restart: a sync call still running RFENV_OVERDUE_RESTART_MS past its deadline holds
a thread the shim can never get back, so the shim restarts.  It stops starting calls (429, /health
"draining"), answers the calls waiting for a slot 429 (they never ran), lets the calls in flight
finish (each by its own deadline; one without a deadline for at most RFENV_OVERDUE_RESTART_MS),
records the event in the restarts file and exits 75.  Docker's restart policy (unless-stopped) or
Kubernetes starts a new process, which reads the file: /stats "restarts".
"""

import json
import os
import sys
import time

from . import config as C
from . import state as S
from .wire import BODY_429_DRAINING, P429

EXIT_CODE = 75  # EX_TEMPFAIL
_DRAIN_POLL = 0.05  # seconds between checks of whether the calls in flight are done


def path():
    # /tmp of the container: it survives a restart of the container (not its removal)
    return os.environ.get("RFENV_RESTARTS_FILE") or "/tmp/rfenv-restarts.json"


def load():
    """Read the restarts of earlier processes of this container into S.RESTARTS."""
    try:
        with open(path()) as f:
            rec = json.load(f)
        n = int(rec.get("overdue", 0))
        last = rec.get("last")
        S.RESTARTS = {"overdue": n, "last": last if isinstance(last, dict) else None}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, TypeError, AttributeError) as e:
        C.log("ignoring the unreadable restarts file %s: %s" % (path(), e))


def _record(method, overdue_s):
    rec = {"overdue": S.RESTARTS["overdue"] + 1,
           "last": {"at": round(time.time(), 3), "method": method, "overdue_s": round(overdue_s, 3)}}
    S.RESTARTS = rec
    p = path()
    tmp = p + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(rec, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)  # atomic: a crash leaves the old record or the new one
    except OSError as e:
        C.log("cannot record the restart in %s: %s" % (p, e))


def watch(job, method, deadline):
    """A sync call passed its deadline (monotonic time `deadline`): check it again when it is
    RFENV_OVERDUE_RESTART_MS past."""
    if C.OVERDUE_RESTART <= 0:
        return
    S.LOOP.call_later(max(0.0, deadline + C.OVERDUE_RESTART - S.mono()), _check, job, method,
                      deadline)


def _check(job, method, deadline):
    from .pool import JOB_OVERDUE
    if job.state == JOB_OVERDUE:  # its thread still runs
        begin(method, S.mono() - deadline)


def begin(method, overdue_s):
    if S.DRAINING:
        return
    S.DRAINING = True
    try:
        sys.stderr.write("rfenv: restarting: call %s is %ds past its deadline\n"
                         % (method, int(overdue_s)))
        sys.stderr.flush()
    except Exception:
        pass
    # the calls waiting for a slot never started: the client queues or fails over
    while S.WAITQ:
        c = S.WAITQ.popleft()
        c.c_wait = None
        c._call_answered(P429, BODY_429_DRAINING)
    for c in list(S.CONNS):
        job = c.c_job
        if job is not None and S.POOL.unqueue(job):
            c.c_job = None
            S.ST.in_flight -= 1
            c._call_answered(P429, BODY_429_DRAINING)
    _record(method, overdue_s)
    _drain(S.mono() + C.OVERDUE_RESTART)


def _drain(no_deadline_until):
    now = S.mono()
    for c in S.CONNS:
        if c.c_task is None and c.c_job is None:
            continue
        if c.c_deadline is not None or now < no_deadline_until:
            S.LOOP.call_later(_DRAIN_POLL, _drain, no_deadline_until)
            return
    C.log("restarting: the calls in flight are answered; exiting with status %d" % EXIT_CODE)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(EXIT_CODE)  # threads that never return cannot be joined
