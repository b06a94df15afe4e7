#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_usage_info
short_description: Which servers, images and volumes use an OpenStack Glance image
version_added: 0.1.0
description:
  - Lists the Nova servers booted from an image (with name, id, project and status), the
    images that name it as C(kernel_id) or C(ramdisk_id), and the Cinder volumes created
    from it (C(volume_image_metadata)), attached or not; a server booted from a volume is
    found through its root volume, which names the server in C(attached_to).
  - What could not be checked is listed in RV(not_checked) with the reason (no compute
    endpoint, servers, images or volumes of other projects that this account may not list,
    a refused listing) and is never reported as unused. RV(in_use) is V(true), V(false), or
    V(null) when servers, images or volumes could not all be checked. A cloud without a
    block-storage endpoint has no volumes (an empty list).
  - The cost does not grow with the number of servers or projects; RV(requests) counts
    the API requests made. Volumes are found with Cinder's image filter in one request
    (pages of 1000) where the account may use it (an admin always; others where the
    cloud's C(resource_filters.json) allows C(glance_metadata) for volumes); otherwise the
    account's volumes are listed in pages of 1000 and matched, and RV(volumes_lookup) says
    V(listed).
  - This is the lookup the policy's C(delete_protection) rules use when an image is deleted.
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.attributes
  - imagegov.openstack.usage
  - imagegov.openstack.attributes.INFO_MODULE
  - imagegov.openstack.policy.ACCEPTED
options:
  image:
    description:
      - Name or id of the image. A name is looked up among all images visible to the
        caller; when several share it, give the id.
    type: str
    required: true
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Who still uses the old gold image?
  imagegov.openstack.image_usage_info:
    cloud: devcloud-alpha
    usage_cloud: devcloud-admin
    image: ubuntu-22.04
  register: usage

- name: Only delete what nobody uses
  imagegov.openstack.image:
    cloud: devcloud-alpha
    name: ubuntu-22.04
    state: absent
  when: usage.in_use is false
"""

RETURN = r"""
image:
  description: Id, name, visibility and owner of the image.
  returned: always
  type: dict
servers:
  description: Servers booted from the image (id, name, project_id, status).
  returned: when servers could be listed
  type: list
  elements: dict
images:
  description: Images naming it as kernel or ramdisk (id, name, as).
  returned: always
  type: list
  elements: dict
volumes:
  description:
    - Cinder volumes created from the image, attached or not (id, name, project_id, status,
      attached_to as a list of server ids). Empty when the cloud has no block-storage
      endpoint.
  returned: when volumes could be listed
  type: list
  elements: dict
volumes_lookup:
  description:
    - How volumes were found. V(filtered) when Cinder filtered them by image (cost independent
      of the number of volumes), V(listed) when the account may not use that filter and its
      volumes were listed and matched, V(null) when there was no lookup.
  returned: always
  type: str
not_checked:
  description: What could not be looked at, each with the resource and the reason.
  returned: always
  type: list
  elements: dict
in_use:
  description: V(true) when a server, image or volume uses it, V(false) when servers, images
    and volumes were all checked and none does, V(null) when nothing was found but not
    everything could be checked.
  returned: always
  type: bool
asked_as:
  description: The account that asked Nova, Glance and Cinder (user, project, admin).
  returned: always
  type: dict
requests:
  description: API requests made for the usage lookup.
  returned: always
  type: int
"""

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._image import ImageRequestError
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import POLICY_ACCEPTED_ARGSPEC
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import USAGE_CLOUD_ARGSPEC, blocking_usage


class ImageUsageInfoModule(ImagegovModule):
    argument_spec = dict(
        image=dict(type='str', required=True),
        **POLICY_ACCEPTED_ARGSPEC,
        **USAGE_CLOUD_ARGSPEC,
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self) -> None:
        image = self.find(self.params['image'])
        lookup = self.usage_lookup()
        usage = lookup(image)
        users = usage.get('servers', []) + usage['images'] + usage.get('volumes', [])
        in_use = True if users else (None if blocking_usage(usage) else False)
        self.exit(
            changed=False,
            in_use=in_use,
            asked_as=lookup.asked_as,
            requests=lookup.request_count,
            volumes_lookup=lookup.volumes_lookup,
            image={k: image.get(k) for k in ('id', 'name', 'visibility', 'owner', 'protected')},
            **usage,
        )

    def find(self, name_or_id: str) -> dict:
        image = self.glance.find(name_or_id, 'Option image', 'Give its id.')
        if image is None:
            raise ImageRequestError(
                f'Option image: no image {name_or_id!r} (by id or name) is visible. Check the name, or give its id.'
            )
        return image


def main() -> None:
    ImageUsageInfoModule()()


if __name__ == '__main__':
    main()
