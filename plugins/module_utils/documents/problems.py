# PRIVATE to the collection: not a public API.
"""The one error family of the collection, and problems found in documents.

Every problem reaches the user the same way: the readable message, and under the result
key ``problems`` the same structure (file, line, item, field, message) whatever the
document was - a policy file, a catalog file, a request document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ImagegovError(Exception):
    """A request that cannot be carried out; the message says what happened and what to change."""

    @property
    def problems(self) -> list[Problem]:
        return []


class Problem:
    """One thing wrong in a document, formatted as `source[:line]: item: field 'x': message`."""

    __slots__ = ('source', 'line', 'item', 'field', 'message')

    def __init__(
        self, source: str, message: str, line: int | None = None, item: str | None = None, field: str | None = None
    ) -> None:
        self.source = source
        self.line = line
        self.item = item
        self.field = field
        self.message = message

    def __str__(self) -> str:
        parts = [self.source if self.line is None else f'{self.source}:{self.line}']
        if self.item:
            parts.append(self.item)
        if self.field:
            parts.append(f"field '{self.field}'")
        parts.append(self.message)
        return ': '.join(parts)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({str(self)!r})'

    def as_dict(self) -> dict[str, Any]:
        return {
            'file': self.source,
            'line': self.line,
            'item': self.item,
            'field': self.field,
            'message': self.message,
            'text': str(self),
        }


class ProblemsError(ImagegovError):
    """Something could not be loaded; `problems` lists everything found, not just the first."""

    subject = 'input'

    def __init__(self, problems: Iterable[Problem]) -> None:
        self._problems: list[Problem] = list(problems)
        super().__init__(self._summary())

    @property
    def problems(self) -> list[Problem]:
        return self._problems

    @property
    def messages(self) -> list[str]:
        return [str(problem) for problem in self._problems]

    def _summary(self) -> str:
        count = len(self._problems)
        heading = f'{count} problem{"" if count == 1 else "s"} in {self.subject}'
        return '\n  - '.join([f'{heading}:'] + self.messages)
