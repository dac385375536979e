"""The seed's module-level API: build_image_from_env, load_env and the registry of environments."""
from __future__ import annotations

import atexit
import os
import re
import secrets
import threading
import warnings
from typing import Any, Dict, List, Optional, Union

from . import _server
from ._env import Environment, _path
from ._errors import NotFoundError, RfenvError, UsageError
from ._transport import dumps

_registry: Dict[str, Environment] = {}
_registry_lock = threading.Lock()


def build_image_from_env(env_path: str, image_tag: str, nocache: bool = False, quiet: bool = False,
                         buildargs: Optional[Dict[str, str]] = None, *, hosts: Optional[List[str]] = None,
                         env_type: Optional[str] = None, base_image: Optional[str] = None) -> str:
    """Build the environment directory ``env_path`` (holding ``env.py``) into ``image_tag``.

    Function environments get rfenv's server injected (a two-stage build); http ones use their own
    Dockerfile. Returns the image tag. Progress goes to stderr unless ``quiet``.
    """
    req: Dict[str, Any] = {"path": os.path.abspath(env_path), "tag": image_tag, "no_cache": nocache, "quiet": quiet}
    if buildargs:
        req["build_args"] = buildargs
    if hosts:
        req["hosts"] = list(hosts)
    if env_type:
        req["type"] = env_type
    if base_image:
        req["base_image"] = base_image
    ans = _server.get().sync.request("POST", "/v1/builds", dumps(req))
    builds = ans.get("builds") or []
    return builds[0]["image"] if builds else image_tag


def _name_from_image(image: str) -> str:
    ref = image.split("@", 1)[0]
    ref = ref.rsplit("/", 1)[-1]
    ref = ref.split(":", 1)[0]
    ref = re.sub(r"[^A-Za-z0-9_.-]", "-", ref).lstrip("_.-") or "env"
    return ref


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)


def _bytes(v: Union[int, str, None], field: str) -> int:
    """512m, 2g, "1024" or an int of bytes (docker's mem_limit forms)."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    m = _SIZE.match(str(v))
    if not m:
        raise UsageError("%s=%r: expected a size such as 512m or 2g" % (field, v), field=field)
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def _volumes(v: Any) -> List[str]:
    """Volumes as SRC:DST[:ro] strings, or docker-py's {src: {"bind": dst, "mode": "ro"}}."""
    if not v:
        return []
    if isinstance(v, dict):
        out = []
        for src, spec in v.items():
            if isinstance(spec, dict):
                s = "%s:%s" % (src, spec.get("bind", ""))
                if spec.get("mode") == "ro":
                    s += ":ro"
                out.append(s)
            else:
                out.append("%s:%s" % (src, spec))
        return out
    return list(v)


# load_env keyword arguments beyond the seed's, mapped to the API's fields.
_EXTRA = {
    "secrets": "secrets", "cpus": "cpus", "gpus": "gpus", "network": "network", "labels": "labels",
    "no_transfer": "no_transfer", "pull_policy": "pull_policy", "max_inflight": "max_inflight",
    "max_sessions": "max_sessions", "transport": "transport", "token": "token",
}
_EXTRA_SECONDS = {"ready_timeout": "ready_timeout_ms", "session_ttl": "session_ttl_ms", "overdue_restart": "overdue_restart_ms"}


def _up_request(image: Optional[str] = None, mode: str = "docker", replicas: int = 1, hosts: Optional[List[str]] = None,
             load_balance: str = "random", container_name: Optional[str] = None,
             env_vars: Optional[Dict[str, str]] = None, env_type: Optional[str] = None, force_recreate: bool = False,
             mem_limit: Union[int, str, None] = None, pull: bool = False, cleanup: bool = True,
             base_url: Union[str, List[str], None] = None, **kwargs: Any) -> Dict[str, Any]:
    """The POST /v1/environments body of a load_env call."""
    name = container_name or ""
    req: Dict[str, Any] = {"balancer": load_balance, "cleanup": bool(cleanup)}
    if mode == "url":
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
        if not urls:
            raise UsageError("mode='url' needs base_url", field="base_url")
        req["urls"] = urls
        name = name or "url-" + secrets.token_hex(3)
        if env_type:
            req["type"] = env_type
    elif mode == "docker":
        if not image:
            raise UsageError("load_env needs an image (or mode='url' with base_url)", field="image")
        req.update({"image": image, "replicas": replicas, "force_recreate": force_recreate, "pull": pull})
        name = name or "%s-%s" % (_name_from_image(image), secrets.token_hex(3))
        if hosts:
            req["hosts"] = list(hosts)
        if env_vars:
            req["env"] = {str(k): str(v) for k, v in env_vars.items()}
        if env_type:
            req["type"] = env_type
        if mem_limit is not None:
            req["memory"] = _bytes(mem_limit, "mem_limit")
        vols = _volumes(kwargs.pop("volumes", None))
        if vols:
            req["volumes"] = vols
    else:
        raise UsageError("mode=%r: expected 'docker' or 'url'" % (mode,), field="mode")
    req["name"] = name
    for k in list(kwargs):
        if k in _EXTRA:
            req[_EXTRA[k]] = kwargs.pop(k)
        elif k in _EXTRA_SECONDS:
            req[_EXTRA_SECONDS[k]] = int(float(kwargs.pop(k)) * 1000)
    if kwargs:
        warnings.warn("rfenv.load_env ignores options it does not know: %s" % ", ".join(sorted(kwargs)), stacklevel=3)
    return req


def load_env(image: Optional[str] = None, mode: str = "docker", replicas: int = 1, hosts: Optional[List[str]] = None,
             load_balance: str = "random", container_name: Optional[str] = None,
             env_vars: Optional[Dict[str, str]] = None, env_type: Optional[str] = None, force_recreate: bool = False,
             mem_limit: Union[int, str, None] = None, pull: bool = False, cleanup: bool = True,
             base_url: Union[str, List[str], None] = None, **kwargs: Any) -> Environment:
    """Start (or reuse) replicas of ``image`` and return the environment, ready to call.

    Args:
        image: the image tag, e.g. "affine:latest" (mode "docker").
        mode: "docker" starts containers; "url" attaches servers already running at ``base_url``.
        replicas: how many replicas run.
        hosts: Docker hosts ("localhost", "ssh://user@host", "unix:///path") or one "k8s://ctx/ns";
            replicas spread over them in order.
        load_balance: "random", "round_robin" or "least_busy".
        container_name: the environment's name (containers are NAME-0, NAME-1...). With the same name
            a later load_env reuses running replicas that match; default: from the image plus a
            random suffix.
        env_vars: environment variables of the containers (secrets: never recorded or logged).
        env_type: "function" or "http" (default: the image's).
        force_recreate: replace running replicas even when they match.
        mem_limit: memory limit per replica, e.g. "512m" or bytes.
        pull: pull the image on each host first.
        cleanup: take the environment down when this process exits (also when it is killed).
        base_url: with mode "url", the server URL(s) to attach.
        **kwargs: rfenv's further options: secrets, cpus, gpus, network, volumes, labels, no_transfer,
            pull_policy, max_inflight, max_sessions, transport, ready_timeout / session_ttl /
            overdue_restart (seconds), token (mode "url"). Others are ignored with a warning.
    """
    req = _up_request(image=image, mode=mode, replicas=replicas, hosts=hosts, load_balance=load_balance, container_name=container_name, env_vars=env_vars, env_type=env_type, force_recreate=force_recreate, mem_limit=mem_limit, pull=pull, cleanup=cleanup, base_url=base_url, **kwargs)
    srv = _server.get()
    return _register(srv, srv.sync.request("POST", "/v1/environments", dumps(req)), cleanup)


async def load_env_async(image: Optional[str] = None, mode: str = "docker", replicas: int = 1, hosts: Optional[List[str]] = None,
             load_balance: str = "random", container_name: Optional[str] = None,
             env_vars: Optional[Dict[str, str]] = None, env_type: Optional[str] = None, force_recreate: bool = False,
             mem_limit: Union[int, str, None] = None, pull: bool = False, cleanup: bool = True,
             base_url: Union[str, List[str], None] = None, **kwargs: Any) -> Environment:
    """:func:`load_env` without blocking the event loop (start several environments at once with
    ``asyncio.gather``)."""
    req = _up_request(image=image, mode=mode, replicas=replicas, hosts=hosts, load_balance=load_balance, container_name=container_name, env_vars=env_vars, env_type=env_type, force_recreate=force_recreate, mem_limit=mem_limit, pull=pull, cleanup=cleanup, base_url=base_url, **kwargs)
    srv = _server.get()
    return _register(srv, await srv.aclient().request("POST", "/v1/environments", dumps(req)), cleanup)


def _register(srv: "_server.Server", view: Dict[str, Any], cleanup: bool) -> Environment:
    env = Environment(view["name"], view, bool(cleanup), srv)
    with _registry_lock:
        _registry[env.name] = env
    return env


def list_active_environments() -> List[str]:
    """The names of the environments this process loaded and has not cleaned up."""
    with _registry_lock:
        return list(_registry)


def get_environment(env_id: str) -> Optional[Environment]:
    """The environment named ``env_id``: one this process loaded, else one rfenv knows (started by
    the CLI or another program; it is not taken down at exit). None if there is none."""
    with _registry_lock:
        env = _registry.get(env_id)
    if env is not None:
        return env
    srv = _server.get()
    try:
        view = srv.sync.request("GET", _path(env_id))
    except NotFoundError:
        return None
    return Environment(view["name"], view, False, srv)


def list_environments() -> List[Dict[str, Any]]:
    """Every environment in rfenv's state file (what ``rfenv ls`` shows)."""
    return _server.get().sync.request("GET", "/v1/environments")["environments"]


def cleanup_all_environments() -> None:
    """Take down every environment this process loaded (also run at exit, for those loaded with
    ``cleanup=True``)."""
    _cleanup(only_cleanup=False)


def _cleanup(only_cleanup: bool) -> None:
    with _registry_lock:
        envs = [e for e in _registry.values() if e._cleanup or not only_cleanup]
    errors = []
    for e in envs:
        try:
            e.cleanup_sync()
        except RfenvError as err:
            errors.append("%s: %s" % (e.name, err))
    if errors and not only_cleanup:
        raise RfenvError("cleanup failed for " + "; ".join(errors))


def _forget(env: Environment) -> None:
    with _registry_lock:
        if _registry.get(env.name) is env:
            del _registry[env.name]


@atexit.register
def _at_exit() -> None:
    srv = _server.current()
    if srv is None:
        return
    if srv.proc is None:
        # A server this process does not own: take down what it loaded with cleanup=True.
        try:
            _cleanup(only_cleanup=True)
        except Exception:
            pass
    # A child server takes its cleanup environments down itself, all at once, when its stdin
    # closes; shutdown closes it and waits.
    _server.shutdown()
