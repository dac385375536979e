"""The seed library's module name: everything here is :mod:`rfenv`'s, so its examples run unchanged."""
from rfenv import *  # noqa: F401,F403
from rfenv import __all__, __version__  # noqa: F401
