# PRIVATE to the collection: not a public API.
"""access_protection: no narrowing who may use an image under the servers that use it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..request import Request
from ..usage_facts import user_project
from .base import Finding, register
from .usage_base import ON_UNKNOWN_SCHEMA, UsageRule, check_schema

_KINDS = ('servers', 'images')
EVERYONE = '*'


@register
class AccessProtection(UsageRule):
    """Refuse narrowing access to an image while projects that would lose it use it.

    A server keeps running on an image whose visibility or members changed, but its rebuild,
    resize, evacuate and unshelve need the image again. Judges `narrow` requests: who may use
    the image before (`current`) and after (`image`) - every project when `public` or
    `community`; the owner and the `members` (project ids) when `shared`, every project when
    the members are not given; the owner alone when `private`. Servers (by `project_id`) and
    images naming it as kernel or ramdisk (by `owner`) of a project that loses access block;
    usage that could not be checked counts as in use unless `on_unknown: allow`. Usage facts as
    for `delete_protection`; `{losing}` names the projects that lose access.
    """

    notes = """
    The default policy refuses it for everyone but admins, and warns admins, naming the
    servers that lose access - the way to revoke an image in an emergency.
    """
    example = """
    - id: no-narrow-in-use
      type: access_protection
      match: {when: "!contains(actor.roles, 'admin')"}
      params: {check: [servers, images], on_unknown: deny}
    - id: narrow-in-use-admin
      type: access_protection
      mode: warn
      match: {when: "contains(actor.roles, 'admin')"}
    """

    type_name = 'access_protection'
    params_schema = {'check': check_schema(_KINDS), 'on_unknown': ON_UNKNOWN_SCHEMA}
    default_actions = ('narrow',)
    placeholders = ('kind', 'count', 'losing')
    default_message = '{image}: {count} {kind} of projects that would lose access use it: {found}'
    kind_messages = {
        'in_use': (
            '{image}: {count} {kind} of projects that would lose access ({losing}) use it: '
            '{found}; move them to another image first, or keep their projects able to use it'
        ),
        'unknown': (
            '{image}: could not check whether {kind} of the projects that would lose access '
            '({losing}) use it ({found}); refusing to narrow access to an image that may be in use'
        ),
    }

    def evaluate(self, request: Request) -> list[Finding]:
        before = access_of(request.current or {})
        after = access_of(request.effective_image)
        losing = losing_projects(before, after)
        if not losing:
            return []
        return self.usage_findings(
            request, lambda user: _loses(user_project(user), before, after), {'losing': _describe_losing(losing, after)}
        )


def access_of(image: Mapping[str, Any]) -> frozenset[str]:
    """The projects that may use an image: {EVERYONE} for everyone."""
    visibility = image.get('visibility') or 'shared'
    owner = image.get('owner')
    if visibility in ('public', 'community'):
        return frozenset((EVERYONE,))
    if visibility == 'shared':
        members = image.get('members')
        if not isinstance(members, (list, tuple, set, frozenset)):
            return frozenset((EVERYONE,))  # members not known: assume anyone may be one
        return frozenset(str(member) for member in members) | ({str(owner)} if owner else set())
    return frozenset({str(owner)} if owner else ())


def losing_projects(before: frozenset[str], after: frozenset[str]) -> frozenset[str]:
    """Projects that may use the image before but not after ({EVERYONE} when unbounded)."""
    if EVERYONE in after:
        return frozenset()
    if EVERYONE in before:
        return frozenset((EVERYONE,))
    return before - after


def _loses(project: str | None, before: frozenset[str], after: frozenset[str]) -> bool:
    if EVERYONE in after:
        return False
    if project is None:
        return True  # a user of unknown project may be one that loses access
    return project not in after and (EVERYONE in before or project in before)


def _describe_losing(losing: frozenset[str], after: frozenset[str]) -> str:
    if EVERYONE in losing:
        keeps = ', '.join(sorted(after)) or 'none'
        return f'every project except {keeps}'
    return ', '.join(sorted(losing))
