"""Loading the environment: secrets into os.environ, importing env.py, building the Actor."""

import asyncio
import importlib.util
import inspect
import json
import os
import sys

from . import config as C
from . import state as S
from .methods import Method, collect, describe
from .wire import exc_info, is_shim_frame, jbytes


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
    try:
        os.unlink(path)
    except OSError as e:
        C.log("warning: cannot delete the secrets file %s: %s" % (path, e.strerror))
    return err


def init_env(loop, secrets_err):
    """Runs in a thread: import env.py, build the Actor, publish methods to the loop."""
    try:
        asyncio.set_event_loop(loop)  # so asyncio.get_event_loop() in a constructor works
        if secrets_err is not None:
            raise secrets_err
        app_dir = os.path.abspath(os.environ.get("RFENV_APP_DIR") or "/app")
        path = os.path.join(app_dir, "env.py")
        if not os.path.isfile(path):
            raise FileNotFoundError("no env.py in %s" % app_dir)
        os.chdir(app_dir)
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
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
        body = jbytes({"kind": kind, "methods": desc})
    except BaseException as e:
        t, m, tb = exc_info(e)
        C.log("loading env.py failed:\n%s" % tb.rstrip())
        loop.call_soon_threadsafe(set_failed, t, m, tb, *_where(e))
        return
    loop.call_soon_threadsafe(set_ready, methods, body)


def set_ready(methods, body):
    S.HAS_ASYNC = any(m.is_async for m in methods.values())
    S.HAS_SYNC = any(not m.is_async for m in methods.values())
    S.METHODS = methods
    S.METHODS_BODY = body
    S.AVAILABLE = ", ".join(sorted(methods)) or "(none)"
    S.STATE = S.READY
    C.log("ready: %d method(s): %s" % (len(methods), S.AVAILABLE))


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


def set_failed(t, m, tb, file=None, line=None):
    S.FAILED_ERROR = {"type": t, "message": m, "traceback": tb, "file": file, "line": line}
    S.NOT_READY_BODY = jbytes({"error": {"type": "EnvFailed",
                                        "message": "env.py failed to load: %s: %s" % (t, m),
                                        "traceback": tb}})
    S.STATE = S.FAILED
