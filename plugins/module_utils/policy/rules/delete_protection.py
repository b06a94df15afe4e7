# PRIVATE to the collection: not a public API.
"""delete_protection: no deleting images that servers, images or volumes still use."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

from ..request import Request
from .base import Finding, Rule, register

_KINDS = ('servers', 'images', 'volumes')
_USERS = {
    'servers': 'servers',
    'images': 'images (as kernel or ramdisk)',
    'volumes': 'volumes',
}


@register
class DeleteProtection(Rule):
    """Refuse to delete an image while usage facts show it in use, or cannot rule that out.

    Reads `usage` (from the request, else from the engine's usage provider, called
    only when this rule applies and once per image per run):
    `{servers: [...], images: [...], volumes: [...], not_checked: [...]}`.
    Each list holds the users found ({id, name, ...}). `not_checked` entries say
    what could not be looked at: "servers: reason" strings or {resource, reason}
    mappings; an entry naming no resource counts for all. A kind missing from
    `usage` counts as not checked: unknown is never treated as unused.

    params:
      check: kinds of users that block (default [servers, images, volumes]).
      on_unknown: deny | allow - when a checked kind could not be looked at (default deny).
    """

    type_name = 'delete_protection'
    params_schema = {
        'check': {
            'type': 'list', 'minlength': 1, 'default': list(_KINDS),
            'schema': {'type': 'string', 'allowed': list(_KINDS)},
        },
        'on_unknown': {'type': 'string', 'allowed': ['deny', 'allow'], 'default': 'deny'},
    }
    default_actions = ('delete',)
    needs_usage = True
    placeholders = ('kind', 'count')
    default_message = '{image} is in use by {count} {kind}: {found}'
    kind_messages = {
        'in_use': ('{image} is in use by {count} {kind}: {found}; '
                   'delete or rebuild them first, or deactivate the image instead'),
        'unknown': ('{image}: could not check whether {kind} use it ({found}); '
                    'refusing to delete an image that may be in use'),
    }

    def setup(self, params: Mapping[str, Any]) -> None:
        self.kinds: Tuple[str, ...] = tuple(params['check'])
        self.deny_unknown = params['on_unknown'] == 'deny'

    def evaluate(self, request: Request) -> List[Finding]:
        usage = request.usage
        unchecked = _not_checked(usage)
        findings = []
        for resource in self.kinds:
            users = usage.get(resource)
            if users:
                names = [_describe_user(user) for user in users]
                findings.append(Finding('usage.' + resource, names, [], kind='in_use',
                                        fields={'kind': _USERS[resource], 'count': len(names)}))
            reasons = unchecked.get(resource, []) + unchecked.get('', [])
            if users is None and not reasons:
                reasons = ['usage has no %s entry' % resource]
            if reasons and self.deny_unknown and not users:
                findings.append(Finding('usage.not_checked', reasons, 'checked', kind='unknown',
                                        fields={'kind': _USERS[resource], 'count': 0}))
        return findings


def _not_checked(usage: Mapping[str, Any]) -> Dict[str, List[str]]:
    by_kind: Dict[str, List[str]] = {}
    for entry in usage.get('not_checked') or ():
        if isinstance(entry, Mapping):
            kind = str(entry.get('resource') or entry.get('kind') or '')
            reason = str(entry.get('reason') or entry.get('message') or 'not checked')
        else:
            text = str(entry)
            head, sep, tail = text.partition(':')
            kind, reason = (head.strip(), tail.strip()) if sep and head.strip() in _KINDS else ('', text)
        by_kind.setdefault(kind if kind in _KINDS else '', []).append(reason)
    return by_kind


def _describe_user(user: Any) -> str:
    if not isinstance(user, Mapping):
        return str(user)
    name, user_id = user.get('name'), user.get('id')
    if name and user_id and name != user_id:
        return '%s (%s)' % (name, user_id)
    return str(name or user_id or user)
