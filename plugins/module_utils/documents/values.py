# PRIVATE to the collection: not a public API.
"""Values inside problem messages."""

from __future__ import annotations

from typing import Any


def quote(value: Any) -> str:
    """Quote a value inside an error message the way a YAML author typed it."""
    if isinstance(value, str):
        return f"'{value}'"
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return repr(value)
