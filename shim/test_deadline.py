"""Deadlines and cancellation of calls."""

import socket
import time
import unittest

from shimtest import ACTOR_ENV, Shim, call_bytes, poll


class DeadlineTest(unittest.TestCase):
    """Deadlines and cancellation; each test gets a fresh server (stats start at zero)."""

    def setUp(self):
        self.shim = Shim(ACTOR_ENV)
        self.shim.wait_ready()

    def tearDown(self):
        try:
            self.shim.check_log()
        finally:
            self.shim.close()

    def test_async_deadline(self):
        s = self.shim
        t0 = time.monotonic()
        status, data = s.call("sleep", 30, _headers={"X-Rfenv-Timeout-Ms": "200"})
        elapsed = time.monotonic() - t0
        self.assertEqual(status, 504)
        self.assertEqual(data["error"]["type"], "DeadlineExceeded")
        self.assertGreater(elapsed, 0.15)
        self.assertLess(elapsed, 2)
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight 0")
        self.assertEqual(s.call("cancelled_count"), (200, {"result": 1}))
        st = s.stats()
        self.assertEqual(st["overdue"], 0)
        self.assertEqual(s.health()[0], 200)
        # a deadline that is not reached changes nothing
        self.assertEqual(s.call("sleep", 0.01, _headers={"X-Rfenv-Timeout-Ms": "5000"}),
                         (200, {"result": 0.01}))

    def test_expired_deadline(self):
        status, data = self.shim.call("add", 1, 2, _headers={"X-Rfenv-Timeout-Ms": "0"})
        self.assertEqual(status, 504)
        status, data = self.shim.call("add", 1, 2, _headers={"X-Rfenv-Timeout-Ms": "soon"})
        self.assertEqual(status, 400)
        status, data = self.shim.call("add", 1, 2, _headers={"X-Rfenv-Timeout-Ms": "9" * 4000})
        self.assertEqual((status, data), (200, {"result": 3}))

    def test_sync_deadline_overdue(self):
        s = self.shim
        t0 = time.monotonic()
        status, data = s.call("ssleep", 1.0, _headers={"X-Rfenv-Timeout-Ms": "100"})
        self.assertEqual(status, 504)
        self.assertLess(time.monotonic() - t0, 0.8)
        self.assertEqual(s.health(), (503, {"status": "busy"}))
        self.assertEqual(s.health(auth=True)[1]["overdue"], 1)
        st = s.stats()
        self.assertEqual((st["overdue"], st["in_flight"]), (1, 0))
        # other calls are still served meanwhile
        self.assertEqual(s.call("add", 2, 2), (200, {"result": 4}))
        poll(lambda: s.health()[0] == 200, 5, what="/health ok after the thread returned")
        self.assertEqual(s.health(), (200, {"status": "ok"}))
        self.assertEqual(s.stats()["overdue"], 0)

    def test_disconnect_cancels_async_call(self):
        s = self.shim
        rc = s.raw()
        rc.send(call_bytes("sleep", [30]))
        poll(lambda: s.stats()["in_flight"] == 1, 5, what="the call in flight")
        rc.close()
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight back to 0")
        self.assertEqual(s.call("cancelled_count"), (200, {"result": 1}))

    def test_half_close_cancels_async_call(self):
        s = self.shim
        rc = s.raw()
        rc.send(call_bytes("sleep", [30]))
        poll(lambda: s.stats()["in_flight"] == 1, 5, what="the call in flight")
        rc.sock.shutdown(socket.SHUT_WR)  # what Go's transport does on cancel: FIN
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight back to 0")
        self.assertTrue(rc.closed())
        rc.close()

    def test_disconnect_during_sync_call(self):
        s = self.shim
        rc = s.raw()
        rc.send(call_bytes("ssleep", [0.3]))
        poll(lambda: s.stats()["in_flight"] == 1, 5, what="the call in flight")
        rc.close()
        # the thread cannot be stopped; it finishes and its result is dropped
        poll(lambda: s.stats()["in_flight"] == 0, 5, what="in_flight back to 0")
        self.assertEqual(s.call("add", 1, 2), (200, {"result": 3}))

    def test_partial_request_times_out(self):
        s2 = Shim(ACTOR_ENV, env={"RFENV_REQUEST_TIMEOUT": "0.5"})
        try:
            s2.wait_ready()
            idle = s2.raw()
            partial = s2.raw()
            partial.send(b"POST /call HTTP/1.1\r\nContent-Len")
            t0 = time.monotonic()
            status, _, _ = partial.response()
            self.assertEqual(status, 408)
            self.assertLess(time.monotonic() - t0, 3)
            self.assertTrue(partial.closed())
            partial.close()
            stalled = s2.raw()  # complete headers, stalled body
            stalled.send(b"POST /call HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            self.assertEqual(stalled.response()[0], 408)
            self.assertTrue(stalled.closed())
            stalled.close()
            # an idle keep-alive connection without a partial request stays open
            idle.send(b"GET /health HTTP/1.1\r\n\r\n")
            self.assertEqual(idle.response()[0], 200)
            idle.close()
        finally:
            s2.close()


if __name__ == "__main__":
    unittest.main()
