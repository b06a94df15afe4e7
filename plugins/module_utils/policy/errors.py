# PRIVATE to the collection: not a public API.
"""Policy loading errors: every problem found, each naming file, item and field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Problem:
    """One thing wrong in a source, formatted as `source[:line]: item: field 'x': message`."""

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


class PolicyProblem(Problem):
    """One thing wrong in a policy source."""

    __slots__ = ()


class ProblemsError(Exception):
    """Something could not be loaded; `problems` lists everything found, not just the first."""

    subject = 'input'

    def __init__(self, problems: Iterable[Any]) -> None:
        self.problems: list[Any] = list(problems)
        super().__init__(self._summary())

    @property
    def messages(self) -> list[str]:
        return [str(problem) for problem in self.problems]

    def _summary(self) -> str:
        count = len(self.problems)
        heading = f'{count} problem{"" if count == 1 else "s"} in {self.subject}'
        return '\n  - '.join([f'{heading}:'] + self.messages)


class PolicyError(ProblemsError):
    """A policy could not be loaded; `problems` lists every PolicyProblem found."""

    subject = 'policy'
