# PRIVATE to the collection: not a public API.
"""allowed_formats: disk and container format allowlists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..request import Request
from .base import Finding, Rule, register

_FORMAT_LIST = {'type': 'list', 'minlength': 1, 'schema': {'type': 'string', 'empty': False}}


@register
class AllowedFormats(Rule):
    """Refuse disk or container formats that are not on an allowlist.

    An image that does not state a format yet is not judged on it. At least one of the
    lists is required.
    """

    example = """
    - id: allowed-formats
      type: allowed_formats
      params:
        disk_formats: [qcow2, raw, iso]
        container_formats: [bare, ami, aki, ari, ova]
    """

    type_name = 'allowed_formats'
    params_schema = {
        'disk_formats': dict(_FORMAT_LIST, meta={'doc': 'allowed `disk_format` values'}),
        'container_formats': dict(_FORMAT_LIST, meta={'doc': 'allowed `container_format` values'}),
    }
    default_actions = ('create', 'update', 'upload', 'publish', 'share', 'reactivate')
    default_message = "{image}: {field} '{found}' is not allowed; use one of: {expected}"
    placeholders = ('field',)

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        if 'disk_formats' in params or 'container_formats' in params:
            return []
        return [('', 'needs disk_formats and/or container_formats')]

    def setup(self, params: Mapping[str, Any]) -> None:
        self.allowlists = tuple(
            (field, tuple(params[key]), frozenset(params[key]))
            for field, key in (('disk_format', 'disk_formats'), ('container_format', 'container_formats'))
            if key in params
        )

    def evaluate(self, request: Request) -> list[Finding]:
        findings = []
        for field, allowed, allowed_set in self.allowlists:
            path, value = request.locate(field)
            if value is not None and value not in allowed_set:
                findings.append(Finding(path, value, list(allowed), fields={'field': field}))
        return findings
