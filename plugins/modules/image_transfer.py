#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_transfer
short_description: Copy a Glance image from one cloud, region or project to another, streamed and verified
version_added: 0.2.0
description:
  - Copies the image O(image) of O(source_cloud) into the destination cloud (the usual connection
    options, O(cloud)). The source's download is the upload's body - nothing is written to local
    disk and memory holds a few chunks whatever the image size.
  - The bytes are hashed on the way in the source's C(os_hash_algo) and must equal the source's
    C(os_hash_value) (the last chunk is held back until they do, so bytes changed behind the source
    Glance's back never complete an upload), and the destination Glance's own C(os_hash_value) must
    equal it after the upload. A mismatch removes the destination image.
  - Carries the name (or O(name)), disk and container format, C(min_disk), C(min_ram), properties and
    tags, without Glance's read-only fields and what belongs to the source cloud (owner, ids of its
    servers and projects, C(os_glance_*), C(kernel_id) / C(ramdisk_id), which are mapped instead).
  - The destination's policy is asked before any request reaches the destination Glance, with what
    the source already tells - its size and virtual size, and format and safety of its header (read
    from the source with a Range request) - and again on the whole stream before the copy is kept.
  - Idempotent. The copy records its source (C(imagegov_source_cloud), C(imagegov_source_image),
    C(imagegov_source_hash)), but those are hints any member can edit - a copy is current only when
    the destination Glance's C(os_hash_value) equals the source's. An unchanged source is not copied
    again; a changed one is replaced the way M(imagegov.openstack.image) replaces (the old copy is
    retired, renamed and hidden, never deleted).
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.policy
  - imagegov.openstack.attributes
attributes:
  check_mode:
    support: full
    details: Reads the source image's header (one Range request) for the policy; sends only reads to the destination.
  diff_mode:
    support: full
    details: Before and after of the destination image, without fields that change by themselves.
  idempotent:
    support: full
options:
  source_cloud:
    description:
      - The cloud to copy from - a C(clouds.yaml) name or a dict of connection settings (as O(cloud)).
        Its secrets are never shown. Only O(api_timeout) of the destination's connection options applies
        to it; give a dict (a C(cloud) name with a C(region_name), for example) for anything else.
    type: raw
    required: true
  image:
    description: Name or id of the image at the source (names are matched literally; several are an error).
    type: str
    required: true
  name:
    description: Name of the copy at the destination. Default the source image's name.
    type: str
  properties:
    description:
      - Properties to set on the copy, over those carried from the source. Values are strings.
    type: dict
  tags:
    description: Tags of the copy. Default the source's tags.
    type: list
    elements: str
  visibility:
    description: Visibility of the copy. Default V(private), or V(shared) with O(members).
    type: str
    choices: [private, shared, community, public]
  kernel:
    description:
      - Name or id of the destination image to use as the copy's C(kernel_id). Without it, a source image
        with a C(kernel_id) has its kernel transferred first (under the kernel's own name) and linked.
    type: str
  ramdisk:
    description: As O(kernel), for C(ramdisk_id).
    type: str
  members:
    description:
      - Projects (names or ids, at the destination) the copy is shared with; the copy becomes
        V(shared) when it is private. Members not listed are removed. Omit to leave members alone.
    type: list
    elements: str
  import_method:
    description:
      - V(put) uploads the stream in one request; V(glance-direct) stages it and runs the destination's
        interoperable import.
      - V(glance-download) asks the destination's Glance to copy the image from the source region itself
        (Glance's interoperable import between regions of one Keystone; the destination must list it in
        C(/v2/info/import), which is checked before anything is created). No byte passes through this
        host; what the destination stored must have the source's size and hash and is judged by the policy
        before the task returns, or it is removed. The source region is O(source_cloud)'s C(region_name).
    type: str
    choices: [put, glance-direct, glance-download]
    default: put
  stores:
    description:
      - Stores of a multi-store destination Glance (C(/v2/info/stores)) to put the copy in. O(import_method=put)
        reaches one store; the import methods any number.
    type: list
    elements: str
  all_stores:
    description: Put the copy in every store of a multi-store destination Glance (an import method is needed).
    type: bool
    default: false
  on_content_change:
    description:
      - What to do when the destination's copy holds other bytes than the source (Glance's hashes differ).
        V(replace) uploads a replacement and retires the old copy; V(fail) stops with an error.
    type: str
    choices: [replace, fail]
    default: replace
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Mirror the gold image from the primary region to the secondary one
  imagegov.openstack.image_transfer:
    source_cloud: {cloud: prod, region_name: RegionOne}
    image: ubuntu-24.04
    cloud: {cloud: prod, region_name: RegionTwo}

- name: Copy an image into another cloud under a new name, shared with a project
  imagegov.openstack.image_transfer:
    source_cloud: devcloud-alpha
    image: debian-12
    cloud: devcloud2-alpha
    name: debian-12-from-primary
    members: [beta]
    properties:
      imported_from: primary
"""

RETURN = r"""
id:
  description: Id of the copy at the destination.
  returned: when the copy exists or would be created
  type: str
image:
  description: The copy as the destination Glance returns it (in check mode, the predicted image).
  returned: always
  type: dict
source:
  description: The source image - cloud, id, name, size, os_hash_algo and os_hash_value.
  returned: always
  type: dict
operations:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
transfer:
  description:
    - C(bytes_read) from the source (the header read for the policy included) and C(bytes_sent) to
      the destination; C(seconds) of the whole run.
  returned: always
  type: dict
content:
  description: Facts of the bytes streamed (sha256, size, detected_format, virtual_size, glance_hash).
  returned: when the data was streamed
  type: dict
members:
  description: Members of the copy after the run, when O(members) is given.
  returned: when O(members) is given
  type: list
  elements: dict
caller:
  description: The user, project and roles the module acted as at the destination.
  returned: always
  type: dict
policy:
  description: The destination's policy decisions (see M(imagegov.openstack.image)).
  returned: always
  type: dict
"""

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._transfer import Transfer


class ImageTransferModule(ImagegovModule):
    enforces_policy = True
    argument_spec = dict(
        source_cloud=dict(type='raw', required=True),
        image=dict(type='str', required=True),
        name=dict(type='str'),
        properties=dict(type='dict'),
        tags=dict(type='list', elements='str'),
        visibility=dict(type='str', choices=['private', 'shared', 'community', 'public']),
        kernel=dict(type='str'),
        ramdisk=dict(type='str'),
        members=dict(type='list', elements='str'),
        import_method=dict(type='str', default='put', choices=['put', 'glance-direct', 'glance-download']),
        stores=dict(type='list', elements='str'),
        all_stores=dict(type='bool', default=False),
        on_content_change=dict(type='str', default='replace', choices=['replace', 'fail']),
    )
    module_kwargs = dict(supports_check_mode=True, mutually_exclusive=[('stores', 'all_stores')])

    def run(self) -> None:
        self.exit(**Transfer(self).run())


def main() -> None:
    ImageTransferModule()()


if __name__ == '__main__':
    main()
