# PRIVATE to the collection: not a public API.
"""name_pattern: naming conventions for images."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..request import Request
from .base import Finding, Rule, register


@register
class NamePattern(Rule):
    """The image name must match a regular expression (the whole name, `re.fullmatch`).

    An image without a name fails.
    """

    example = """
    - id: naming
      type: name_pattern
      params: {pattern: '[a-z0-9][a-z0-9.-]*-\\d{8}'}
    """

    type_name = 'name_pattern'
    params_schema = {
        'pattern': {
            'meta': {'doc': r"the name's pattern, e.g. `[a-z0-9][a-z0-9.-]*-\d{8}`"},
            'type': 'string',
            'required': True,
            'empty': False,
            'check_with': 'regex',
        }
    }
    default_actions = ('create', 'update', 'upload', 'publish', 'share', 'capture')
    default_message = "image name '{found}' does not match {expected}; rename the image"

    def setup(self, params: Mapping[str, Any]) -> None:
        self.pattern = params['pattern']
        self.compiled = re.compile(self.pattern)

    def evaluate(self, request: Request) -> list[Finding]:
        path, name = request.locate('name')
        if isinstance(name, str) and self.compiled.fullmatch(name) is not None:
            return []
        return [Finding(path, name, self.pattern)]
