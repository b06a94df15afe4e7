# PRIVATE to the collection: not a public API.
"""A loaded, validated and compiled policy."""

from __future__ import annotations

from collections.abc import Sequence

from .constants import ACTIONS
from .rules.base import Rule
from .waivers import Waiver


class Policy:
    """Rules in file order and exceptions, indexed for evaluation by action and rule id."""

    def __init__(self, rules: Sequence[Rule], waivers: Sequence[Waiver] = (), sources: Sequence[str] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.waivers: tuple[Waiver, ...] = tuple(waivers)
        self.sources: tuple[str, ...] = tuple(sources)
        self.rules_by_id: dict[str, Rule] = {rule.id: rule for rule in self.rules}
        self.rules_by_action: dict[str, tuple[Rule, ...]] = {
            action: tuple(rule for rule in self.rules if action in rule.actions) for action in ACTIONS
        }
        waivers_by_rule: dict[str, list[Waiver]] = {}
        for waiver in self.waivers:
            for rule_id in waiver.rules:
                waivers_by_rule.setdefault(rule_id, []).append(waiver)
        self.waivers_by_rule: dict[str, tuple[Waiver, ...]] = {
            key: tuple(value) for key, value in waivers_by_rule.items()
        }

    def rules_for(self, action: object) -> tuple[Rule, ...]:
        return self.rules_by_action.get(action, ()) if isinstance(action, str) else ()

    def __repr__(self) -> str:
        sources = ', '.join(self.sources) or 'memory'
        return f'Policy({len(self.rules)} rules, {len(self.waivers)} exceptions from {sources})'
