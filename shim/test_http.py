"""The shim's HTTP/1.1 handling: limits, malformed requests, pipelining, keep-alive."""

import json
import threading
import time
import unittest

from shimtest import ACTOR_ENV, TOKEN, Shim, call_bytes


class HTTPTest(unittest.TestCase):
    """HTTP/1.1 framing over raw sockets, against one shared server with an Actor."""

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

    def test_surrogates_escaped_and_body_is_utf8(self):
        rc = self.shim.raw()
        try:
            rc.send(call_bytes("echo", ["\u2603\udc80"]))
            status, _, raw = rc.response()
        finally:
            rc.close()
        self.assertEqual(status, 200)
        raw.decode("ascii")  # ensure_ascii: always valid UTF-8 (ASCII even)
        self.assertIn(b"\\u2603\\udc80", raw)

    def test_large_payload(self):
        big = "x" * (16 << 20)
        status, data = self.shim.call("echo", big, _timeout=60)
        self.assertEqual(status, 200)
        self.assertEqual(len(data["result"]), len(big))
        self.assertTrue(data["result"] == big)

    def test_body_over_limit(self):
        rc = self.shim.raw()
        try:
            rc.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                    + b"\r\nContent-Length: %d\r\n\r\n" % ((64 << 20) + 1) + b"x" * 100000)
            status, headers, body = rc.response()
            self.assertEqual(status, 413)
            self.assertEqual(headers.get("connection"), "close")
            self.assertEqual(json.loads(body)["error"]["type"], "PayloadTooLarge")
            self.assertTrue(rc.closed())
        finally:
            rc.close()
        rc = self.shim.raw()
        try:
            rc.send(b"POST /call HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
            self.assertEqual(rc.response()[0], 413)
        finally:
            rc.close()

    def test_too_many_headers(self):
        rc = self.shim.raw()
        try:
            hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
            rc.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
            status, headers, _ = rc.response()
            self.assertEqual(status, 431)
            self.assertTrue(rc.closed())
        finally:
            rc.close()
        rc = self.shim.raw()
        try:  # exactly 100 headers is fine
            hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(99))
            rc.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
            self.assertEqual(rc.response()[0], 200)
        finally:
            rc.close()

    def test_header_bytes_over_limit(self):
        rc = self.shim.raw()
        try:
            rc.send(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * (70 << 10))
            status, _, _ = rc.response()
            self.assertEqual(status, 431)
            self.assertTrue(rc.closed())
        finally:
            rc.close()

    def test_garbage(self):
        for junk in (b"hello world\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                     b"GET /health HTTP/2.0\r\n\r\n", b"GET health HTTP/1.1\r\n\r\n",
                     b"GET /health HTTP/1.1 extra\r\n\r\n",
                     b"POST /call HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                     b"POST /call HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                     b"POST /call HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"):
            rc = self.shim.raw()
            try:
                rc.send(junk)
                status, headers, body = rc.response()
                self.assertEqual(status, 400, junk)
                self.assertEqual(json.loads(body)["error"]["type"], "BadRequest")
                self.assertTrue(rc.closed(), junk)
            finally:
                rc.close()

    def test_chunked_is_refused(self):
        rc = self.shim.raw()
        try:
            rc.send(b"POST /call HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            status, _, _ = rc.response()
            self.assertEqual(status, 501)
            self.assertTrue(rc.closed())
        finally:
            rc.close()

    def test_pipelined_in_one_packet(self):
        rc = self.shim.raw()
        try:
            rc.send(call_bytes("ssleep", [0.05]) + b"GET /health HTTP/1.1\r\n\r\n"
                    + call_bytes("aadd", [1]) + call_bytes("add", [2, 3])
                    + call_bytes("nope") + call_bytes("echo", ["last"]))
            results = [rc.response() for _ in range(6)]
        finally:
            rc.close()
        self.assertEqual([r[0] for r in results], [200, 200, 200, 200, 404, 200])
        self.assertEqual(json.loads(results[0][2]), {"result": 0.05})
        self.assertEqual(json.loads(results[2][2]), {"result": 3})
        self.assertEqual(json.loads(results[3][2]), {"result": 5})
        self.assertEqual(json.loads(results[5][2]), {"result": "last"})

    def test_large_pipelined_request_behind_a_slow_call(self):
        # more than the read-pause threshold arrives while a call runs: reading pauses and
        # resumes, and both requests are answered in order
        rc = self.shim.raw(timeout=30)
        try:
            big = "y" * (3 << 20)
            data = call_bytes("ssleep", [0.2]) + call_bytes("echo", [big])
            sender = threading.Thread(target=rc.send, args=(data,))
            sender.start()
            s1, _, b1 = rc.response()
            s2, _, b2 = rc.response()
            sender.join()
        finally:
            rc.close()
        self.assertEqual((s1, json.loads(b1)), (200, {"result": 0.2}))
        self.assertEqual(s2, 200)
        self.assertTrue(json.loads(b2)["result"] == big)

    def test_split_across_packets(self):
        rc = self.shim.raw()
        try:
            data = call_bytes("add", [20, 22])
            for i in range(0, len(data), 7):
                rc.send(data[i:i + 7])
                if i < 60:
                    time.sleep(0.002)
            status, _, body = rc.response()
            self.assertEqual((status, json.loads(body)), (200, {"result": 42}))
            rc.send(data)  # keep-alive: the same connection goes on
            self.assertEqual(rc.response()[0], 200)
        finally:
            rc.close()

    def test_expect_100_continue(self):
        rc = self.shim.raw()
        try:
            body = json.dumps({"method": "add", "args": [1, 1]}).encode()
            rc.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                    + b"\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            status, _, _ = rc.response()
            self.assertEqual(status, 100)
            rc.send(body)
            status, _, raw = rc.response()
            self.assertEqual((status, json.loads(raw)), (200, {"result": 2}))
        finally:
            rc.close()

    def test_http10_and_connection_close(self):
        rc = self.shim.raw()
        try:
            rc.send(b"GET /health HTTP/1.0\r\n\r\n")
            status, headers, _ = rc.response()
            self.assertEqual((status, headers.get("connection")), (200, "close"))
            self.assertTrue(rc.closed())
        finally:
            rc.close()
        rc = self.shim.raw()
        try:
            rc.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = rc.response()
            self.assertEqual((status, headers.get("connection")), (200, "keep-alive"))
            rc.send(b"GET /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            self.assertEqual(rc.response()[0], 200)
        finally:
            rc.close()
        rc = self.shim.raw()
        try:
            rc.send(call_bytes("add", [1, 2], extra=b"Connection: close\r\n")
                    + b"GET /health HTTP/1.1\r\n\r\n")
            status, headers, body = rc.response()
            self.assertEqual((status, headers.get("connection")), (200, "close"))
            self.assertTrue(rc.closed())
            self.assertEqual(rc.buf, b"")  # the pipelined request after it is not answered
        finally:
            rc.close()

    def test_slow_client_does_not_block_others(self):
        slow = self.shim.raw()
        try:
            slow.send(b"POST /call HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode()
                      + b"\r\nContent-Length: 40\r\n\r\n{\"meth")
            t0 = time.monotonic()
            self.assertEqual(self.shim.call("add", 1, 2), (200, {"result": 3}))
            self.assertEqual(self.shim.health()[0], 200)
            self.assertLess(time.monotonic() - t0, 2)
            slow.send(b'od": "add", "args": [1, 2]}' + b" " * 7)  # now 40 bytes
            status, _, body = slow.response()
            self.assertEqual((status, json.loads(body)), (200, {"result": 3}))
        finally:
            slow.close()


if __name__ == "__main__":
    unittest.main()
