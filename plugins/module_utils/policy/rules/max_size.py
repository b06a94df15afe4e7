# PRIVATE to the collection: not a public API.
"""max_size: a cap on stored and virtual (disk) size."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..constants import GIB
from ..request import Request
from ..values import human_bytes, is_number
from .base import Finding, Rule, register

_MEASURES = {'size': 'stored size', 'virtual_size': 'virtual size'}


@register
class MaxSize(Rule):
    """Refuse images whose stored size or virtual (disk) size exceeds a limit.

    The virtual size is what a server's disk grows to: a 200 KiB qcow2 whose disk is 30 GiB
    counts as 30 GiB. Sizes come from the inspected upload (`content.size`,
    `content.virtual_size`) when present, else from the image (desired, then current).
    Unknown sizes are not judged; the limit itself is allowed.
    """

    notes = """
    Violations report bytes in `found` / `expected`; the message reads them as sizes
    (`30 GiB`). `{measure}` is `stored size` or `virtual size`.
    """
    example = """
    - id: max-image-size
      type: max_size
      params: {max_gib: 25, which: [size, virtual_size]}
    """

    type_name = 'max_size'
    params_schema = {
        'max_gib': {'meta': {'doc': 'limit in GiB (1024³ bytes)'}, 'type': 'number', 'required': True, 'min': 0},
        'which': {
            'meta': {'doc': 'which sizes to cap'},
            'type': 'list',
            'minlength': 1,
            'default': ['size', 'virtual_size'],
            'schema': {'type': 'string', 'allowed': sorted(_MEASURES)},
        },
    }
    default_actions = ('create', 'update', 'upload', 'publish', 'share', 'reactivate')
    default_message = (
        '{image}: {measure} {found} is over the {expected} limit; use a smaller image or ask for a policy exception'
    )
    placeholders = ('measure',)

    def setup(self, params: Mapping[str, Any]) -> None:
        self.limit_bytes = int(params['max_gib'] * GIB)
        self.measures: tuple[str, ...] = tuple(params['which'])

    def evaluate(self, request: Request) -> list[Finding]:
        findings = []
        for measure in self.measures:
            path, value = _size_fact(request, measure)
            if value is not None and value > self.limit_bytes:
                findings.append(
                    Finding(
                        path,
                        value,
                        self.limit_bytes,
                        found_text=human_bytes(value),
                        expected_text=human_bytes(self.limit_bytes),
                        fields={'measure': _MEASURES[measure]},
                    )
                )
        return findings


def _size_fact(request: Request, measure: str) -> tuple[str, float | None]:
    content = request.content
    if content is not None and is_number(content.get(measure)):
        return f'content.{measure}', content[measure]
    path, value = request.locate(measure)
    return path, value if is_number(value) else None
