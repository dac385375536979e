"""Routing a request to its handler, and /call: binding, admission, deadlines, replies.

Calls is a mixin of conn.Conn: the handlers use the connection's fields (c_* for the call
in flight, r_* for the request being handled).
"""

from . import config as C
from . import loader
from . import restart
from . import state as S
from .pool import JOB_ABANDONED, JOB_FINISHED, JOB_OVERDUE, Job
from .results import encode_result
from hmac import compare_digest as compare

from .wire import (BODY_405_GET, BODY_405_POST, BODY_404_PATH, BODY_504,
                   BODY_410_BOOT, BODY_429_DRAINING, BODY_429_FULL, P200, P400, P401, P404, P405_GET, P503,
                   P405_POST, P410, P429, P500, P504, decode,
                   err_body, exc_body)


class Calls(object):
    __slots__ = ()

    def _authed(self):
        return S.AUTH is None or (self.r_auth is not None and compare(self.r_auth, S.AUTH))

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
            else:
                # without the token only the status: the details (a load error's traceback
                # above all) can carry secrets
                ok, body = S.health(self.r_auth is not None and self._authed())
                self._send(P200 if ok else P503, body)
        elif path == b"/reload":
            if method != b"POST":
                self._send(P405_POST, BODY_405_POST)
            elif not self._authed():
                self._send(P401, S.AUTH_401)
            else:
                self.busy = True  # requests pipelined behind it wait for its answer
                loader.request_reload(self)
        elif path == b"/methods" or path == b"/stats":
            if method != b"GET":
                self._send(P405_GET, BODY_405_GET)
            elif not self._authed():
                self._send(P401, S.AUTH_401)
            elif path == b"/stats":
                self._send(P200, S.stats_body())
            elif S.STATE != S.READY:
                self._send(S.NOT_READY_PREFIX, S.NOT_READY_BODY)
            else:
                self._send(P200, S.METHODS_BODY)
        else:
            self._send(P404, BODY_404_PATH)

    # -- /call ---------------------------------------------------------------

    def _reply_call(self, t0, prefix, body):
        st = S.ST
        st.requests += 1
        if prefix is not P200:
            st.errors += 1
        st.lat[st.lat_n & 1023] = S.perf() - t0
        st.lat_n += 1
        self._send(prefix, body)

    def _call(self, body):
        t0 = S.perf()
        if not self._authed():
            return self._reply_call(t0, P401, S.AUTH_401)
        if self.r_boot is not None and self.r_boot != S.BOOT_ID_BYTES:
            # A session's call for the process it started on: this one has none of its state.
            return self._reply_call(t0, P410, BODY_410_BOOT)
        if S.STATE != S.READY:
            return self._reply_call(t0, S.NOT_READY_PREFIX, S.NOT_READY_BODY)
        try:
            req = decode(body.decode("utf-8"))
        except Exception as e:  # ValueError, UnicodeDecodeError, RecursionError
            return self._reply_call(t0, P400, err_body("BadRequest", "malformed JSON body: %s" % e))
        if type(req) is not dict:
            return self._reply_call(t0, P400, err_body(
                "BadRequest", 'the body must be a JSON object {"method","args","kwargs"}'))
        name = req.get("method")
        m = S.METHODS.get(name) if type(name) is str else None
        if m is None:
            if type(name) is not str:
                msg = '"method" (a string) is missing'
                return self._reply_call(t0, P400, err_body("BadRequest", msg))
            return self._reply_call(t0, P404, err_body(
                "NotFound", "no method %r; available: %s" % (name, S.AVAILABLE)))
        args = req.get("args")
        if args is None:
            args = ()
        elif type(args) is not list:
            return self._reply_call(t0, P400, err_body("BadRequest", '"args" must be a JSON array'))
        kwargs = req.get("kwargs")
        if kwargs is None:
            kwargs = {}
        elif type(kwargs) is not dict:
            return self._reply_call(t0, P400, err_body("BadRequest", '"kwargs" must be a JSON object'))
        if kwargs or not (m.min_pos <= len(args) <= m.max_pos):
            err = m.check(args, kwargs)
            if err is not None:
                return self._reply_call(t0, P400, err_body("TypeError", err))
        delay = None
        if self.r_timeout is not None:
            tv = self.r_timeout
            if not tv.isdigit():
                try:
                    delay = int(tv)
                except ValueError:
                    return self._reply_call(t0, P400, err_body(
                        "BadRequest", "invalid X-Rfenv-Timeout-Ms header"))
            else:
                delay = int(tv)
            if delay <= 0:
                return self._reply_call(t0, P504, BODY_504)
            delay = min(delay, 10 ** 10) / 1000.0  # (no float overflow on absurd values)
        if S.DRAINING:
            return self._reply_call(t0, P429, BODY_429_DRAINING)
        if m.is_async:
            start = S.ASYNC_RUNNING < S.ASYNC_CAP and not S.WAITQ
        else:
            start = S.POOL.pending < S.POOL.max
        if not start and S.queued() >= C.MAX_QUEUE:
            return self._reply_call(t0, P429, BODY_429_FULL)
        self.c_t0 = t0
        self.c_name = name
        self.busy = True
        if delay is not None:
            self.c_deadline = S.mono() + delay
            self.c_timer = S.LOOP.call_later(delay, self._deadline)
        else:
            self.c_deadline = None
        if not m.is_async:
            S.ST.in_flight += 1
            job = Job(m.fn, args, kwargs, self)
            self.c_job = job
            S.POOL.submit(job)  # beyond the pool's threads it waits in the pool's queue
        elif start:
            r = self._start_async(m.fn, args, kwargs)
            if r is not None:  # raised or finished at once: answered within this request
                if self.c_timer is not None:
                    self.c_timer.cancel()
                    self.c_timer = None
                self.busy = False
                self._reply_call(t0, *r)
        else:
            self.c_wait = (m.fn, args, kwargs)
            S.WAITQ.append(self)

    def _start_async(self, fn, args, kwargs):
        """Start an async call; (prefix, body) if it is already answered, else None."""
        try:
            task = S.create_task(fn(*args, **kwargs))
        except BaseException as e:
            return P500, exc_body(e)
        if task.done():  # finished eagerly (Python 3.12+)
            return self._task_result(task)
        S.ST.in_flight += 1
        S.ASYNC_RUNNING += 1
        S.TASKS.add(task)
        self.c_task = task
        task.add_done_callback(self._task_done)

    def _call_answered(self, prefix, body):
        """Answer the call in flight (no task or job of it is left) and go on."""
        if self.c_timer is not None:
            self.c_timer.cancel()
            self.c_timer = None
        self._reply_call(self.c_t0, prefix, body)
        self._next()

    def _task_result(self, task):
        if task.cancelled():
            return P500, err_body("CancelledError", "the call was cancelled inside the environment")
        exc = task.exception()
        if exc is not None:
            return P500, exc_body(exc)
        return encode_result(self.c_name, task.result())

    def _task_done(self, task):
        S.ST.in_flight -= 1
        S.ASYNC_RUNNING -= 1
        S.TASKS.discard(task)
        if task is not self.c_task:  # abandoned: deadline passed or client gone
            if not task.cancelled():
                task.exception()  # mark retrieved
        else:
            self.c_task = None
            self._call_answered(*self._task_result(task))
        start_waiting()

    def _job_done(self, job):
        st = job.state
        if st == JOB_OVERDUE:
            job.state = JOB_FINISHED
            S.ST.overdue -= 1
            return
        S.ST.in_flight -= 1
        if st == JOB_ABANDONED:
            return
        self.c_job = None
        if job.ok:
            prefix, body = encode_result(self.c_name, job.value)
        else:
            prefix, body = P500, exc_body(job.value)
        job.value = None
        self._call_answered(prefix, body)

    def _deadline(self):
        self.c_timer = None
        task = self.c_task
        job = self.c_job
        if task is not None:
            self.c_task = None
            task.cancel()  # _task_done drops in_flight when it has unwound
        elif job is not None:
            self.c_job = None
            S.ST.in_flight -= 1
            if S.POOL.unqueue(job):  # still waiting for a thread: it never runs
                job.state = JOB_ABANDONED
            else:
                job.state = JOB_OVERDUE
                S.ST.overdue += 1
                self._overdue(job)
        elif self.c_wait is not None:
            self.c_wait = None
            S.WAITQ.remove(self)
        else:
            return
        self._call_answered(P504, BODY_504)

    def _overdue(self, job):
        """A sync call's thread runs past its deadline: the overdue restart watches it."""
        restart.watch(job, self.c_name, self.c_deadline)

    def _reloaded(self, prefix, body):
        """The reload this connection asked for is done."""
        self._send(prefix, body)
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
        wait = self.c_wait
        if task is None and job is None and wait is None:
            return
        self.c_task = None
        self.c_job = None
        self.c_wait = None
        S.ST.requests += 1
        S.ST.errors += 1
        if task is not None:
            task.cancel()
        elif job is not None:
            job.state = JOB_ABANDONED
            if S.POOL.unqueue(job):
                S.ST.in_flight -= 1
        else:
            S.WAITQ.remove(self)


def start_waiting():
    """Start the async calls waiting for a slot, first come first served, while slots are free."""
    q = S.WAITQ
    while q and S.ASYNC_RUNNING < S.ASYNC_CAP and not S.DRAINING:
        c = q.popleft()
        fn, args, kwargs = c.c_wait
        c.c_wait = None
        r = c._start_async(fn, args, kwargs)
        if r is not None:
            c._call_answered(*r)
