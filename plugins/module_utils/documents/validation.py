# PRIVATE to the collection: not a public API.
"""Cerberus validation that reports flat (field path, message) pairs.

Cerberus' own error tree is nested and terse; authors of policies, catalogs and request
documents need one line per problem that names the field and says what was expected and
what was found.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._libs import cerberus, cerberus_errors
from .values import QUOTE_LIMIT, quote

# (field path as authors write it, e.g. 'match.names[1]', message)
FieldProblem = tuple[str, str]


def field_path(steps: Sequence[Any]) -> str:
    """('match', 'names', 1) -> 'match.names[1]'."""
    text = ''
    for step in steps:
        if isinstance(step, int):
            text += f'[{step}]'
        else:
            text += ('.' if text else '') + str(step)
    return text


def parse_date(value: Any) -> datetime.datetime | None:
    """Dates (end of that day, UTC) and date-times from YAML or ISO 8601 text; None if invalid."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.date.fromisoformat(text)
        except ValueError:
            try:
                value = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
            except ValueError:
                return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if isinstance(value, datetime.date):
        # An exception "expiring 2025-06-30" still applies on the 30th.
        next_day = value + datetime.timedelta(days=1)
        return datetime.datetime(next_day.year, next_day.month, next_day.day, tzinfo=datetime.timezone.utc)
    return None


def _schema_fields(schema: Mapping[str, Any], parent: Sequence[Any]) -> list[str] | None:
    fields: Mapping[str, Any] | None = schema
    for step in parent:
        if isinstance(step, int):
            continue
        rules = fields.get(step) if fields else None
        if not rules:
            return None
        nested = rules.get('schema')
        if rules.get('type') == 'list' and nested:
            nested = nested.get('schema')
        fields = nested
    return sorted(fields) if fields else None


def _type_names(constraint: Any) -> str:
    names = [constraint] if isinstance(constraint, str) else list(constraint)
    return ' or '.join(names)


class _FlatErrorHandler(cerberus_errors.BaseErrorHandler if cerberus_errors else object):  # type: ignore[misc]
    def __init__(self, tree: Any = None) -> None:
        self.problems: list[tuple[tuple[Any, ...], str]] = []
        self.schema: Mapping[str, Any] = {}

    def __call__(self, errors: Any) -> list[tuple[tuple[Any, ...], str]]:
        self.problems = []
        self.extend(errors)
        return self.problems

    def start(self, validator: cerberus.Validator) -> None:
        self.schema = validator.schema or {}

    def add(self, error: cerberus_errors.ValidationError) -> None:
        if error.is_group_error or error.is_logic_error:
            for child in error.child_errors:
                self.add(child)
            return
        self.problems.append((tuple(error.document_path), self._message(error)))

    def _message(self, error: cerberus_errors.ValidationError) -> str:
        code, constraint, value = error.code, error.constraint, error.value
        if code == cerberus_errors.CUSTOM.code:
            return str(error.info[0])
        if code == cerberus_errors.REQUIRED_FIELD.code:
            return 'required field is missing'
        if code == cerberus_errors.UNKNOWN_FIELD.code:
            known = _schema_fields(self.schema, error.document_path[:-1])
            return 'unknown field' + ('; expected one of: {}'.format(', '.join(known)) if known else '')
        if code == cerberus_errors.BAD_TYPE.code:
            return f'must be of {_type_names(constraint)} type, got {quote(value, QUOTE_LIMIT)}'
        if code == cerberus_errors.NOT_NULLABLE.code:
            return 'must not be null'
        if code == cerberus_errors.EMPTY_NOT_ALLOWED.code:
            return 'must not be empty'
        if code == cerberus_errors.MIN_LENGTH.code:
            return 'must have at least {} item{}'.format(constraint, '' if constraint == 1 else 's')
        if code == cerberus_errors.MAX_LENGTH.code:
            return f'must have at most {constraint} items'
        if code == cerberus_errors.MIN_VALUE.code:
            return f'must be at least {constraint}, got {quote(value)}'
        if code == cerberus_errors.MAX_VALUE.code:
            return f'must be at most {constraint}, got {quote(value)}'
        if code == cerberus_errors.REGEX_MISMATCH.code:
            return f'value {quote(value)} does not match {quote(constraint)}'
        if code in (cerberus_errors.UNALLOWED_VALUE.code, cerberus_errors.UNALLOWED_VALUES.code):
            return 'unallowed value {}; expected one of: {}'.format(
                quote(value), ', '.join(str(item) for item in constraint)
            )
        template = cerberus_errors.BasicErrorHandler.messages.get(code, '{0}')
        return template.format(*error.info, constraint=constraint, field=error.field, value=value)


class Validator(cerberus.Validator if cerberus else object):  # type: ignore[misc]
    """Cerberus validator with the checks every document needs: regular expressions and dates."""

    def _check_with_regex(self, field: str, value: Any) -> None:
        try:
            re.compile(value)
        except (re.error, TypeError) as exc:
            self._error(field, f'invalid regular expression {quote(value)}: {exc}')

    def _check_with_isodate(self, field: str, value: Any) -> None:
        if parse_date(value) is None:
            self._error(field, f'invalid date {quote(value)}; expected YYYY-MM-DD or an ISO 8601 date-time')


# One validator per (schema, validator class), reused: building one normalises and hashes
# its schema, which costs more than validating a catalog entry (a catalog of 10,000 entries
# spent most of its load time there). The schemas are module constants; the entry keeps
# the schema itself so that its id is never reused for another.
_CHECKERS: dict[tuple[int, type], tuple[Mapping[str, Any], Any, bool]] = {}


# Rules that make Cerberus' normalisation change a document. A schema without any of them
# is validated without normalising: that pass copies and re-hashes the schema at every
# level of every document (most of the load time of a catalog of 10,000 entries) and
# would return the document unchanged. A key of this name anywhere (a field called
# 'default' too) keeps the normalisation: slower, never wrong.
_NORMALISING_RULES = frozenset(
    ('default', 'default_setter', 'coerce', 'rename', 'rename_handler', 'purge_unknown', 'purge_readonly', 'readonly')
)


def _normalises(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return any(key in _NORMALISING_RULES or _normalises(value) for key, value in schema.items())
    if isinstance(schema, (list, tuple)):
        return any(_normalises(value) for value in schema)
    return False


def _checker(schema: Mapping[str, Any], validator: type) -> tuple[Any, bool]:
    key = (id(schema), validator)
    cached = _CHECKERS.get(key)
    if cached is None or cached[0] is not schema:
        checker = validator(schema, error_handler=_FlatErrorHandler)
        cached = _CHECKERS[key] = (schema, checker, _normalises(schema))
    return cached[1], cached[2]


def validate(
    document: Mapping[str, Any],
    schema: Mapping[str, Any],
    prefix: Sequence[Any] = (),
    validator: type = Validator,
) -> tuple[dict, list[FieldProblem]]:
    """Validate and normalise (schema defaults); field paths are prefixed with `prefix`."""
    checker, normalise = _checker(schema, validator)
    if checker.validate(dict(document), normalize=normalise):
        return checker.document, []
    problems = [(field_path(tuple(prefix) + steps), message) for steps, message in checker.errors]
    return dict(document), problems
