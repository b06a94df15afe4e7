#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_info
short_description: List OpenStack Glance images with filters
version_added: 0.1.0
description:
  - Lists the images visible to the caller that match every filter given. Filters are
    applied by Glance, and the list is read in pages of 1000 images (Glance's largest),
    not one request per image.
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.attributes
  - imagegov.openstack.attributes.INFO_MODULE
  - imagegov.openstack.policy.ACCEPTED
options:
  name:
    description: Exact image name.
    type: str
  id:
    description: Image id; the result has this image or nothing.
    type: str
  visibility:
    description:
      - V(all) lists every image the caller may see, community and shared ones included;
        without this option Glance's default list applies (community images of other
        projects and shared images not yet accepted are left out).
    type: str
    choices: [all, public, private, shared, community]
  owner:
    description: Id of the project that owns the images.
    type: str
  tags:
    description: Tags the images must all carry.
    type: list
    elements: str
  properties:
    description: Properties and the exact values the images must have (for example C(os_distro)).
    type: dict
  status:
    description: Image status.
    type: str
    choices: [queued, saving, active, killed, deleted, pending_delete, deactivated, uploading, importing]
  disk_format:
    description:
      - Disk format (every format of the image guides; see C(docs/formats.md) for what the
        collection does with each).
    type: str
    choices: [ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop]
  container_format:
    description: Container format.
    type: str
    choices: [ami, ari, aki, bare, ovf, ova, docker, compressed]
  hidden:
    description:
      - V(false) (Glance's default) lists images that are not hidden, V(true) only hidden
        ones, V(all) both.
    type: str
    choices: ['false', 'true', all]
    default: 'false'
  member_status:
    description: For shared images, the caller's membership status to list.
    type: str
    choices: [accepted, pending, rejected, all]
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Every public Ubuntu image tagged gold
  imagegov.openstack.image_info:
    cloud: devcloud-alpha
    visibility: public
    tags: [gold]
    properties:
      os_distro: ubuntu
  register: gold

- name: Images shared with this project that still wait for acceptance
  imagegov.openstack.image_info:
    cloud: devcloud-beta
    visibility: shared
    member_status: pending
"""

RETURN = r"""
images:
  description: The images, as Glance returns them (properties are top-level keys), sorted by name.
  returned: always
  type: list
  elements: dict
requests:
  description: Number of Glance list requests made (pages and hidden / visible passes).
  returned: always
  type: int
"""

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._image import property_value
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import POLICY_ACCEPTED_ARGSPEC
from ansible_collections.imagegov.openstack.plugins.module_utils.catalog.constants import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
)

FORMAT_FILTERS = ('disk_format', 'container_format')


class ImageInfoModule(ImagegovModule):
    argument_spec = dict(
        name=dict(type='str'),
        id=dict(type='str'),
        visibility=dict(type='str', choices=['all', 'public', 'private', 'shared', 'community']),
        owner=dict(type='str'),
        tags=dict(type='list', elements='str'),
        properties=dict(type='dict'),
        status=dict(
            type='str',
            choices=[
                'queued',
                'saving',
                'active',
                'killed',
                'deleted',
                'pending_delete',
                'deactivated',
                'uploading',
                'importing',
            ],
        ),
        disk_format=dict(type='str', choices=list(DISK_FORMATS)),
        container_format=dict(type='str', choices=list(CONTAINER_FORMATS)),
        hidden=dict(type='str', default='false', choices=['false', 'true', 'all']),
        member_status=dict(type='str', choices=['accepted', 'pending', 'rejected', 'all']),
        **POLICY_ACCEPTED_ARGSPEC,
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self) -> None:
        p = self.params
        filters = [
            (key, p[key])
            for key in ('name', 'id', 'visibility', 'owner', 'status', 'member_status', *FORMAT_FILTERS)
            if p[key] is not None
        ]
        filters += [('tag', tag) for tag in p['tags'] or []]
        filters += [(key, property_value(key, value)) for key, value in (p['properties'] or {}).items()]
        images = self.glance.all_images(filters, hidden=p['hidden'])
        self.exit(
            changed=False,
            images=sorted(images, key=lambda i: (i.get('name') or '', i['id'])),
            requests=self.glance.request_count,
        )


def main() -> None:
    ImageInfoModule()()


if __name__ == '__main__':
    main()
