# PRIVATE to the collection: not a public API.
"""required_properties: metadata an image must carry."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..request import Request
from .base import Finding, Rule, register


@register
class RequiredProperties(Rule):
    """Listed image properties must be present and non-empty, and optionally match a regular expression.

    Properties are top-level keys of the image, as Glance returns them; a nested `properties`
    mapping (openstacksdk's shape) is read as a fallback. Patterns match the whole value
    (`re.fullmatch`) when the property is present; list the name in `properties` too to also
    require it. At least one of the two params is required.
    """

    example = """
    - id: public-image-metadata
      type: required_properties
      mode: warn
      match: {visibility: [public]}
      params:
        properties: [os_distro, architecture]
        patterns: {architecture: '(x86_64|aarch64)'}
    """

    type_name = 'required_properties'
    params_schema = {
        'properties': {
            'meta': {'doc': 'names that must be present'},
            'type': 'list',
            'minlength': 1,
            'schema': {'type': 'string', 'empty': False},
        },
        'patterns': {
            'meta': {'doc': 'the value must match the regular expression when present', 'type': '`{name: regex}`'},
            'type': 'dict',
            'minlength': 1,
            'keysrules': {'type': 'string', 'empty': False},
            'valuesrules': {'type': 'string', 'check_with': 'regex'},
        },
    }
    default_actions = ('create', 'update', 'upload', 'publish', 'share', 'capture')
    placeholders = ('property',)
    default_message = "{image}: property '{property}' is {found}, expected {expected}"
    kind_messages = {
        'missing': "{image}: property '{property}' is required; set it in the image properties",
        'mismatch': "{image}: property '{property}' is '{found}', which does not match {expected}",
    }

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        if params.get('properties') or params.get('patterns'):
            return []
        return [('', 'needs properties and/or patterns')]

    def setup(self, params: Mapping[str, Any]) -> None:
        self.required: tuple[str, ...] = tuple(params.get('properties') or ())
        self.patterns = tuple(
            (name, pattern, re.compile(pattern)) for name, pattern in (params.get('patterns') or {}).items()
        )

    def evaluate(self, request: Request) -> list[Finding]:
        findings = []
        for name in self.required:
            path, value = _property(request, name)
            if value is None or value == '':
                findings.append(Finding(path, None, 'present', kind='missing', fields={'property': name}))
        for name, pattern, compiled in self.patterns:
            path, value = _property(request, name)
            if value is None or value == '':
                continue
            if compiled.fullmatch(str(value)) is None:
                findings.append(Finding(path, value, pattern, kind='mismatch', fields={'property': name}))
        return findings


def _property(request: Request, name: str) -> tuple[str, Any]:
    path, value = request.locate(name)
    if value is None:
        nested_path, nested = request.locate('properties')
        if isinstance(nested, Mapping) and name in nested:
            return f'{nested_path}.{name}', nested[name]
    return path, value
