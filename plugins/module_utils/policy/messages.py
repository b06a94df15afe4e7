# PRIVATE to the collection: not a public API.
"""Message templates: `{found}`-style placeholders, checked when the policy loads."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

from .values import describe

# Placeholders every rule offers; rule types add their own (e.g. max_size's {measure}).
COMMON_PLACEHOLDERS = (
    'action',
    'description',
    'expected',
    'found',
    'image',
    'mode',
    'path',
    'project',
    'rule',
    'severity',
    'user',
)

_FORMATTER = string.Formatter()


def template_problems(template: str, allowed: Iterable[str]) -> list[str]:
    """Problems with a template: malformed braces, unknown or positional placeholders."""
    allowed_names = set(allowed)
    try:
        names = [part[1] for part in _FORMATTER.parse(template) if part[1] is not None]
    except ValueError as exc:
        return [f'invalid message template: {exc} (write literal braces as {{{{ and }}}})']
    problems = []
    for name in names:
        base = name.split('.', 1)[0].split('[', 1)[0]
        if base not in allowed_names or base != name:
            problems.append(
                'unknown placeholder {{{}}}; available: {}'.format(
                    name, ', '.join(f'{{{item}}}' for item in sorted(allowed_names))
                )
            )
    return problems


class _Described(dict):  # type: ignore[type-arg]
    """Describes a value only when the template uses it: most fields of most templates are not."""

    def __getitem__(self, key: str) -> str:
        return describe(super().__getitem__(key))


def render(template: str, fields: Mapping[str, Any]) -> str:
    """Fill a template checked by template_problems(); values are described for humans."""
    return template.format_map(_Described(fields))
