# PRIVATE to the collection: not a public API.
"""delete_protection: no deleting images that servers, images or volumes still use."""

from __future__ import annotations

from ..request import Request
from ..usage_facts import USAGE_KINDS
from .base import Finding, register
from .usage_base import ON_UNKNOWN_SCHEMA, UsageRule, check_schema


@register
class DeleteProtection(UsageRule):
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

    Also fit for `unprotect`: lifting Glance's protected flag is the step before a plain delete.
    """

    type_name = 'delete_protection'
    params_schema = {'check': check_schema(USAGE_KINDS), 'on_unknown': ON_UNKNOWN_SCHEMA}
    default_actions = ('delete',)
    placeholders = ('kind', 'count')
    default_message = '{image} is in use by {count} {kind}: {found}'
    kind_messages = {
        'in_use': (
            '{image} is in use by {count} {kind}: {found}; '
            'delete or rebuild them first, or deactivate the image instead'
        ),
        'unknown': (
            '{image}: could not check whether {kind} use it ({found}); refusing to {action} an image that may be in use'
        ),
    }

    def evaluate(self, request: Request) -> list[Finding]:
        return self.usage_findings(request)
