"""What goes on the wire besides results: status lines, JSON error bodies, exception reports.

Responses are built from pre-encoded prefixes (status line and headers up to the
Content-Length value) so that sending one is a single join and write.
"""

import json
import os
import traceback

REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    410: "Gone", 411: "Length Required", 413: "Content Too Large", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout",
}
_PREFIXES = {}


def prefix(code, extra=b""):
    """Status line and headers up to (not including) the Content-Length value."""
    key = (code, extra)
    p = _PREFIXES.get(key)
    if p is None:
        p = (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: "
             % (code, REASONS[code].encode(), extra))
        _PREFIXES[key] = p
    return p


P200 = prefix(200)
P400 = prefix(400)
P401 = prefix(401, b'WWW-Authenticate: Bearer realm="rfenv"\r\n')
P404 = prefix(404)
P405_GET = prefix(405, b"Allow: GET\r\n")
P405_POST = prefix(405, b"Allow: POST\r\n")
P410 = prefix(410)
P429 = prefix(429)
P500 = prefix(500)
P503 = prefix(503)
P504 = prefix(504)

SUFFIX_KEEP = b"\r\n\r\n"
SUFFIX_CLOSE = b"\r\nConnection: close\r\n\r\n"
SUFFIX_KEEP10 = b"\r\nConnection: keep-alive\r\n\r\n"

decode = json.JSONDecoder().decode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def jbytes(obj):
    return _dumps_ascii(obj).encode("ascii")


def err_body(etype, message, tb=""):
    return jbytes({"error": {"type": etype, "message": message, "traceback": tb}})


# Frames of these files are the shim's own: left out of the tracebacks users see.
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_LAUNCHER = os.path.join(os.path.dirname(_PKG_DIR), "shim.py")


def is_shim_frame(filename):
    return os.path.dirname(filename) == _PKG_DIR or filename == _LAUNCHER


def exc_info(e):
    """(type, message, traceback) of an exception, without the shim's own frames."""
    tb = e.__traceback__
    while tb is not None and is_shim_frame(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(e), e, tb))
    except Exception:  # a broken __str__ must not break error reporting
        text = "<traceback unavailable>"
    try:
        msg = str(e)
    except Exception:
        msg = "<unprintable %s>" % type(e).__name__
    return type(e).__name__, msg, text


def exc_body(e):
    t, m, tb = exc_info(e)
    return err_body(t, m, tb)


BODY_401 = err_body("Unauthorized", "missing or wrong bearer token")
BODY_401_NOTOKEN = err_body(
    "Unauthorized", "RFENV_TOKEN is not set in the container; every call is refused")
BODY_404_PATH = err_body("NotFound", "unknown path; the shim serves /health, /methods, /call, /stats, /reload")
BODY_405_GET = err_body("MethodNotAllowed", "use GET")
BODY_405_POST = err_body("MethodNotAllowed", "use POST")
BODY_429_FULL = err_body("Busy", "the shim cannot start the call now: every slot is taken and its "
                         "queue (RFENV_MAX_QUEUE) is full; the method did not run")
BODY_429_DRAINING = err_body("Busy", "the shim is draining before a restart; the method did not run")
BODY_410_BOOT = err_body("BootMismatch", "this replica's server restarted since the session started "
                         "(X-Rfenv-Boot names another process); the method did not run")
BODY_504 = err_body("DeadlineExceeded", "the call's deadline (X-Rfenv-Timeout-Ms) passed")
BODY_NOT_READY = err_body("NotReady", "the environment is still starting")
