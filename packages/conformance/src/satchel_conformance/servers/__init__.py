"""Find a server for tests: env URL, then a binary on PATH, then testcontainers, else skip.

Each finder is a context manager that yields a URL, or raises :class:`Unavailable`
whose message says which of the three to provide. The pytest plugin turns that into
a skip with the same message.
"""

from __future__ import annotations

from ._common import Unavailable, free_port, wait_for_port

__all__ = ["Unavailable", "free_port", "wait_for_port"]
