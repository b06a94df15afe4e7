# PRIVATE to the collection: not a public API.
"""The rule type reference of policies/README.md, written from the registered rule classes:
each class's docstring, its params schema (with each param's `meta: {doc}`), its default
actions, placeholders, notes and example. One source, so the reference cannot drift."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .constants import ACTIONS
from .rules import RULE_TYPES
from .rules.base import Rule

BEGIN = '<!-- rule reference: written from the rule classes (plugins/module_utils/policy/rules); do not edit here -->'
END = '<!-- end of rule reference -->'
_CHECKS = {'regex': 'regular expression', 'jmespath': 'JMESPath expression'}
_TYPES = {'string': 'text', 'dict': 'mapping', 'number': 'number', 'boolean': 'boolean', 'integer': 'integer'}


def rule_reference(types: Mapping[str, type[Rule]] | None = None) -> str:
    """The reference of every rule type, in type name order, between BEGIN and END."""
    types = RULE_TYPES if types is None else types
    sections = [rule_section(types[name]) for name in sorted(types)]
    return '\n\n'.join([BEGIN, *sections, END]) + '\n'


def rule_section(rule: type[Rule]) -> str:
    parts = [f'### `{rule.type_name}`', inspect.cleandoc(rule.__doc__ or '')]
    rows = [_row(name, rules) for name, rules in rule.params_schema.items()]
    parts.append('\n'.join(['| param | type | default | meaning |', '| --- | --- | --- | --- |', *rows]))
    parts.append(_facts(rule))
    if rule.notes:
        parts.append(inspect.cleandoc(rule.notes))
    parts.append(f'```yaml\n{inspect.cleandoc(rule.example)}\n```')
    return '\n\n'.join(parts)


def replace_reference(text: str, reference: str) -> str:
    """``text`` (the README) with the part between BEGIN and END replaced by ``reference``."""
    start, end = text.index(BEGIN), text.index(END) + len(END) + 1
    return text[:start] + reference + text[end:]


def _row(name: str, rules: Mapping[str, Any]) -> str:
    meta = rules.get('meta') or {}
    kind = meta.get('type') or _type_text(rules)
    if rules.get('required'):
        kind += ', required'
    default = meta.get('default') or ('' if 'default' not in rules else _value_text(rules['default']))
    return f'| `{name}` | {kind} | {default} | {meta.get("doc", "")} |'


def _type_text(rules: Mapping[str, Any]) -> str:
    if rules.get('type') == 'list':
        inner = rules.get('schema') or {}
        if inner.get('allowed'):
            return 'list of ' + ', '.join(f'`{value}`' for value in inner['allowed'])
        return 'list of strings' if inner.get('type') == 'string' else f'list of {_type_text(inner)}s'
    if rules.get('allowed'):
        return ' / '.join(f'`{value}`' for value in rules['allowed'])
    if rules.get('check_with') in _CHECKS:
        return _CHECKS[rules['check_with']]
    return _TYPES.get(rules.get('type'), str(rules.get('type', 'value')))


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return f'`{str(value).lower()}`'
    if isinstance(value, (list, tuple)):
        return f'`[{", ".join(str(item) for item in value)}]`'
    if isinstance(value, dict) and not value:
        return '`{}`'
    return f'`{value}`'


def _facts(rule: type[Rule]) -> str:
    actions = 'all' if set(rule.default_actions) == set(ACTIONS) else ', '.join(rule.default_actions)
    facts = f'Default actions: {actions}.'
    if rule.placeholders:
        facts += ' Placeholders: ' + ', '.join(f'`{{{name}}}`' for name in rule.placeholders) + '.'
    return facts
