"""Issue 11 defect 12 over raw sockets: strict header parsing, Transfer-Encoding 501, idle and
connection limits, a total deadline for a request body, /health without the token."""

import json
import select
import unittest

from shimtest import ACTOR_ENV, TOKEN, Shim, call_bytes, poll


def refused(rc, status, etype):
    """The answer is status with error type etype, then the connection closes."""
    got, headers, body = rc.response()
    return (got, json.loads(body)["error"]["type"], headers.get("connection"), rc.closed()) == (
        status, etype, "close", True)


class StrictParsingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.shim = Shim(ACTOR_ENV)
        cls.shim.wait_ready()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.shim.check_log()
        finally:
            cls.shim.close()

    def send(self, data):
        rc = self.shim.raw(timeout=60)
        self.addCleanup(rc.close)
        rc.send(data)
        return rc

    def test_space_before_colon_is_rejected(self):
        body = b'{"method": "add", "args": [1, 2]}'
        for hdr in (b"Content-Length : %d" % len(body), b"Content-Length\t: %d" % len(body),
                    b" Content-Length: %d" % len(body)):
            rc = self.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                           + b"\r\n" + hdr + b"\r\n\r\n" + body)
            self.assertTrue(refused(rc, 400, "BadRequest"), hdr)
        # without the space it is the same request, and it works
        rc = self.send(call_bytes("add", [1, 2]))
        status, _, raw = rc.response()
        self.assertEqual((status, json.loads(raw)), (200, {"result": 3}))

    def test_malformed_header_lines(self):
        for line in (b"NoColonHere", b": empty-name", b"Bad Name: v", b"X-Folded: a\r\n continued"):
            rc = self.send(b"GET /health HTTP/1.1\r\n" + line + b"\r\n\r\n")
            self.assertTrue(refused(rc, 400, "BadRequest"), line)

    def test_bare_lf_is_rejected_at_once(self):
        # a client that ends lines with LF alone never sends CRLFCRLF: refused as soon as the first
        # bare LF arrives, not after a timeout
        for data in (b"GET /health HTTP/1.1\n", b"GET /health HTTP/1.1\r\nHost: x\n",
                     b"GET /health HTTP/1.1\nHost: x\n\n",
                     b"GET /health HTTP/1.1\r\nHost: x\n\r\n"):
            rc = self.send(data)
            self.assertTrue(refused(rc, 400, "BadRequest"), data)

    def test_bare_cr_is_rejected(self):
        rc = self.send(b"GET /health HTTP/1.1\r\nX-A: a\rb\r\n\r\n")
        self.assertTrue(refused(rc, 400, "BadRequest"))

    def test_transfer_encoding_is_not_implemented(self):
        for te in (b"chunked", b"gzip, chunked", b"identity"):
            rc = self.send(b"POST /call HTTP/1.1\r\nTransfer-Encoding: " + te
                           + b"\r\nContent-Length: 2\r\n\r\n{}")
            self.assertTrue(refused(rc, 501, "NotImplemented"), te)

    def test_health_without_token_says_only_the_status(self):
        for extra in (b"", b"Authorization: Bearer wrong\r\n", b"Authorization: " + TOKEN.encode()
                      + b"\r\n"):
            rc = self.send(b"GET /health HTTP/1.1\r\n" + extra + b"\r\n")
            status, _, body = rc.response()
            self.assertEqual((status, json.loads(body)), (200, {"status": "ok"}), extra)
        rc = self.send(b"GET /health HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                       + b"\r\n\r\n")
        status, _, body = rc.response()
        self.assertIn("boot_id", json.loads(body))


class FailedHealthTest(unittest.TestCase):

    def test_load_error_is_not_shown_without_the_token(self):
        s = Shim('import os\nraise RuntimeError("db password " + os.environ["PW"])\n',
                 secrets={"PW": "hunter2-secret"})
        self.addCleanup(s.close)
        self.assertIn("hunter2-secret", s.failed()["error"]["message"])  # with the token
        rc = s.raw(timeout=60)
        self.addCleanup(rc.close)
        rc.send(b"GET /health HTTP/1.1\r\n\r\n")
        status, _, body = rc.response()
        self.assertEqual((status, body), (503, b'{"status":"failed"}'))


class ConnectionLimitsTest(unittest.TestCase):

    def start(self, **env):
        s = Shim(ACTOR_ENV, env=env)
        self.addCleanup(s.close)
        s.wait_ready()
        return s

    def raw(self, s):
        rc = s.raw(timeout=60)
        self.addCleanup(rc.close)
        return rc

    def test_idle_connection_is_closed(self):
        s = self.start(RFENV_IDLE_TIMEOUT="0.3")
        busy = self.raw(s)
        busy.send(call_bytes("ssleep", [1.0]))  # a call longer than the idle timeout
        idle = self.raw(s)
        idle.send(b"GET /health HTTP/1.1\r\n\r\n")
        self.assertEqual(idle.response()[0], 200)
        self.assertTrue(idle.closed(timeout=60))
        # the connection with a call running is not idle: it gets its answer
        status, _, body = busy.response()
        self.assertEqual((status, json.loads(body)), (200, {"result": 1.0}))

    def test_connections_beyond_the_limit_get_429(self):
        s = self.start(RFENV_MAX_CONNECTIONS="2")
        held = [self.raw(s) for _ in range(2)]
        for rc in held:
            rc.send(b"GET /health HTTP/1.1\r\n\r\n")
            self.assertEqual(rc.response()[0], 200)
        extra = self.raw(s)
        extra.send(call_bytes("add", [1, 2]))
        self.assertTrue(refused(extra, 429, "Busy"))
        held[0].close()

        def served():
            rc = s.raw(timeout=60)
            try:
                rc.send(call_bytes("add", [1, 2]))
                return rc.response()[0] == 200
            finally:
                rc.close()
        poll(served, 60, what="a new connection served once one closed")

    def test_connections_far_beyond_the_limit_are_reset(self):
        s = self.start(RFENV_MAX_CONNECTIONS="1")
        first = self.raw(s)
        first.send(b"GET /health HTTP/1.1\r\n\r\n")
        self.assertEqual(first.response()[0], 200)
        overflow = [self.raw(s) for _ in range(64)]  # open, idle: each would be answered 429
        # once 1 + 64 are open, the next is reset without an answer (attempts that come too early
        # are answered 429 and count towards the 64 themselves)
        poll(lambda: self._reset_without_answer(s), 60, what="a connection reset without an answer")
        overflow[0].send(b"GET /health HTTP/1.1\r\n\r\n")
        self.assertTrue(refused(overflow[0], 429, "Busy"))

    def _reset_without_answer(self, s):
        rc = s.raw(timeout=60)
        self.addCleanup(rc.close)  # an answered one stays open: it counts
        try:
            rc.send(b"GET /health HTTP/1.1\r\n\r\n")
            status = rc.response()[0]
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return rc.buf == b""
        self.assertEqual(status, 429)
        return False

    def test_body_sent_a_byte_at_a_time_times_out(self):
        s = self.start(RFENV_REQUEST_TIMEOUT="1")
        rc = self.raw(s)
        need = 100000  # would take hours at the pace below
        rc.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                + b"\r\nContent-Length: %d\r\n\r\n{" % need)
        sent = 1
        while sent < need:
            r, _, _ = select.select([rc.sock], [], [], 0.05)  # paced, and watching for the answer
            if r:
                break
            rc.send(b" ")
            sent += 1
        status, _, body = rc.response()
        self.assertEqual((status, json.loads(body)["error"]["type"]), (408, "RequestTimeout"))
        self.assertLess(sent, need)


if __name__ == "__main__":
    unittest.main()
