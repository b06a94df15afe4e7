# PRIVATE to the collection: not a public API.
"""A loaded, validated and compiled policy."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from .constants import ACTIONS
from .rules.base import Rule
from .waivers import Waiver


class Policy:
    """Rules in file order and exceptions, indexed for evaluation by action and rule id."""

    def __init__(self, rules: Sequence[Rule], waivers: Sequence[Waiver] = (),
                 sources: Sequence[str] = ()) -> None:
        self.rules: Tuple[Rule, ...] = tuple(rules)
        self.waivers: Tuple[Waiver, ...] = tuple(waivers)
        self.sources: Tuple[str, ...] = tuple(sources)
        self.rules_by_id: Dict[str, Rule] = {rule.id: rule for rule in self.rules}
        self.rules_by_action: Dict[str, Tuple[Rule, ...]] = {
            action: tuple(rule for rule in self.rules if action in rule.actions) for action in ACTIONS
        }
        waivers_by_rule: Dict[str, List[Waiver]] = {}
        for waiver in self.waivers:
            for rule_id in waiver.rules:
                waivers_by_rule.setdefault(rule_id, []).append(waiver)
        self.waivers_by_rule: Dict[str, Tuple[Waiver, ...]] = {
            key: tuple(value) for key, value in waivers_by_rule.items()
        }

    def rules_for(self, action: object) -> Tuple[Rule, ...]:
        return self.rules_by_action.get(action, ()) if isinstance(action, str) else ()

    def __repr__(self) -> str:
        return 'Policy(%d rules, %d exceptions from %s)' % (
            len(self.rules), len(self.waivers), ', '.join(self.sources) or 'memory')
