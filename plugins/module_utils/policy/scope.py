# PRIVATE to the collection: not a public API.
"""The `match:` scope shared by rules and exceptions, compiled once at load."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from re import Pattern
from typing import TYPE_CHECKING, Any

from ._libs import jmespath
from .values import jmespath_truthy

if TYPE_CHECKING:
    from .request import Request


class Scope:
    """All given criteria must hold; a criterion left out matches everything."""

    __slots__ = ('projects', 'visibility', 'names', 'condition', 'when')

    def __init__(self, match: Mapping[str, Any] | None = None) -> None:
        match = match or {}
        self.projects: frozenset[str] | None = _frozen(match.get('projects'))
        self.visibility: frozenset[str] | None = _frozen(match.get('visibility'))
        self.names: Pattern[str] | None = _glob_pattern(match.get('names'))
        self.when: str | None = match.get('when')
        self.condition = jmespath.compile(self.when) if self.when else None

    @property
    def is_universal(self) -> bool:
        return not (self.projects or self.visibility or self.names or self.condition)

    def matches(self, request: Request) -> bool:
        """May raise jmespath errors from `when`; the engine decides what that means."""
        if self.projects is not None and not self.projects & request.projects:
            return False
        if self.visibility is not None and request.visibility not in self.visibility:
            return False
        if self.names is not None:
            name = request.image_name
            if not isinstance(name, str) or self.names.match(name) is None:
                return False
        if self.condition is not None:
            return jmespath_truthy(self.condition.search(request.document))
        return True


def _frozen(values: Any) -> frozenset[str] | None:
    return frozenset(str(value) for value in values) if values else None


def _glob_pattern(patterns: Any) -> Pattern[str] | None:
    if not patterns:
        return None
    return re.compile('|'.join(f'(?:{fnmatch.translate(pattern)})' for pattern in patterns))
