"""The per-connection protocol: buffering, request framing, timeouts, writing responses.

One asyncio.Protocol per connection parses HTTP/1.1 itself (see framing); the routing and
/call handling it inherits from calls.Calls.
"""

import asyncio
import socket

from . import config as C
from . import framing
from . import state as S
from .calls import Calls
from .wire import (SUFFIX_CLOSE, SUFFIX_KEEP, SUFFIX_KEEP10, err_body, exc_info, prefix)


class Conn(Calls, asyncio.Protocol):
    __slots__ = (
        "transport", "buf", "closing", "busy", "wpaused", "rpaused",
        "body_parts", "body_have", "body_need", "t_head", "t_data", "t_idle", "over", "linger",
        # the request being handled
        "r_method", "r_path", "r_auth", "r_timeout", "r_boot", "suffix", "keep",
        # the call in flight
        "c_t0", "c_name", "c_task", "c_job", "c_timer", "c_wait", "c_deadline",
    )

    def __init__(self):
        self.transport = None
        self.buf = b""
        self.closing = False
        self.busy = False
        self.wpaused = False
        self.rpaused = False
        self.body_parts = None
        self.body_have = 0
        self.body_need = 0
        self.t_head = None
        self.t_data = S.NOW
        self.t_idle = S.NOW
        self.over = False
        self.linger = None
        self.r_auth = None
        self.r_timeout = None
        self.r_boot = None
        self.suffix = SUFFIX_KEEP
        self.keep = True
        self.c_task = None
        self.c_job = None
        self.c_timer = None
        self.c_wait = None
        self.c_deadline = None

    # -- asyncio callbacks -------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        n = len(S.CONNS)
        if n >= C.MAX_CONNECTIONS:
            if n >= C.MAX_CONNECTIONS + C.CONN_OVERFLOW:
                # far beyond: not even an answer (bounded memory and file descriptors)
                self.closing = True
                transport.abort()
                return
            # beyond the limit: its first request is answered 429 and the connection closed,
            # so the client learns that the replica is busy rather than gone
            self.over = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except (OSError, AttributeError):
                pass
        S.CONNS.add(self)

    def connection_lost(self, exc):
        self.closing = True
        S.CONNS.discard(self)
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        self._abandon_call()
        self.transport = None
        self.buf = b""
        self.body_parts = None

    def eof_received(self):
        # The client closed its side.  Like nginx, treat it as the client going away:
        # a call in flight is cancelled (this is how Ctrl-C on the client cancels work).
        self.closing = True
        self._abandon_call()
        return False  # close the transport (after flushing what was written)

    def pause_writing(self):
        self.wpaused = True

    def resume_writing(self):
        self.wpaused = False
        if not self.busy and not self.closing and self.buf:
            self._process()

    def data_received(self, data):
        if self.closing:
            return
        try:
            self._received(data)
        except Exception as e:
            self._internal_error(e)

    def _received(self, data):
        if self.body_need:
            self.body_parts.append(data)
            self.body_have += len(data)
            if self.body_have < self.body_need:
                return
            whole = b"".join(self.body_parts)
            need = self.body_need
            self.body_parts = None
            self.body_need = 0
            if len(whole) == need:
                body = whole
            else:
                body = whole[:need]
                self.buf = whole[need:]
            self._dispatch(body)
            if not self.busy and self.buf:
                self._process()
            return
        if self.buf:
            self.buf += data
        else:
            self.buf = data
        if self.busy or self.wpaused:
            if len(self.buf) > C.PAUSE_READ_AT and not self.rpaused:
                self.rpaused = True
                self.transport.pause_reading()
            return
        self._process()

    # -- request parsing ---------------------------------------------------

    def _process(self):
        """Handle the complete requests in self.buf, in order, until a call is pending."""
        try:
            self._process_loop()
        except Exception as e:  # a bug in the shim: answer 500 and close, keep serving
            self._internal_error(e)

    def _internal_error(self, e):
        C.log("internal error: %s" % exc_info(e)[2].rstrip())
        self._fail(500, "internal error in the rfenv shim: %s: %s" % (type(e).__name__, e))

    def _process_loop(self):
        while not self.busy and not self.closing and not self.wpaused:
            buf = self.buf
            if not buf:
                break
            if buf[0] in (13, 10):  # CRLF after a previous body
                buf = self.buf = buf.lstrip(b"\r\n")
                if not buf:
                    break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._partial_head(buf)
                break
            if end > C.MAX_HEAD_BYTES:
                self._fail(431, "request headers exceed %d bytes" % C.MAX_HEAD_BYTES)
                break
            self.t_head = None
            try:
                h = framing.parse(buf[:end])
            except framing.HTTPError as e:
                self._fail(e.code, e.message)
                break
            if self.over:  # beyond RFENV_MAX_CONNECTIONS: refused without running
                self._fail(429, "the shim has %d connections open (RFENV_MAX_CONNECTIONS); "
                                "the method did not run" % C.MAX_CONNECTIONS)
                break
            keep = h.keep
            clen = h.clen
            expect = h.expect
            self.keep = keep
            self.suffix = SUFFIX_KEEP if keep and h.version == b"HTTP/1.1" else (
                SUFFIX_KEEP10 if keep else SUFFIX_CLOSE)
            self.r_path = h.path
            self.r_method = h.method
            self.r_auth = h.auth
            self.r_timeout = h.timeout
            self.r_boot = h.boot
            start = end + 4
            if clen:
                if clen > C.MAX_BODY:
                    self._fail(413, "request body of %d bytes exceeds the limit of %d bytes"
                               % (clen, C.MAX_BODY))
                    break
                stop = start + clen
                if len(buf) >= stop:
                    body = buf[start:stop]
                    self.buf = buf[stop:]
                else:
                    # wait for the rest of the body, collecting chunks in a list
                    self.body_parts = [buf[start:]]
                    self.body_have = len(buf) - start
                    self.body_need = clen
                    self.buf = b""
                    self.t_data = S.NOW
                    if expect:
                        self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    break
            else:
                body = b""
                self.buf = buf[start:]
            self._dispatch(body)
        if self.rpaused and not self.busy and not self.closing:
            self.rpaused = False
            self.transport.resume_reading()

    def _partial_head(self, buf):
        if len(buf) > C.MAX_HEAD_BYTES:
            self._fail(431, "request headers exceed %d bytes" % C.MAX_HEAD_BYTES)
            return
        # reject garbage early instead of waiting for a blank line that never comes
        if framing.bare_lf(buf):
            self._fail(400, "bare LF in the request head: lines end with CRLF")
            return
        sp = buf.find(b" ", 0, 24)
        tok = buf[:sp] if sp >= 0 else buf[:24]
        if (tok and not (tok.isalpha() and tok.isupper())) or (sp < 0 and len(buf) >= 24):
            self._fail(400, "malformed request line")
            return
        nl = buf.find(b"\n")
        if nl >= 0:
            parts = buf[:nl].rstrip(b"\r").split(b" ")
            if len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
                self._fail(400, "malformed request line")
                return
        elif len(buf) > 8192:
            self._fail(400, "request line too long")
            return
        if self.t_head is None:
            self.t_head = S.NOW

    def _fail(self, code, message):
        """Answer a protocol error and close (draining what the client still sends)."""
        body = err_body({400: "BadRequest", 408: "RequestTimeout", 413: "PayloadTooLarge",
                          429: "Busy", 431: "HeadersTooLarge",
                          501: "NotImplemented"}.get(code, "InternalError"), message)
        self.closing = True
        self.buf = b""
        self.body_parts = None
        self.body_need = 0
        t = self.transport
        if t is None:
            return
        t.write(b"".join((prefix(code), str(len(body)).encode(), SUFFIX_CLOSE, body)))
        # lingering close: half-close now, drop incoming bytes, close at EOF or after C.LINGER,
        # so the client reads the answer instead of a reset.
        try:
            if t.can_write_eof():
                t.write_eof()
                if self.rpaused:
                    self.rpaused = False
                    t.resume_reading()
                self.linger = S.LOOP.call_later(C.LINGER, t.close)
                return
        except Exception:
            pass
        t.close()

    def _timeout_check(self, now):
        if self.closing or self.busy:
            return
        if self.body_need:
            # one deadline for the whole body from its first byte, never reset by a chunk (a
            # body sent a byte at a time would otherwise hold the connection for ever), with
            # time for a large body at a modest rate
            limit = C.REQUEST_TIMEOUT + self.body_need / C.MIN_BODY_RATE
            if now - self.t_data > limit:
                self._fail(408, "request body not complete after %gs" % limit)
        elif self.buf:
            if self.t_head is not None and now - self.t_head > C.REQUEST_TIMEOUT:
                self._fail(408, "request headers not complete after %gs" % C.REQUEST_TIMEOUT)
        elif now - self.t_idle > C.IDLE_TIMEOUT:
            # idle keep-alive connection: closed (longer than Go's 90 s IdleConnTimeout in
            # pkg/pool, so that the client, not the shim, normally closes first)
            self.closing = True
            self.transport.close()

    # -- responses ---------------------------------------------------------

    def _send(self, prefix, body):
        t = self.transport
        if t is None:
            return
        t.write(b"".join((prefix, str(len(body)).encode(), self.suffix, body)))
        self.t_idle = S.NOW
        if not self.keep:
            self.closing = True
            t.close()
