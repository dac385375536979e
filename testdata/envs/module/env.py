"""Test environment: module-level functions, no Actor."""
from json import dumps  # imported: not a method


def double(x: int) -> int:
    """Double a number."""
    return 2 * x


async def shout(text: str) -> str:
    """Upper-case text."""
    return text.upper()


def _helper():
    return None
