# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The minimal change between a desired and a current image, as one JSON patch.

Pure functions on Glance's own image dicts: the same code computes the patch that is
sent, simulates it for check mode and produces the before/after of ``--diff``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

SHA256_PROPERTY = 'owner_specified.openstack.sha256'
# The collection's own bookkeeping on images. A project member can edit any of them, so
# they are read as hints: a malformed value is drift, never proof of anything.
REPLACED_BY_PROPERTY = 'imagegov_replaced_by'
# A protection this collection set because the image was in use: it, and only it, is lifted
# again once nothing uses the image.
PROTECTED_WHILE_USED_PROPERTY = 'imagegov_protected_while_used'
# When the image was first shared or published by this collection: other projects may have
# booted it since, even if it is private now.
SHARED_SINCE_PROPERTY = 'imagegov_shared_since'
BOOKKEEPING_PREFIX = 'imagegov_'
# Records of how an image was built (the image_build role writes them): set through the
# image module's properties like any other, and kept, like all bookkeeping, by a purge.
BUILD_RECORD_PROPERTIES = frozenset({'imagegov_base_sha256', 'imagegov_build_hash'})

# Fields Glance owns or that change without the user asking: never diffed, never patched.
VOLATILE_FIELDS = frozenset({'updated_at', 'locations', 'direct_url', 'file', 'schema', 'self'})
READ_ONLY_FIELDS = frozenset(
    {
        'id',
        'status',
        'size',
        'virtual_size',
        'checksum',
        'created_at',
        'updated_at',
        'os_hash_algo',
        'os_hash_value',
        'stores',
        'file',
        'schema',
        'self',
        'locations',
        'direct_url',
    }
)
# Image attributes the module sets through options of their own, in patch order.
ATTRIBUTES = (
    'name',
    'disk_format',
    'container_format',
    'min_disk',
    'min_ram',
    'visibility',
    'protected',
    'os_hidden',
    'owner',
)
BASE_FIELDS = READ_ONLY_FIELDS | frozenset(ATTRIBUTES) | {'tags'}
# Attributes that Glance fixes once data is uploaded: a change needs new image data.
CONTENT_BOUND_ATTRIBUTES = ('disk_format', 'container_format')
# Properties that purge_properties must keep: Glance's import bookkeeping, the content
# identity this collection records, and its notes on replaced, usage-protected and shared images.
KEPT_PROPERTY_PREFIXES = (
    'os_glance',
    'owner_specified.openstack.',
    REPLACED_BY_PROPERTY,
    PROTECTED_WHILE_USED_PROPERTY,
    SHARED_SINCE_PROPERTY,
)


@dataclass
class DesiredImage:
    """What the user asked for; ``None`` means "leave as it is"."""

    attributes: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    tags: list[str] | None = None
    purge_properties: bool = False
    purge_tags: bool = False
    # Properties that must not be there (a machine image's ramdisk_id once it has none).
    removed_properties: tuple[str, ...] = ()

    def set_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in self.attributes.items() if v is not None}


def properties_of(image: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in image.items() if k not in BASE_FIELDS}


def _purgeable(key: str) -> bool:
    return not key.startswith(KEPT_PROPERTY_PREFIXES)


def target_tags(current: list[str], desired: DesiredImage) -> list[str]:
    if desired.tags is None:
        return sorted(current)
    if desired.purge_tags:
        return sorted(set(desired.tags))
    return sorted(set(current) | set(desired.tags))


def plan_patch(current: dict[str, Any], desired: DesiredImage) -> list[dict[str, Any]]:
    """JSON-patch operations that turn ``current`` into ``desired``: empty when in step."""
    operations: list[dict[str, Any]] = []
    for name, value in desired.set_attributes().items():
        if current.get(name) != value:
            operations.append({'op': 'replace' if name in current else 'add', 'path': f'/{name}', 'value': value})
    current_properties = properties_of(current)
    for key, value in sorted(desired.properties.items()):
        if key not in current_properties:
            operations.append({'op': 'add', 'path': f'/{key}', 'value': value})
        elif current_properties[key] != value:
            operations.append({'op': 'replace', 'path': f'/{key}', 'value': value})
    for key in sorted(current_properties):
        if key not in desired.properties and (
            key in desired.removed_properties or desired.purge_properties and _purgeable(key)
        ):
            operations.append({'op': 'remove', 'path': f'/{key}'})
    tags = target_tags(current.get('tags') or [], desired)
    if tags != sorted(current.get('tags') or []):
        operations.append({'op': 'replace', 'path': '/tags', 'value': tags})
    return operations


def content_bound_changes(current: dict[str, Any], desired: DesiredImage) -> list[str]:
    """Attributes that differ but cannot change on an image that already has data."""
    if current.get('status') in ('queued', None):
        return []
    wanted = desired.set_attributes()
    return [name for name in CONTENT_BOUND_ATTRIBUTES if name in wanted and current.get(name) != wanted[name]]


def apply_patch(image: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """What Glance will return after ``operations``: the check-mode simulation."""
    result = copy.deepcopy(image)
    for operation in operations:
        key = operation['path'][1:]
        if operation['op'] == 'remove':
            result.pop(key, None)
        else:
            result[key] = copy.deepcopy(operation['value'])
    return result


def creation_fields(desired: DesiredImage) -> dict[str, Any]:
    """The body of the POST that creates the image record."""
    fields = desired.set_attributes()
    fields.update(desired.properties)
    fields['tags'] = sorted(set(desired.tags or []))
    return fields


def simulated_new_image(desired: DesiredImage) -> dict[str, Any]:
    image = creation_fields(desired)
    image.setdefault('visibility', 'shared')
    image.setdefault('protected', False)
    image.setdefault('os_hidden', False)
    image['status'] = 'queued'
    return image


def stable_view(image: dict[str, Any] | None) -> dict[str, Any]:
    """The image without fields that change on their own, with sorted tags, for diffs."""
    if not image:
        return {}
    view = {k: v for k, v in image.items() if k not in VOLATILE_FIELDS}
    if 'tags' in view:
        view['tags'] = sorted(view['tags'] or [])
    return dict(sorted(view.items()))


def make_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    return {'before': stable_view(before), 'after': stable_view(after)}
