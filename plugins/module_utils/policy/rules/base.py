# PRIVATE to the collection: not a public API.
"""The base class and registry of rule types.

A rule type is a class registered under its policy `type:` name. It declares the
cerberus schema of its `params`, the actions it applies to by default, the
request facts it needs (content, usage) and a default message, and turns a
request into findings. One file per type, alongside this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..constants import ACTIONS
from ..request import Request
from ..scope import Scope

RULE_TYPES: dict[str, type[Rule]] = {}


def register(cls: type[Rule]) -> type[Rule]:
    """Class decorator: make a rule type available as `type: <cls.type_name>`."""
    if not cls.type_name or cls.type_name in RULE_TYPES:
        raise ValueError(f'rule type name missing or registered twice: {cls.type_name!r}')
    RULE_TYPES[cls.type_name] = cls
    return cls


class Finding:
    """What a rule found wrong with a request; the engine turns it into a Violation."""

    __slots__ = ('path', 'found', 'expected', 'kind', 'fields', 'found_text', 'expected_text')

    def __init__(
        self,
        path: str,
        found: Any,
        expected: Any,
        kind: str = 'default',
        fields: Mapping[str, Any] | None = None,
        found_text: str | None = None,
        expected_text: str | None = None,
    ) -> None:
        self.path = path
        self.found = found
        self.expected = expected
        self.kind = kind
        self.fields = dict(fields or {})
        # Human forms for messages, when the raw value (e.g. bytes) reads badly.
        self.found_text = found_text
        self.expected_text = expected_text

    def __repr__(self) -> str:
        return f'Finding({self.path!r}, found={self.found!r}, expected={self.expected!r}, kind={self.kind!r})'


class Rule:
    """One rule of a loaded policy: shared metadata plus its type's `evaluate()`."""

    type_name: ClassVar[str] = ''
    params_schema: ClassVar[dict[str, Any]] = {}
    default_actions: ClassVar[tuple[str, ...]] = ACTIONS
    default_message: ClassVar[str] = '{image}: {found} does not satisfy {expected}'
    # Per finding kind; a rule's own `message:` overrides them all.
    kind_messages: ClassVar[dict[str, str]] = {}
    placeholders: ClassVar[tuple[str, ...]] = ()
    # The reference in policies/README.md is written from the class: its docstring (markdown),
    # each param's `meta: {doc}` in params_schema, these notes (after the params) and example.
    notes: ClassVar[str] = ''
    example: ClassVar[str] = ''
    needs_content: ClassVar[bool] = False
    needs_usage: ClassVar[bool] = False

    def __init__(
        self,
        rule_id: str,
        params: Mapping[str, Any],
        *,
        description: str = '',
        severity: str = 'medium',
        mode: str = 'enforce',
        actions: frozenset[str] | None = None,
        scope: Scope | None = None,
        message: str | None = None,
        source: str = '',
        line: int | None = None,
        locked: bool = False,
        overrides: str | None = None,
    ) -> None:
        self.id = rule_id
        self.params = dict(params)
        self.description = description or self.summary()
        self.severity = severity
        self.mode = mode
        self.actions = frozenset(self.default_actions if actions is None else actions)
        self.scope = scope
        self.message = message
        self.source = source
        self.line = line
        # Declared in the base policy (IMAGEGOV_BASE_POLICY) as one no overlay file may redefine,
        # relax or waive; only the base's own exceptions and its exception_sources may waive it.
        self.locked = locked
        # The base policy file whose rule of the same id this overlay rule replaces.
        self.overrides = overrides
        self.setup(self.params)

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or '').strip()
        return doc.splitlines()[0] if doc else cls.type_name

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Cross-field checks cerberus cannot express: (field, message) pairs."""
        return []

    def setup(self, params: Mapping[str, Any]) -> None:
        """Precompile whatever evaluate() needs (regexes, tables) once, at load time."""

    def evaluate(self, request: Request) -> list[Finding]:
        raise NotImplementedError

    def template_for(self, kind: str) -> str:
        if self.message:
            return self.message
        return self.kind_messages.get(kind, self.default_message)
