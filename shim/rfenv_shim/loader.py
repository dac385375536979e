"""Loading the environment: secrets into os.environ, importing env.py, building the Actor."""

import asyncio
import importlib.util
import inspect
import json
import os
import sys
import threading

from . import config as C
from . import state as S
from .methods import Method, collect, describe
from .wire import P200, P500, P503, exc_info, is_shim_frame, jbytes


def load_secrets():
    path = os.environ.get("RFENV_SECRETS_FILE") or "/run/rfenv/secrets.json"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        return OSError("cannot read the secrets file %s: %s" % (path, e.strerror))
    err = None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for k, v in data.items():
            os.environ[str(k)] = v if isinstance(v, str) else json.dumps(v)
    except ValueError as e:
        # the parser's message has a position only, never secret content
        err = ValueError("the secrets file %s is not a JSON object of strings: %s" % (path, e))
    # The file stays (root-only, in the container's own filesystem, never in its configuration):
    # when Docker restarts the container (restart policy, docker restart, an overdue restart) the
    # new process reads it again.  Deleting it lost the secrets on restart (issue 11 defect 2).
    return err


def app_dir():
    """The code directory: env.py and the modules it imports (RFENV_APP_DIR, default /app)."""
    return os.path.abspath(os.environ.get("RFENV_APP_DIR") or "/app")


def _forget_code_modules(code_dir):
    """Drop env and every module loaded from the code directory, so that the next import reads
    the files again (rfenv dev bind-mounts the user's directory there and edits land on disk)."""
    real = os.path.realpath(code_dir) + os.sep
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if name == "env" or (isinstance(f, str) and os.path.realpath(f).startswith(real)):
            del sys.modules[name]
    importlib.invalidate_caches()


def _load(loop, reload):
    """Import env.py and build the Actor: (methods, /methods body).  Runs in a thread."""
    asyncio.set_event_loop(loop)  # so asyncio.get_event_loop() in a constructor works
    code_dir = app_dir()
    path = os.path.join(code_dir, "env.py")
    if reload:
        _forget_code_modules(code_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError("no env.py in %s" % code_dir)
    os.chdir(code_dir)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    spec = importlib.util.spec_from_file_location("env", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["env"] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop("env", None)
        raise
    actor = None
    cls = vars(mod).get("Actor")
    if cls is not None:
        if not inspect.isclass(cls):
            raise TypeError("env.py's Actor must be a class, not %s" % type(cls).__name__)
        actor = cls()
        ainit = getattr(actor, "__ainit__", None)
        if ainit is not None:
            r = ainit()
            if inspect.isawaitable(r):
                async def _await(a):
                    return await a
                asyncio.run_coroutine_threadsafe(_await(r), loop).result()
    kind, found = collect(mod, actor)
    methods = {}
    desc = []
    for name, fn, is_async, sig in found:
        methods[name] = Method(name, fn, is_async, sig)
        desc.append(describe(name, fn, is_async, sig, kind))
    return methods, jbytes({"kind": kind, "methods": desc})


def _load_thread(loop, secrets_err, waiters):
    """Thread body of the first load (waiters is None) and of each reload."""
    try:
        if secrets_err is not None:
            raise secrets_err
        ok = _load(loop, waiters is not None)
    except BaseException as e:
        t, m, tb = exc_info(e)
        err = {"type": t, "message": m, "traceback": tb}
        err["file"], err["line"] = _where(e)
        if waiters is None:
            C.log("loading env.py failed:\n%s" % tb.rstrip())
        loop.call_soon_threadsafe(_loaded, waiters, None, err)
        return
    loop.call_soon_threadsafe(_loaded, waiters, ok, None)


def start(loop, secrets_err):
    """Start the first load of env.py in a thread (the loop answers /health meanwhile)."""
    S.LOADING = True
    t = threading.Thread(target=_load_thread, args=(loop, secrets_err, None),
                         name="rfenv-init", daemon=True)
    t.start()
    return t


def request_reload(conn):
    """POST /reload: answered when a load that started after the request has finished."""
    S.RELOAD_WAITERS.append(conn)
    if not S.LOADING:
        _start_reload()


def _start_reload():
    waiters = S.RELOAD_WAITERS
    S.RELOAD_WAITERS = []
    S.LOADING = True
    threading.Thread(target=_load_thread, args=(S.LOOP, None, waiters),
                     name="rfenv-reload", daemon=True).start()


def _loaded(waiters, ok, err):
    S.LOADING = False
    if ok is not None:
        set_ready(*ok, reload=waiters is not None)
        prefix, body = P200, jbytes({"status": "ok", "methods": sorted(ok[0])})
    elif waiters is None:
        set_failed(err)
        prefix = body = None
    else:
        body = set_failed(err, reloaded=True)
        prefix = P500
        C.log("reload failed: %s" % err_message(err))
    for c in waiters or ():
        c._reloaded(prefix, body)
    if S.RELOAD_WAITERS:  # asked for while this load ran: the files may have changed since
        _start_reload()


def set_ready(methods, body, reload=False):
    S.HAS_ASYNC = any(m.is_async for m in methods.values())
    S.HAS_SYNC = any(not m.is_async for m in methods.values())
    S.METHODS = methods
    S.METHODS_BODY = body
    S.AVAILABLE = ", ".join(sorted(methods)) or "(none)"
    S.STATE = S.READY
    S.FAILED_ERROR = None
    C.log("%s: %d method(s): %s" % ("reloaded" if reload else "ready", len(methods), S.AVAILABLE))


def _where(e):
    """(file, line) where a load error happened: a SyntaxError's own, else the innermost frame
    that is not the shim's; (None, None) if there is none (e.g. no env.py)."""
    if isinstance(e, SyntaxError) and e.filename:
        return e.filename, e.lineno
    where = (None, None)
    tb = e.__traceback__
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        if not is_shim_frame(f):
            where = (f, tb.tb_lineno)
        tb = tb.tb_next
    return where


def err_message(err):
    at = "%s:%s: " % (err["file"], err["line"]) if err["file"] else ""
    return "env.py failed to load: %s%s: %s" % (at, err["type"], err["message"])


def set_failed(err, reloaded=False):
    """Enter state FAILED; returns the body /call and /methods answer from now on.

    After the first load /call answers 503 EnvFailed (not ready: the client fails over);
    after a reload 500 EnvLoadError (the code is wrong: the caller, e.g. rfenv dev, shows it)."""
    S.FAILED_ERROR = err
    if reloaded:
        S.NOT_READY_PREFIX = P500
        S.NOT_READY_BODY = jbytes({"error": {"type": "EnvLoadError", "message": err_message(err),
                                             "traceback": err["traceback"], "file": err["file"],
                                             "line": err["line"]}})
    else:
        S.NOT_READY_PREFIX = P503
        msg = "env.py failed to load: %s: %s" % (err["type"], err["message"])
        S.NOT_READY_BODY = jbytes({"error": {"type": "EnvFailed", "message": msg,
                                             "traceback": err["traceback"]}})
    S.STATE = S.FAILED
    return S.NOT_READY_BODY
