# PRIVATE to the collection: not a public API.
"""The verdict on one request: allowed or not, and why."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

PASSED = 'passed'
VIOLATED = 'violated'
SKIPPED = 'skipped'


@dataclasses.dataclass(repr=False)
class Violation:
    """One finding of one rule, with its rendered message and exception status."""

    rule: str
    type: str
    severity: str
    mode: str
    message: str
    path: str
    expected: Any
    found: Any
    # None, or {id, status: applied|expired, expires, reason, owner}
    exception: dict[str, Any] | None = None
    description: str = ''
    source: str = ''
    # The rule is locked by the base policy: only the base's own exceptions and those of its
    # exception_sources can waive it.
    locked: bool = False

    @property
    def waived(self) -> bool:
        return self.exception is not None and self.exception['status'] == 'applied'

    @property
    def blocking(self) -> bool:
        return self.mode == 'enforce' and not self.waived

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            'rule': self.rule,
            'type': self.type,
            'severity': self.severity,
            'mode': self.mode,
            'message': self.message,
            'path': self.path,
            'expected': self.expected,
            'found': self.found,
            'exception': dict(self.exception) if self.exception else None,
        }
        if self.locked:
            result['locked'] = True
        return result

    @property
    def refusal_text(self) -> str:
        """`[rule] message`, saying where a locked rule is locked: no playbook's policy can waive it."""
        if self.locked:
            return f"[{self.rule}] {self.message} (rule locked by the organisation's base policy {self.source})"
        return f'[{self.rule}] {self.message}'

    def __repr__(self) -> str:
        return f'Violation({self.rule!r}, {self.message!r})'


@dataclasses.dataclass
class RuleOutcome:
    """How one applicable rule went: passed, violated or skipped (facts it needs were absent)."""

    rule: str
    type: str
    severity: str
    mode: str
    status: str
    violations: list[Violation] = dataclasses.field(default_factory=list)
    note: str = ''
    locked: bool = False

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {'rule': self.rule, 'type': self.type, 'status': self.status}
        if self.note:
            result['note'] = self.note
        if self.locked:
            result['locked'] = True
        return result


class Decision:
    """allowed is False iff a violation of an enforce-mode rule is not waived by a live exception."""

    def __init__(
        self,
        action: Any,
        image: Mapping[str, Any],
        violations: Sequence[Violation],
        outcomes: Sequence[RuleOutcome],
        source: Mapping[str, Any] | None = None,
    ) -> None:
        self.action = action
        self.image = dict(image)
        self.violations = list(violations)
        self.outcomes = list(outcomes)
        self.source = dict(source) if source else None
        self.allowed = not any(violation.blocking for violation in self.violations)

    @property
    def blocking(self) -> list[Violation]:
        return [violation for violation in self.violations if violation.blocking]

    @property
    def warnings(self) -> list[Violation]:
        """Violations of warn-mode rules that no exception waives: report, do not refuse."""
        return [violation for violation in self.violations if violation.mode == 'warn' and not violation.waived]

    @property
    def image_label(self) -> str:
        name, image_id = self.image.get('name'), self.image.get('id')
        if name and image_id:
            return f'{name} ({image_id})'
        return str(name or image_id or 'new image')

    def refusal_message(self) -> str:
        """One line for a module's failure: which rules refused and what to change."""
        if self.allowed:
            return ''
        reasons = '; '.join(violation.refusal_text for violation in self.blocking)
        return f'policy refused {self.action} of image {self.image_label}: {reasons}'

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            'action': self.action,
            'image': self.image,
            'allowed': self.allowed,
            'violations': [violation.as_dict() for violation in self.violations],
            'warnings': [violation.message for violation in self.warnings],
            'rules': [outcome.as_dict() for outcome in self.outcomes],
        }
        if self.source:
            result['source'] = self.source
        return result

    def __repr__(self) -> str:
        return f'Decision({self.action} {self.image_label}: allowed={self.allowed}, {len(self.violations)} violations)'
