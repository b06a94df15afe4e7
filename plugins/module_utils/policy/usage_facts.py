# PRIVATE to the collection: not a public API.
"""Reading a request's `usage` facts: who uses the image, and what could not be checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

USAGE_KINDS = ('servers', 'images', 'volumes')
USER_NOUNS = {
    'servers': 'servers',
    'images': 'images (as kernel or ramdisk)',
    'volumes': 'volumes',
}


def not_checked_by_kind(usage: Mapping[str, Any]) -> dict[str, list[str]]:
    """Reasons by kind ('' for entries that name no kind, which count for every kind).

    Entries are "servers: reason" strings or {resource, reason} mappings."""
    by_kind: dict[str, list[str]] = {}
    for entry in usage.get('not_checked') or ():
        if isinstance(entry, Mapping):
            kind = str(entry.get('resource') or entry.get('kind') or '')
            reason = str(entry.get('reason') or entry.get('message') or 'not checked')
        else:
            text = str(entry)
            head, sep, tail = text.partition(':')
            kind, reason = (head.strip(), tail.strip()) if sep and head.strip() in USAGE_KINDS else ('', text)
        by_kind.setdefault(kind if kind in USAGE_KINDS else '', []).append(reason)
    return by_kind


def unchecked_reasons(usage: Mapping[str, Any], kind: str, by_kind: dict[str, list[str]]) -> list[str]:
    """Why ``kind`` users may be missing: reported reasons, or a kind absent from the facts."""
    reasons = by_kind.get(kind, []) + by_kind.get('', [])
    if usage.get(kind) is None and not reasons:
        reasons = [f'usage has no {kind} entry']
    return reasons


def describe_user(user: Any) -> str:
    if not isinstance(user, Mapping):
        return str(user)
    name, user_id = user.get('name'), user.get('id')
    if name and user_id and name != user_id:
        return f'{name} ({user_id})'
    return str(name or user_id or user)


def user_project(user: Any) -> str | None:
    """The project a server or image user belongs to, when the facts say."""
    if not isinstance(user, Mapping):
        return None
    project = user.get('project_id') or user.get('owner') or user.get('tenant_id')
    return str(project) if project else None
