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

    Needs usage facts: `usage` from the request, else the engine's usage provider, called only
    when this rule applies, at most once per image id per run.

    ```yaml
    usage:
      servers: [{id, name, project_id, status}, ...]   # Nova servers booted from it
      images:  [{id, name, owner}, ...]                # images using it as kernel/ramdisk
      volumes: [{id, name}, ...]                       # Cinder volumes created from it
      not_checked: ['servers: listing all projects needs admin', {resource: volumes, reason: timeout}]
    ```

    `not_checked` says what could not be looked at: `"<kind>: reason"` strings or
    `{resource, reason}` mappings; an entry naming no kind counts for every kind. A kind
    missing from `usage` also counts as not checked: **unknown is never taken for unused**. No
    usage facts and no provider, or a provider that fails, make every kind unknown. A usage
    provider should report kinds that cannot exist (e.g. volumes in a cloud without block
    storage) as empty lists, not as `not_checked`.

    It fits `unprotect` too: lifting Glance's protection is the step before a plain delete.
    """

    notes = """
    Who *may* use an image today is not who uses it: a server booted while the image was
    shared keeps using it after the image became private. The collection's usage provider
    therefore reports other projects' servers as not checked - unless it asks with an account
    that lists every project's servers (`usage_cloud`) - for any image that is, or ever was,
    shared with a project, community or public: "ever" is what Glance still shows
    (visibility, members) and the `imagegov_shared_since` mark the collection records when it
    shares or publishes an image. The mark is a hint a member can edit; it only ever makes the
    rule stricter.
    """
    example = """
    - id: no-delete-in-use
      type: delete_protection
      actions: [delete, unprotect]
      params: {check: [servers, images, volumes], on_unknown: deny}
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
