# PRIVATE to the collection: not a public API.
"""Decisions as JSON: the engine's own, lossless report format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeAlias

from .decision import Decision

Decisions: TypeAlias = 'Decision | Sequence[Decision]'


def as_list(decisions: Decisions) -> Sequence[Decision]:
    return [decisions] if isinstance(decisions, Decision) else decisions


def report(decisions: Decisions) -> dict[str, Any]:
    items = as_list(decisions)
    return {
        'allowed': all(decision.allowed for decision in items),
        'decisions': [decision.as_dict() for decision in items],
    }


def render_json(decisions: Decisions, indent: int | None = 2) -> str:
    return json.dumps(report(decisions), indent=indent, default=str)
