# PRIVATE to the collection: not a public API.
"""expression: any condition on the request, written in JMESPath."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._libs import jmespath
from ..request import Request
from ..values import jmespath_truthy
from .base import Finding, Rule, register


@register
class Expression(Rule):
    """A generic JMESPath expression over the request document must be true.

    JMESPath truthiness: false, null, and empty strings, lists and objects fail; everything
    else passes (`0` too). Give the rule a `message`: the default one can only quote the
    expression. `found` is what the expression returned.
    """

    example = """
    - id: min-ram
      type: expression
      actions: [create, update]
      params: {assert: 'image.min_ram >= `512`', path: image.min_ram}
      message: '{image}: set min_ram to at least 512 MiB'
    """

    type_name = 'expression'
    params_schema = {
        'assert': {
            'meta': {'doc': 'the expression, e.g. "image.min_ram >= `512`"'},
            'type': 'string',
            'required': True,
            'empty': False,
            'check_with': 'jmespath',
        },
        'path': {
            'meta': {'doc': 'where the violation points in the request', 'default': 'the expression'},
            'type': 'string',
            'empty': False,
        },
    }
    default_message = '{image}: condition `{expected}` does not hold (it gave {found})'

    def setup(self, params: Mapping[str, Any]) -> None:
        self.assertion = params['assert']
        self.compiled = jmespath.compile(self.assertion)
        self.path = params.get('path') or self.assertion

    def evaluate(self, request: Request) -> list[Finding]:
        result = self.compiled.search(request.document)
        if jmespath_truthy(result):
            return []
        return [Finding(self.path, result, self.assertion)]
