# PRIVATE to the collection: not a public API.
"""Policy loading errors: every problem found, each naming file, item and field."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional


class Problem:
    """One thing wrong in a source, formatted as `source[:line]: item: field 'x': message`."""

    __slots__ = ('source', 'line', 'item', 'field', 'message')

    def __init__(self, source: str, message: str, line: Optional[int] = None, item: Optional[str] = None,
                 field: Optional[str] = None) -> None:
        self.source = source
        self.line = line
        self.item = item
        self.field = field
        self.message = message

    def __str__(self) -> str:
        parts = [self.source if self.line is None else '%s:%d' % (self.source, self.line)]
        if self.item:
            parts.append(self.item)
        if self.field:
            parts.append("field '%s'" % self.field)
        parts.append(self.message)
        return ': '.join(parts)

    def __repr__(self) -> str:
        return '%s(%r)' % (type(self).__name__, str(self))

    def as_dict(self) -> Dict[str, Any]:
        return {'file': self.source, 'line': self.line, 'item': self.item, 'field': self.field,
                'message': self.message, 'text': str(self)}


class PolicyProblem(Problem):
    """One thing wrong in a policy source."""

    __slots__ = ()


class ProblemsError(Exception):
    """Something could not be loaded; `problems` lists everything found, not just the first."""

    subject = 'input'

    def __init__(self, problems: Iterable[Any]) -> None:
        self.problems: List[Any] = list(problems)
        super().__init__(self._summary())

    @property
    def messages(self) -> List[str]:
        return [str(problem) for problem in self.problems]

    def _summary(self) -> str:
        count = len(self.problems)
        heading = '%d problem%s in %s' % (count, '' if count == 1 else 's', self.subject)
        return '\n  - '.join([heading + ':'] + self.messages)


class PolicyError(ProblemsError):
    """A policy could not be loaded; `problems` lists every PolicyProblem found."""

    subject = 'policy'
