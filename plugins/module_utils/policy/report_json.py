# PRIVATE to the collection: not a public API.
"""Decisions as JSON: the engine's own, lossless report format."""
from __future__ import annotations

import json
from typing import Any, Dict, Sequence, Union

from .decision import Decision

Decisions = Union[Decision, Sequence[Decision]]


def as_list(decisions: Decisions) -> Sequence[Decision]:
    return [decisions] if isinstance(decisions, Decision) else decisions


def report(decisions: Decisions) -> Dict[str, Any]:
    items = as_list(decisions)
    return {
        'allowed': all(decision.allowed for decision in items),
        'decisions': [decision.as_dict() for decision in items],
    }


def render_json(decisions: Decisions, indent: Union[int, None] = 2) -> str:
    return json.dumps(report(decisions), indent=indent, default=str)
