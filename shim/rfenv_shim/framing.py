"""Parsing an HTTP/1.1 request head (RFC 9112), strictly: every header line is split at its
colon and its name checked, so a near-miss such as ``Content-Length : 5`` is a 400 rather than a
header the shim does not see (and a body it frames differently from a proxy in front of it).

Lines end with CRLF.  A bare LF or CR anywhere in the head is a 400, found as soon as it arrives
(see bare_lf) rather than after a blank line that, for such a client, never comes.
"""

from . import config as C


class HTTPError(Exception):
    """A request the shim refuses to frame: answered with code and message, then closed."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


class Head(object):
    __slots__ = ("method", "path", "version", "keep", "clen", "auth", "timeout", "boot", "expect")


# RFC 9110 token characters: a header name is made of these only
_TCHAR = (b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def bare_lf(buf):
    """Whether buf has an LF not preceded by CR (in a head: refused at once)."""
    return buf.count(b"\n") != buf.count(b"\r\n")


def parse(head):
    """Parse a complete head (request line and header lines, without the final blank line)."""
    if b"\r" in head.replace(b"\r\n", b"") or bare_lf(head):
        raise HTTPError(400, "bare CR or LF in the request head: lines end with CRLF")
    lines = head.split(b"\r\n")
    if len(lines) - 1 > C.MAX_HEADERS:
        raise HTTPError(431, "more than %d headers" % C.MAX_HEADERS)
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise HTTPError(400, "malformed request line")
    method, target, version = parts
    if version == b"HTTP/1.1":
        keep = True
    elif version == b"HTTP/1.0":
        keep = False
    else:
        raise HTTPError(400, "unsupported HTTP version")
    if not (method.isalpha() and method.isupper()) or target[:1] != b"/":
        raise HTTPError(400, "malformed request line")
    h = Head()
    h.clen = 0
    h.auth = h.timeout = h.boot = None
    h.expect = False
    clen = None
    te = False
    for line in lines[1:]:
        i = line.find(b":")
        if i <= 0:
            raise HTTPError(400, "malformed header line (no name and colon)")
        name = line[:i]
        if name.translate(None, _TCHAR):  # a space before the colon, obs-fold, ...
            raise HTTPError(400, "malformed header name %r" % name.decode("latin-1"))
        value = line[i + 1:].strip(b" \t")
        n = name.lower()
        if n == b"content-length":
            if clen is not None or not value.isdigit():
                raise HTTPError(400, "invalid or repeated Content-Length")
            clen = value
        elif n == b"authorization":
            h.auth = value
        elif n == b"x-rfenv-timeout-ms":
            h.timeout = value
        elif n == b"x-rfenv-boot":
            h.boot = value
        elif n == b"connection":
            toks = [t.strip() for t in value.lower().split(b",")]
            if b"close" in toks:
                keep = False
            elif b"keep-alive" in toks:
                keep = True
        elif n == b"transfer-encoding":
            te = True
        elif n == b"expect":
            h.expect = value.lower() == b"100-continue"
    if te:
        raise HTTPError(501, "Transfer-Encoding is not supported; send Content-Length")
    if clen is not None:
        h.clen = int(clen) if len(clen) < 16 else C.MAX_BODY + 1
    if not h.clen:
        h.expect = False
    q = target.find(b"?")
    h.path = target if q < 0 else target[:q]
    h.method = method
    h.version = version
    h.keep = keep
    return h
