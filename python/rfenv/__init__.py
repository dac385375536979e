"""rfenv for Python: build, run and call containerised environments through ``rfenv serve``.

The API is the seed library's (``rayfine_env`` re-exports this module)::

    import rfenv
    env = rfenv.load_env(image="affine:latest", replicas=3, env_vars={"CHUTES_API_KEY": "..."})
    results = await asyncio.gather(*[env.evaluate(task_type="sat", _timeout=90) for _ in range(64)])
    print(env.get_stats()["healthy_instances"])
    await env.cleanup()

The package starts ``rfenv serve`` as its own child on first use (the binary from the wheel,
``RFENV_BIN`` or PATH), or connects to ``RFENV_SERVE``. See :mod:`rfenv.sync` for blocking calls.
"""
from ._api import (build_image_from_env, cleanup_all_environments, get_environment, list_active_environments,
                   list_environments, load_env, load_env_async)
from ._env import Environment, Episode, OpenEnv, Session
from ._errors import (ConflictError, DeadlineError, InfraError, Interrupted, MethodError, NotFoundError, RfenvError,
                      SessionLostError, UsageError)

__version__ = "0.1.0"

# The seed's name for the same class.
EnvironmentWrapper = Environment

__all__ = [
    "build_image_from_env", "load_env", "load_env_async", "list_active_environments", "get_environment", "cleanup_all_environments",
    "list_environments", "Environment", "EnvironmentWrapper", "Session", "OpenEnv", "Episode",
    "RfenvError", "UsageError", "NotFoundError", "MethodError", "InfraError", "ConflictError", "SessionLostError",
    "DeadlineError", "Interrupted",
]
