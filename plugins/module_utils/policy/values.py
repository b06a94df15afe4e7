# PRIVATE to the collection: not a public API.
"""Small value helpers shared by rules, messages and renderers."""

from __future__ import annotations

from typing import Any

from ..documents.values import quote  # noqa: F401 pylint: disable=unused-import

_BINARY_UNITS = ('bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB')


def jmespath_truthy(value: Any) -> bool:
    """JMESPath's notion of truth: 0 is true, empty strings/lists/objects are false."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict, tuple)):
        return len(value) > 0
    return True


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def human_bytes(count: float) -> str:
    """1024-based size for messages: 32212254720 -> '30 GiB', 204800 -> '200 KiB'."""
    amount = float(count)
    unit = _BINARY_UNITS[0]
    for unit in _BINARY_UNITS:
        if abs(amount) < 1024 or unit == _BINARY_UNITS[-1]:
            break
        amount /= 1024
    if unit == 'bytes':
        return f'{count} bytes'
    text = f'{amount:.2f}'.rstrip('0').rstrip('.')
    return f'{text} {unit}'


def describe(value: Any) -> str:
    """Render a found/expected value inside a human message."""
    if value is None:
        return 'nothing'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple, set, frozenset)):
        return ', '.join(describe(item) for item in value) if value else 'nothing'
    return str(value)
