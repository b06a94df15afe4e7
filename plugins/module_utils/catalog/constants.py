# PRIVATE to the collection: not a public API.
"""Vocabulary of the catalog format: allowed values, defaults, reserved property names."""

from __future__ import annotations

CATALOG_VERSIONS = (1,)

DISK_FORMATS = ('ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop')
# The formats qemu-img conversion writes: what convert_to may name (image module, catalogs,
# the allowed_formats rule); a catalog's mapping of cloud names to these uses the key below
# for every other cloud.
CONVERSION_TARGETS = ('qcow2', 'raw', 'vmdk')
CONVERT_TO_OTHER_CLOUDS = 'default'
CONTAINER_FORMATS = ('ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed')
VISIBILITIES = ('private', 'shared', 'community', 'public')

DEFAULT_CONTAINER_FORMAT = 'bare'
DEFAULT_VISIBILITY = 'private'
DEFAULT_KEEP = 1
DEFAULT_HIDE = True

# desired_state of a catalog image (see docs/catalog.md)
STATE_ACTIVE = 'active'  # visible and active: single images, the newest `keep` builds of a series
STATE_HIDDEN = 'hidden'  # an older build with retire.hide: os_hidden, still active
STATE_RETIRED = 'retired'  # an older build with retire.hide false: left visible
DESIRED_STATES = (STATE_ACTIVE, STATE_HIDDEN, STATE_RETIRED)

# `state` of a catalog entry (image, series or version)
ENTRY_PRESENT = 'present'
ENTRY_DEACTIVATED = 'deactivated'
ENTRY_UNMANAGED = 'unmanaged'  # known, never uploaded, changed or pruned
ENTRY_STATES = (ENTRY_PRESENT, ENTRY_DEACTIVATED, ENTRY_UNMANAGED)

CHECKSUM_ALGORITHMS = {'sha256': 64, 'sha512': 128}
MIN_DISK_AUTO = 'auto'

DURATION_UNITS = {'h': 3600, 'd': 86400, 'w': 7 * 86400}

VERSION_PLACEHOLDER = '{version}'

# Property names Glance or this collection own; a catalog may not set them as properties.
GLANCE_ATTRIBUTES = frozenset(
    (
        'checksum',
        'container_format',
        'created_at',
        'direct_url',
        'disk_format',
        'file',
        'id',
        'locations',
        'min_disk',
        'min_ram',
        'name',
        'os_hash_algo',
        'os_hash_value',
        'os_hidden',
        'owner',
        'protected',
        'schema',
        'self',
        'size',
        'status',
        'stores',
        'tags',
        'updated_at',
        'virtual_size',
        'visibility',
    )
)
RESERVED_PROPERTY_PREFIXES = (
    ('os_glance', "Glance's own os_glance namespace"),
    ('owner_specified.openstack.', 'set by the collection from sha256'),
)
RESERVED_PROPERTIES = {
    'imagegov_replaced_by': 'set by the collection on replaced images',
}
