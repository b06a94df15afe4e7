# PRIVATE to the collection: not a public API.
"""Catalog loading errors: every problem found, each naming file, line, image and field."""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..policy.errors import ProblemsError


class CatalogProblem:
    """One thing wrong in a catalog, formatted as `file:line: image 'x' (images[0]): field 'y': message`."""

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
        return 'CatalogProblem(%r)' % str(self)

    def as_dict(self) -> Dict[str, Any]:
        return {'file': self.source, 'line': self.line, 'item': self.item, 'field': self.field,
                'message': self.message, 'text': str(self)}


class CatalogError(ProblemsError):
    """A catalog could not be loaded; `problems` lists every CatalogProblem found."""

    subject = 'catalog'
