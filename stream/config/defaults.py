"""Defaults shared by the settings object and the commands that take the same options.

Kept free of imports so the command line can use them without loading pydantic.
"""

REDIS_URL = "redis://127.0.0.1:6379/0"
"""Redis every seismo process talks to unless told otherwise."""

REDIS_PREFIX = "seismo"
"""Prefix of every Redis key seismo writes."""
