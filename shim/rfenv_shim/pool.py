"""Worker threads for sync methods (see Pool)."""

import collections
import queue
import threading

from .state import perf as _perf

JOB_RUNNING, JOB_OVERDUE, JOB_ABANDONED, JOB_FINISHED = 0, 1, 2, 3


class Job(object):
    __slots__ = ("fn", "args", "kwargs", "conn", "ok", "value", "state")

    def __init__(self, fn, args, kwargs, conn):
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.conn = conn
        self.state = JOB_RUNNING


class Pool(object):
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

    def unqueue(self, job):
        """Take a job that no thread has started out of the queue; whether it was there."""
        try:
            self.batch.remove(job)  # batch: loop thread only
        except ValueError:
            with self.lock:
                try:
                    self.jobs.remove(job)
                except ValueError:
                    return False  # a thread runs it (or ran it)
        self.pending -= 1
        return True

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

