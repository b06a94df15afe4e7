# PRIVATE to the collection: not a public API.
"""Values inside problem messages."""

from __future__ import annotations

from typing import Any


def quote(value: Any, limit: int | None = None) -> str:
    """Quote a value inside an error message the way a YAML author typed it; with ``limit``,
    a longer quote is cut to that many characters, ending in '...'."""
    if isinstance(value, str):
        text = f"'{value}'"
    elif value is None:
        text = 'null'
    elif isinstance(value, bool):
        text = 'true' if value else 'false'
    else:
        text = repr(value)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + '...'


# How much of a wrong value a message quotes.
QUOTE_LIMIT = 80
