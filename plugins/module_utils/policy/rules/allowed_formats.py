# PRIVATE to the collection: not a public API.
"""allowed_formats: disk and container format allowlists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...catalog.constants import CONVERSION_TARGETS
from ..request import Request
from .base import Finding, Rule, register

_FORMAT_LIST = {'type': 'list', 'minlength': 1, 'schema': {'type': 'string', 'empty': False}}


@register
class AllowedFormats(Rule):
    """Refuse disk or container formats that are not on an allowlist.

    An image that does not state a format yet is not judged on it. At least one of the
    lists is required. With `convert_to`, a source whose disk format is off the list is
    converted to that format on upload (by the `image` module and catalogs) instead of
    refused; the refusal still holds for what cannot be converted (an iso, a ploop).
    """

    example = """
    - id: allowed-formats
      type: allowed_formats
      params:
        disk_formats: [qcow2, raw, iso]
        container_formats: [bare, ami, aki, ari, ova]
        convert_to: qcow2
    """

    type_name = 'allowed_formats'
    params_schema = {
        'disk_formats': dict(_FORMAT_LIST, meta={'doc': 'allowed `disk_format` values'}),
        'container_formats': dict(_FORMAT_LIST, meta={'doc': 'allowed `container_format` values'}),
        'convert_to': {
            'type': 'string',
            'allowed': list(CONVERSION_TARGETS),
            'meta': {'doc': 'convert an off-list disk format to this one on upload, instead of refusing it'},
        },
    }
    default_actions = ('create', 'update', 'upload', 'publish', 'share', 'reactivate')
    default_message = "{image}: {field} '{found}' is not allowed; use one of: {expected}"
    placeholders = ('field',)

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        if 'disk_formats' not in params and 'container_formats' not in params:
            return [('', 'needs disk_formats and/or container_formats')]
        if 'convert_to' in params and params['convert_to'] not in params.get('disk_formats', [params['convert_to']]):
            return [('convert_to', f"'{params['convert_to']}' must be one of disk_formats (its output is judged too)")]
        return []

    def setup(self, params: Mapping[str, Any]) -> None:
        self.allowlists = tuple(
            (field, tuple(params[key]), frozenset(params[key]))
            for field, key in (('disk_format', 'disk_formats'), ('container_format', 'container_formats'))
            if key in params
        )
        self.convert_to = params.get('convert_to')

    def conversion_for(self, disk_format: str | None) -> str | None:
        """The conversion target for a source in ``disk_format``, when this rule offers one."""
        allowed = dict((field, allowed_set) for field, _listed, allowed_set in self.allowlists).get('disk_format')
        if self.convert_to and disk_format and allowed is not None and disk_format not in allowed:
            return self.convert_to
        return None

    def evaluate(self, request: Request) -> list[Finding]:
        findings = []
        for field, allowed, allowed_set in self.allowlists:
            path, value = request.locate(field)
            if value is not None and value not in allowed_set:
                findings.append(Finding(path, value, list(allowed), fields={'field': field}))
        return findings
