# PRIVATE to the collection: not a public API.
"""restricted_visibility: role-gated public and community images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..constants import VISIBILITIES
from ..request import Request
from .base import Finding, Rule, register


@register
class RestrictedVisibility(Rule):
    """Only holders of given roles may give an image a restricted visibility.

    Applies when the request sets a visibility that differs from the current one (or creates
    the image with it): renaming an image that is already public is not a new publication.
    Role names compare case-insensitively, as Keystone's do. `{roles}` is the actor's roles.
    """

    example = """
    - id: public-images-admin-only
      type: restricted_visibility
      params: {visibilities: [public, community], roles: [admin]}
    """

    type_name = 'restricted_visibility'
    params_schema = {
        'visibilities': {
            'meta': {'doc': 'the visibilities only those roles may set'},
            'type': 'list',
            'minlength': 1,
            'default': ['public', 'community'],
            'schema': {'type': 'string', 'allowed': list(VISIBILITIES)},
        },
        'roles': {
            'meta': {'doc': 'roles allowed to set them; any one suffices'},
            'type': 'list',
            'minlength': 1,
            'default': ['admin'],
            'schema': {'type': 'string', 'empty': False},
        },
    }
    default_actions = ('create', 'update', 'upload', 'publish', 'share', 'capture')
    default_message = (
        '{image}: only a user with role {expected} may make an image {found}; '
        'keep it private or shared, or ask an administrator to publish it'
    )
    placeholders = ('roles',)

    def setup(self, params: Mapping[str, Any]) -> None:
        self.restricted = frozenset(params['visibilities'])
        self.allowed_roles = tuple(params['roles'])
        self.allowed_role_keys = frozenset(role.lower() for role in self.allowed_roles)

    def evaluate(self, request: Request) -> list[Finding]:
        desired = request.image.get('visibility')
        if desired not in self.restricted:
            return []
        if request.current is not None and request.current.get('visibility') == desired:
            return []
        if self.allowed_role_keys & request.roles:
            return []
        return [Finding('image.visibility', desired, list(self.allowed_roles), fields={'roles': sorted(request.roles)})]
