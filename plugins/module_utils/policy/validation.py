# PRIVATE to the collection: not a public API.
"""Validation of policy files: the shared document validation, plus the checks only policies
need (JMESPath expressions, rule types)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..documents.validation import FieldProblem, Validator, parse_date
from ..documents.validation import validate as validate_document
from ..documents.values import quote
from ._libs import jmespath, jmespath_exceptions, jmespath_functions
from .rules import RULE_TYPES

__all__ = ['FieldProblem', 'PolicyValidator', 'jmespath_problem', 'parse_date', 'validate']

_JMESPATH_FUNCTIONS = jmespath_functions.Functions().FUNCTION_TABLE if jmespath_functions else {}


def jmespath_problem(expression: str) -> str | None:
    """Why an expression would fail, found at load: syntax, unknown functions, wrong arity."""
    try:
        parsed = jmespath.compile(expression).parsed
    except jmespath_exceptions.IncompleteExpressionError:
        return 'incomplete expression'
    except jmespath_exceptions.LexerError as exc:
        return f'{exc.message} at column {exc.lexer_position + 1}'
    except jmespath_exceptions.ParseError as exc:
        return f'unexpected {quote(exc.token_value)} at column {exc.lex_position + 1}'
    except (jmespath_exceptions.JMESPathError, TypeError) as exc:
        return ' '.join(str(exc).split())
    return _function_problem(parsed)


def _function_problem(node: Any) -> str | None:
    if not isinstance(node, dict):
        return None
    if node.get('type') == 'function_expression':
        name, arguments = node.get('value'), len(node.get('children', ()))
        spec = _JMESPATH_FUNCTIONS.get(name)
        if spec is None:
            return 'unknown function {}(); known: {}'.format(name, ', '.join(sorted(_JMESPATH_FUNCTIONS)))
        signature = spec['signature']
        variadic = any(item.get('variadic') for item in signature)
        if arguments < len(signature) or (arguments > len(signature) and not variadic):
            at_least = 'at least ' if variadic else ''
            plural = '' if len(signature) == 1 else 's'
            return f'{name}() takes {at_least}{len(signature)} argument{plural}, got {arguments}'
    for child in node.get('children', ()):
        problem = _function_problem(child)
        if problem:
            return problem
    return None


class PolicyValidator(Validator):
    """The checks policy files need on top of the shared ones: JMESPath and rule types."""

    def _check_with_jmespath(self, field: str, value: Any) -> None:
        problem = jmespath_problem(value)
        if problem:
            self._error(field, f'invalid JMESPath expression {quote(value)}: {problem}')

    def _check_with_rule_type(self, field: str, value: Any) -> None:
        if value not in RULE_TYPES:
            known = ', '.join(sorted(RULE_TYPES))
            self._error(field, f'unknown rule type {quote(value)}; known types: {known}')


def validate(
    document: Mapping[str, Any], schema: Mapping[str, Any], prefix: Sequence[Any] = ()
) -> tuple[dict, list[FieldProblem]]:
    """Validate a part of a policy file; field paths are prefixed with `prefix`."""
    return validate_document(document, schema, prefix, PolicyValidator)
