"""An environment as Python sees it: ``await env.method(...)``, stats, sessions, cleanup."""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

from . import _server
from ._transport import dumps


def _path(name: str, *rest: str) -> str:
    p = "/v1/environments/" + quote(name, safe="")
    for r in rest:
        p += "/" + quote(r, safe="")
    return p


def _timeout_ms(timeout: Optional[float]) -> int:
    if timeout is None:
        return 0
    if timeout <= 0:
        from ._errors import UsageError
        raise UsageError("_timeout=%r: must be a positive number of seconds" % (timeout,), field="timeout_ms")
    return max(1, int(timeout * 1000))


def _call_body(method: str, args: Tuple[Any, ...], kwargs: Dict[str, Any], timeout: Optional[float], session: str) -> bytes:
    req: Dict[str, Any] = {"method": method}
    if args:
        req["args"] = list(args)
    if kwargs:
        req["kwargs"] = kwargs
    t = _timeout_ms(timeout)
    if t:
        req["timeout_ms"] = t
    if session:
        req["session"] = session
    return dumps(req)


class Environment:
    """A running environment: a pool of replicas behind rfenv serve.

    Call any method of the environment's ``env.py`` as a coroutine::

        result = await env.evaluate(task_type="sat", _timeout=90)

    ``_timeout`` (seconds) is the call's deadline, enforced in the container too; when it passes the
    call raises :class:`rfenv.DeadlineError` (a ``TimeoutError``). Positional arguments work as well.
    A method whose name collides with an attribute of this class is reached with :meth:`call`.
    """

    def __init__(self, name: str, view: Dict[str, Any], cleanup: bool, server: "_server.Server") -> None:
        self._name = name
        self._view = view
        self._cleanup = cleanup
        self._server = server
        self._closed = False

    # --- identity --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The environment's name (its id in ``list_active_environments()``, and for the CLI)."""
        return self._name

    @property
    def env_id(self) -> str:
        """The same as :attr:`name`."""
        return self._name

    @property
    def info(self) -> Dict[str, Any]:
        """The environment as rfenv serve described it at load (image, type, instances...)."""
        return self._view

    def __repr__(self) -> str:
        return "<rfenv.Environment %s, %d replica(s)>" % (self._name, self._view.get("replicas", 0))

    # --- calls -----------------------------------------------------------------------------
    async def call(self, method: str, *args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call ``method`` with positional and keyword arguments and return its result."""
        body = _call_body(method, args, kwargs, _timeout, "")
        ans = await self._server.aclient().request("POST", _path(self._name, "calls"), body)
        return ans["result"]

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def remote(*args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
            return await self.call(method, *args, _timeout=_timeout, **kwargs)

        remote.__name__ = method
        remote.__qualname__ = "Environment." + method
        return remote

    async def list_methods(self) -> List[Dict[str, Any]]:
        """The environment's methods: name, signature, doc, async, source, parameters."""
        ans = await self._server.aclient().request("GET", _path(self._name, "methods"))
        return ans["methods"]

    # --- state -----------------------------------------------------------------------------
    def is_ready(self) -> bool:
        """True when at least one replica answers its health check now."""
        try:
            return self.get_stats()["healthy_instances"] > 0
        except Exception:
            return False

    def get_stats(self) -> Dict[str, Any]:
        """Pool statistics: total_instances, healthy_instances, total_requests, and instances (each
        with index, host, address, port, healthy, requests, in_flight, errors, ...)."""
        return self._server.sync.request("GET", _path(self._name, "stats"))

    async def get_stats_async(self) -> Dict[str, Any]:
        """:meth:`get_stats` without blocking the event loop."""
        return await self._server.aclient().request("GET", _path(self._name, "stats"))

    def logs(self, tail: int = 100, replica: Optional[int] = None) -> str:
        """The containers' recent output (``rfenv logs``)."""
        q = "?tail=%d" % tail
        if replica is not None:
            q += "&replica=%d" % replica
        data = self._server.sync.request("GET", _path(self._name, "logs") + q, raw=True)
        return data.decode("utf-8", "replace")

    # --- sessions --------------------------------------------------------------------------
    def session(self, key: Optional[str] = None) -> "Session":
        """A session: calls pinned to one replica, for stateful episodes::

            async with env.session() as s:
                await s.reset(seed=1)
                await s.step(action=0)
        """
        return Session(self, key)

    def openenv(self) -> "OpenEnv":
        """An OpenEnv-style handle: ``ep = await env.openenv().reset(...)`` opens a session, and
        ``ep.step(...)``, ``ep.state()`` and ``ep.stop()`` pass its ``episode_id``."""
        return OpenEnv(self)

    # --- lifecycle -------------------------------------------------------------------------
    def cleanup_sync(self) -> None:
        """Take the environment down (blocking)."""
        from . import _api
        if not self._closed:
            self._server.sync.request("DELETE", _path(self._name))
            self._closed = True
        _api._forget(self)

    async def cleanup(self) -> None:
        """Take the environment down: remove its replicas and forget it."""
        from . import _api
        if not self._closed:
            await self._server.aclient().request("DELETE", _path(self._name))
            self._closed = True
        _api._forget(self)

    async def __aenter__(self) -> "Environment":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.cleanup()

    def __enter__(self) -> "Environment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup_sync()


class Session:
    """Calls pinned to one replica, holding per-episode state there. Open it with ``async with``
    (or :meth:`open`), close it with :meth:`close`. If its replica dies or restarts, calls raise
    :class:`rfenv.SessionLostError`."""

    def __init__(self, env: Environment, key: Optional[str] = None) -> None:
        self.env = env
        self.key = key or ""
        self.replica: Optional[int] = None

    async def open(self) -> "Session":
        """Open the session on a replica chosen by the balancer (a no-op when it has a key)."""
        if not self.key:
            ans = await self.env._server.aclient().request("POST", _path(self.env.name, "sessions"), b"{}")
            self.key = ans["key"]
            self.replica = ans.get("replica")
        return self

    async def call(self, method: str, *args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call ``method`` on the session's replica."""
        if not self.key:
            await self.open()
        body = _call_body(method, args, kwargs, _timeout, self.key)
        ans = await self.env._server.aclient().request("POST", _path(self.env.name, "calls"), body)
        return ans["result"]

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def remote(*args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
            return await self.call(method, *args, _timeout=_timeout, **kwargs)

        remote.__name__ = method
        return remote

    async def close(self) -> None:
        """Close the session on its replica (idempotent)."""
        if self.key:
            key, self.key = self.key, ""
            from ._errors import NotFoundError, SessionLostError
            try:
                await self.env._server.aclient().request("DELETE", _path(self.env.name, "sessions", key))
            except (NotFoundError, SessionLostError):
                pass

    async def __aenter__(self) -> "Session":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class OpenEnv:
    """OpenEnv-style episodes over sessions: ``reset()`` opens a session on one replica and returns
    an :class:`Episode` whose ``step()``, ``state()`` and ``stop()`` carry its ``episode_id``."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    async def reset(self, *args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> "Episode":
        """Call ``reset`` on a new session and return the episode. The episode id is the one
        ``reset`` returned (``{"episode_id": ...}``), else the session's key."""
        s = await Session(self.env).open()
        try:
            result = await s.call("reset", *args, _timeout=_timeout, **kwargs)
        except BaseException:
            await s.close()
            raise
        eid = result.get("episode_id") if isinstance(result, dict) else None
        return Episode(s, str(eid) if eid is not None else s.key, result)


class Episode:
    """One episode: a session plus its ``episode_id``, injected into every call."""

    def __init__(self, session: Session, episode_id: str, observation: Any) -> None:
        self.session = session
        self.episode_id = episode_id
        self.observation = observation  # what reset returned

    async def call(self, method: str, *args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call ``method`` on the episode's replica with ``episode_id`` added."""
        kwargs.setdefault("episode_id", self.episode_id)
        return await self.session.call(method, *args, _timeout=_timeout, **kwargs)

    async def step(self, *args: Any, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call ``step(..., episode_id=...)``."""
        return await self.call("step", *args, _timeout=_timeout, **kwargs)

    async def state(self, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call ``state(episode_id=...)``."""
        return await self.call("state", _timeout=_timeout, **kwargs)

    async def stop(self, _timeout: Optional[float] = None, **kwargs: Any) -> Any:
        """Call ``stop(episode_id=...)`` and close the session."""
        try:
            return await self.call("stop", _timeout=_timeout, **kwargs)
        finally:
            await self.session.close()

    async def __aenter__(self) -> "Episode":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.session.close()

