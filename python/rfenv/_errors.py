"""Exceptions: one class per error kind of rfenv serve (the CLI's exit codes by name)."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional, Tuple, Type


class RfenvError(Exception):
    """Base class of every error rfenv raises.

    Attributes:
        kind: the error kind ("usage", "not_found", "method_raised", "infra", "conflict",
            "session_lost", "deadline", "interrupted").
        message: what went wrong.
        field: for a bad request, the request field it is about.
    """

    kind = "infra"

    def __init__(self, message: str, *, kind: Optional[str] = None, field: str = "",
                 remote_type: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        if kind:
            self.kind = kind
        self.message = message
        self.field = field
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return self.message


class UsageError(RfenvError, ValueError):
    """The request was malformed: a bad option or argument (exit code 2)."""

    kind = "usage"


class NotFoundError(RfenvError, LookupError):
    """An unknown environment, method, image or host (exit code 3)."""

    kind = "not_found"


class MethodError(RfenvError):
    """The environment's method ran and raised (exit code 1).

    ``remote_type`` is the exception's class name in the container (e.g. "ValueError"),
    ``message`` its message and ``remote_traceback`` its traceback.
    """

    kind = "method_raised"

    def __str__(self) -> str:
        if self.remote_type:
            return "%s: %s" % (self.remote_type, self.message)
        return self.message


class InfraError(RfenvError):
    """Docker, SSH, the network or the replicas failed; nothing is wrong with the request (exit 4)."""

    kind = "infra"


class ConflictError(RfenvError):
    """The request collides with existing state (exit code 5)."""

    kind = "conflict"


class SessionLostError(RfenvError):
    """A session's replica died, restarted or was replaced: open a new session (exit code 6)."""

    kind = "session_lost"


_timeout_bases: Tuple[Type[BaseException], ...] = (TimeoutError,)
if not issubclass(asyncio.TimeoutError, TimeoutError):  # Python < 3.11 has its own class
    _timeout_bases = (TimeoutError, asyncio.TimeoutError)


class DeadlineError(RfenvError, *_timeout_bases):  # type: ignore[misc]
    """The call's deadline (``_timeout``) passed; it is also a ``TimeoutError`` (exit code 124)."""

    kind = "deadline"


class InterruptedError_(RfenvError):
    """The server was interrupted while working on the request (exit code 130)."""

    kind = "interrupted"


Interrupted = InterruptedError_

_by_kind: Dict[str, Type[RfenvError]] = {
    c.kind: c for c in (UsageError, NotFoundError, MethodError, InfraError, ConflictError,
                        SessionLostError, DeadlineError, InterruptedError_)
}


def from_body(status: int, body: Any) -> RfenvError:
    """The exception for an error answer of rfenv serve."""
    info = body.get("error") if isinstance(body, dict) else None
    if not isinstance(info, dict):
        return InfraError("rfenv serve answered HTTP %d without an error object" % status)
    kind = str(info.get("kind") or "infra")
    cls = _by_kind.get(kind, InfraError)
    return cls(str(info.get("message") or ""), kind=kind, field=str(info.get("field") or ""),
               remote_type=str(info.get("type") or ""), remote_traceback=str(info.get("traceback") or ""))
