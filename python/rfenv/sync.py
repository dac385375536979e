"""The synchronous variant, for scripts that do not use asyncio::

    from rfenv import sync as rfenv
    env = rfenv.load_env(image="affine:latest", replicas=2)
    print(env.evaluate(task_type="sat", _timeout=90))
    env.cleanup()

Calls block the calling thread; threads may call at once (one connection each).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from . import _api
from ._env import Environment, _call_body, _path
from ._errors import NotFoundError, SessionLostError

__all__ = ["SyncEnvironment", "SyncSession", "load_env", "build_image_from_env", "list_active_environments",
           "get_environment", "cleanup_all_environments"]

build_image_from_env = _api.build_image_from_env
list_active_environments = _api.list_active_environments
cleanup_all_environments = _api.cleanup_all_environments


class SyncEnvironment:
    """A blocking view of an :class:`rfenv.Environment`: ``env.method(...)`` returns the result."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    @property
    def name(self) -> str:
        return self.env.name

    def call(self, method: str, *args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call ``method`` and return its result."""
        body = _call_body(method, args, kwargs, _timeout, "")
        return self.env._server.sync.request("POST", _path(self.env.name, "calls"), body)["result"]

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def remote(*args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
            return self.call(method, *args, _timeout=_timeout, **kwargs)

        remote.__name__ = method
        return remote

    def list_methods(self) -> List[Dict[str, Any]]:
        return self.env._server.sync.request("GET", _path(self.env.name, "methods"))["methods"]

    def is_ready(self) -> bool:
        return self.env.is_ready()

    def get_stats(self) -> Dict[str, Any]:
        return self.env.get_stats()

    def session(self, key: Optional[str] = None) -> "SyncSession":
        """A session (calls pinned to one replica): ``with env.session() as s: s.reset(); s.step()``."""
        return SyncSession(self, key)

    def cleanup(self) -> None:
        self.env.cleanup_sync()

    def __enter__(self) -> "SyncEnvironment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


class SyncSession:
    """The blocking form of :class:`rfenv.Session`."""

    def __init__(self, env: SyncEnvironment, key: Optional[str] = None) -> None:
        self.env = env
        self.key = key or ""
        self.replica: Optional[int] = None

    def open(self) -> "SyncSession":
        if not self.key:
            ans = self.env.env._server.sync.request("POST", _path(self.env.name, "sessions"), b"{}")
            self.key, self.replica = ans["key"], ans.get("replica")
        return self

    def call(self, method: str, *args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        if not self.key:
            self.open()
        body = _call_body(method, args, kwargs, _timeout, self.key)
        return self.env.env._server.sync.request("POST", _path(self.env.name, "calls"), body)["result"]

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def remote(*args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
            return self.call(method, *args, _timeout=_timeout, **kwargs)

        return remote

    def close(self) -> None:
        if self.key:
            key, self.key = self.key, ""
            try:
                self.env.env._server.sync.request("DELETE", _path(self.env.name, "sessions", key))
            except (NotFoundError, SessionLostError):
                pass

    def __enter__(self) -> "SyncSession":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def load_env(*args: Any, **kwargs: Any) -> SyncEnvironment:
    """:func:`rfenv.load_env`, returning a :class:`SyncEnvironment`."""
    return SyncEnvironment(_api.load_env(*args, **kwargs))


def get_environment(env_id: str) -> Optional[SyncEnvironment]:
    env = _api.get_environment(env_id)
    return SyncEnvironment(env) if env is not None else None
