# PRIVATE to the collection: not a public API.
"""Cerberus schemas of a catalog file and the checks that give its precise messages."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._redact import redact_url
from ..documents.values import quote
from .checksums import parse_checksum
from .constants import (
    CATALOG_VERSIONS,
    CONTAINER_FORMATS,
    CONVERSION_TARGETS,
    DISK_FORMATS,
    DURATION_UNITS,
    ENTRY_STATES,
    GLANCE_ATTRIBUTES,
    MIN_DISK_AUTO,
    RESERVED_PROPERTIES,
    RESERVED_PROPERTY_PREFIXES,
    VERSION_PLACEHOLDER,
    VISIBILITIES,
)

ErrorCallback = Callable[[str, str], None]

_SHA256 = re.compile(r'^[0-9a-fA-F]{64}$')
_DURATION = re.compile(rf'^([1-9][0-9]*)([{"".join(DURATION_UNITS)}])$')
_PLACEHOLDER = re.compile(r'\{([^{}]*)\}')
_DATE = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}$')
_UUID = re.compile(r'^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')


def describe_kind(value: Any) -> str:
    """'abc' -> "'abc'", [1] -> 'a list', None -> 'null': what an author typed, for messages."""
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, dict):
        return 'a mapping'
    return quote(value)


def parse_duration(value: Any) -> int | None:
    """'30d' -> 2592000 seconds; None unless a whole number >= 1 followed by h, d or w."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def parse_released(value: Any) -> str | None:
    """A release date as YYYY-MM-DD text, or None if it is not a valid date."""
    if isinstance(value, datetime.datetime):
        return None
    if isinstance(value, datetime.date):
        return value.isoformat()
    if not isinstance(value, str) or not _DATE.match(value):
        return None
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def property_text(value: Any) -> str:
    """Glance stores property values as text: True -> 'true', 2 -> '2'."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _check_catalog_version(field: str, value: Any, error: ErrorCallback) -> None:
    if isinstance(value, bool) or value not in CATALOG_VERSIONS:
        error(
            field,
            'unsupported catalog version {}; expected {}'.format(
                describe_kind(value), ' or '.join(str(version) for version in CATALOG_VERSIONS)
            ),
        )


def _check_count(field: str, value: Any, error: ErrorCallback, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        error(field, f'must be a whole number >= {minimum}, got {describe_kind(value)}')


def _check_size(field: str, value: Any, error: ErrorCallback) -> None:
    _check_count(field, value, error, 0)


def _check_min_disk(field: str, value: Any, error: ErrorCallback) -> None:
    if value != MIN_DISK_AUTO and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        error(field, f'must be a whole number >= 0 or {MIN_DISK_AUTO} (the virtual size), got {describe_kind(value)}')


def _check_convert_to(field: str, value: Any, error: ErrorCallback) -> None:
    targets = ', '.join(CONVERSION_TARGETS)
    if isinstance(value, dict):
        for cloud, target in value.items():
            if not isinstance(cloud, str) or not cloud:
                error(field, f'a cloud name must be a non-empty string, got {describe_kind(cloud)}')
            elif target is not None and target not in CONVERSION_TARGETS:
                error(f'{field}.{cloud}', f'must be one of {targets}, or null, got {describe_kind(target)}')
    elif value not in CONVERSION_TARGETS:
        error(field, f'must be one of {targets}, or a mapping of cloud names to them, got {describe_kind(value)}')


def _check_checksum(field: str, value: Any, error: ErrorCallback) -> None:
    if parse_checksum(value) is None:
        error(
            field,
            'must be sha256:<64 hexadecimal characters> or sha512:<128 hexadecimal characters>, '
            f'got {describe_kind(value)}',
        )


def _check_id(field: str, value: Any, error: ErrorCallback) -> None:
    if not (isinstance(value, str) and _UUID.match(value)):
        error(
            field,
            f'must be an image id (a UUID such as 6f1c1c5e-7d0f-4b8a-9a4e-2f9e0d3c6b71), got {describe_kind(value)}',
        )


def _check_alias(field: str, value: Any, error: ErrorCallback) -> None:
    if isinstance(value, str) and _PLACEHOLDER.search(value):
        error(field, f'is the plain name the newest build carries: no placeholder, got {quote(value)}')


def _check_keep(field: str, value: Any, error: ErrorCallback) -> None:
    _check_count(field, value, error, 1)


def _check_sha256(field: str, value: Any, error: ErrorCallback) -> None:
    if not (isinstance(value, str) and _SHA256.match(value)):
        error(field, f'must be 64 hexadecimal characters (a sha256), got {describe_kind(value)}')


def _check_url(field: str, value: Any, error: ErrorCallback) -> None:
    if isinstance(value, str) and not value.startswith(('http://', 'https://')):
        error(field, f'must be an http:// or https:// URL, got {quote(redact_url(value))}')


def _check_source(field: str, value: Any, error: ErrorCallback) -> None:
    if not isinstance(value, dict):
        return
    given = [key for key in ('file', 'url', 'cloud') if key in value]
    if len(given) != 1:
        error(
            field,
            'must have exactly one of file, url or cloud (with image), '
            f'got {" and ".join(given) if given else "neither"}',
        )
    elif 'cloud' in value and 'image' not in value:
        error(f'{field}.image', 'required with source.cloud: the name or id of the image in that cloud')
    elif 'image' in value and 'cloud' not in value:
        error(f'{field}.image', 'goes with source.cloud (the clouds.yaml name of the cloud holding the image)')


def _check_duration(field: str, value: Any, error: ErrorCallback) -> None:
    if parse_duration(value) is None:
        error(
            field,
            'must be a duration: a whole number >= 1 followed by h (hours), d (days) or w (weeks), '
            f'e.g. 12h, 30d, 2w; got {describe_kind(value)}',
        )


def _check_version(field: str, value: Any, error: ErrorCallback) -> None:
    if isinstance(value, str) and value.strip():
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        error(
            field,
            f'must be text: put the version in quotes; YAML read it as the number {quote(value)} '
            '(numbers lose digits, 12.10 becomes 12.1)',
        )
    else:
        error(field, f'must be non-empty text, got {describe_kind(value)}')


def _check_released(field: str, value: Any, error: ErrorCallback) -> None:
    if parse_released(value) is None:
        error(field, f'must be a date YYYY-MM-DD, got {describe_kind(value)}')


def _check_template(field: str, value: Any, error: ErrorCallback) -> None:
    if not isinstance(value, str):
        return
    if VERSION_PLACEHOLDER not in value:
        error(field, f'must contain {VERSION_PLACEHOLDER} (replaced by each version), got {quote(value)}')
    unknown = sorted(set(_PLACEHOLDER.findall(value)) - {'version'})
    if unknown:
        error(
            field,
            'unknown placeholder{} {}; only {} is replaced'.format(
                '' if len(unknown) == 1 else 's', ', '.join(f'{{{name}}}' for name in unknown), VERSION_PLACEHOLDER
            ),
        )


def _check_single_name(field: str, value: Any, error: ErrorCallback) -> None:
    if isinstance(value, str) and VERSION_PLACEHOLDER in value:
        error(field, f'contains {VERSION_PLACEHOLDER} but this is a single image; a series needs series: and versions:')


def _check_property_name(field: str, value: Any, error: ErrorCallback) -> None:
    if not isinstance(value, str):
        return
    reason = RESERVED_PROPERTIES.get(value)
    if value in GLANCE_ATTRIBUTES:
        reason = 'a Glance image attribute, not a property'
    for prefix, why in RESERVED_PROPERTY_PREFIXES:
        if value.startswith(prefix):
            reason = why
    if reason:
        error(field, f'reserved property name {quote(value)} ({reason})')


def _check_property_value(field: str, value: Any, error: ErrorCallback) -> None:
    if value is None or not isinstance(value, (str, int, float, bool)):
        error(field, f'must be a string, number or boolean (stored as text), got {describe_kind(value)}')


_NAMES: dict[str, Any] = {'type': 'list', 'schema': {'type': 'string', 'empty': False}}


# Every image attribute; also the fields `defaults` may set.
ATTRIBUTES_SCHEMA: dict[str, Any] = {
    'disk_format': {'type': 'string', 'allowed': list(DISK_FORMATS)},
    'convert_to': {'nullable': True, 'check_with': _check_convert_to},
    'container_format': {'type': 'string', 'allowed': list(CONTAINER_FORMATS)},
    'min_disk': {'nullable': True, 'check_with': _check_min_disk},
    'min_ram': {'nullable': True, 'check_with': _check_size},
    'properties': {
        'type': 'dict',
        'keysrules': {'type': 'string', 'empty': False, 'check_with': _check_property_name},
        'valuesrules': {'nullable': True, 'check_with': _check_property_value},
    },
    'tags': _NAMES,
    'visibility': {'type': 'string', 'allowed': list(VISIBILITIES)},
    'protected': {'type': 'boolean'},
    'hidden': {'type': 'boolean'},
    'members': _NAMES,
    'state': {'type': 'string', 'allowed': list(ENTRY_STATES)},
}

SOURCE_SCHEMA: dict[str, Any] = {
    'type': 'dict',
    'check_with': _check_source,
    'schema': {
        'file': {'type': 'string', 'empty': False},
        'url': {'type': 'string', 'empty': False, 'check_with': _check_url},
        # Another cloud's image (clouds.yaml name, image name or id): mirrored, verified by
        # the Glance hashes at both ends instead of a checksum in the catalog.
        'cloud': {'type': 'string', 'empty': False},
        'image': {'type': 'string', 'empty': False},
    },
}


# One of them is required (the loader says so, naming all three), unless the entry is unmanaged.
def _check_selector(field: str, value: Any, error: ErrorCallback) -> None:
    # Unknown keys are reported on their own.
    if isinstance(value, Mapping) and set(value) <= set(TARGET_KEYS) and not any(value.get(k) for k in TARGET_KEYS):
        error(field, f'must name at least one of {", ".join(TARGET_KEYS)}')


# Where an entry goes, and where an override applies: a target matches when its cloud, its
# region or one of its inventory groups is listed.
TARGET_KEYS = ('clouds', 'regions', 'groups')
TARGETS_SCHEMA: dict[str, Any] = {
    'type': 'dict',
    'check_with': _check_selector,
    'schema': {key: _NAMES for key in TARGET_KEYS},
}
# What may differ per target: the stored format, who may use the image, its metadata.
OVERRIDABLE = (
    'convert_to',
    'visibility',
    'members',
    'properties',
    'tags',
    'min_disk',
    'min_ram',
    'protected',
    'hidden',
    'state',
)


def _overrides_schema(extra: Mapping[str, Any]) -> dict[str, Any]:
    rules = dict({name: ATTRIBUTES_SCHEMA[name] for name in OVERRIDABLE}, **extra)
    rules['where'] = dict(TARGETS_SCHEMA, required=True)
    return {'type': 'list', 'schema': {'type': 'dict', 'schema': rules}}


CONTENT_SCHEMA: dict[str, Any] = {
    'source': SOURCE_SCHEMA,
    'sha256': {'nullable': True, 'check_with': _check_sha256},
    'checksum': {'nullable': True, 'check_with': _check_checksum},
    'checksum_url': {'type': 'string', 'empty': False, 'check_with': _check_url},
    'id': {'nullable': True, 'check_with': _check_id},
}

IMAGE_SCHEMA: dict[str, Any] = dict(
    ATTRIBUTES_SCHEMA,
    **CONTENT_SCHEMA,
    name={'type': 'string', 'required': True, 'empty': False, 'check_with': _check_single_name},
    targets=TARGETS_SCHEMA,
    overrides=_overrides_schema({}),
)

# What a version may set for itself: its content and the metadata that differ per build.
VERSION_ATTRIBUTES = ('properties', 'tags', 'visibility', 'min_disk', 'min_ram', 'state')
VERSION_SCHEMA: dict[str, Any] = dict(
    CONTENT_SCHEMA,
    **{name: ATTRIBUTES_SCHEMA[name] for name in VERSION_ATTRIBUTES},
    version={'required': True, 'nullable': True, 'check_with': _check_version},
    released={'nullable': True, 'check_with': _check_released},
)

_DURATION_RULES: dict[str, Any] = {'nullable': True, 'check_with': _check_duration}

SERIES_SCHEMA: dict[str, Any] = dict(
    ATTRIBUTES_SCHEMA,
    series={'type': 'string', 'required': True, 'empty': False},
    name={'type': 'string', 'required': True, 'empty': False, 'check_with': _check_template},
    keep={'nullable': True, 'check_with': _check_keep},
    keep_last={'nullable': True, 'check_with': _check_keep},
    alias={'type': 'string', 'empty': False, 'check_with': _check_alias},
    update_published={'type': 'boolean'},
    retire={
        'type': 'dict',
        'schema': {
            'hide': {'type': 'boolean'},
            'deactivate_after': _DURATION_RULES,
            'delete_after': _DURATION_RULES,
        },
    },
    versions={'type': 'list', 'required': True, 'minlength': 1, 'schema': {'type': 'dict', 'schema': VERSION_SCHEMA}},
    targets=TARGETS_SCHEMA,
    overrides=_overrides_schema({'keep': {'nullable': True, 'check_with': _check_keep}}),
)

# `images` is a list of anything here: each item is validated on its own so that
# problems can name the image (or series) and its line.
CATALOG_SCHEMA: dict[str, Any] = {
    'version': {'required': True, 'nullable': True, 'check_with': _check_catalog_version},
    'defaults': {'type': 'dict', 'schema': ATTRIBUTES_SCHEMA},
    'images': {'type': 'list', 'required': True, 'minlength': 1},
}
