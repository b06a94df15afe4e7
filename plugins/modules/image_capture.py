#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_capture
short_description: Capture an OpenStack server as a Glance image, judged by the policy before it is visible
version_added: 0.2.0
description:
  - Makes an image of a Nova server (Nova's createImage), asking the policy (see O(policy)) twice. Before
    any request that changes something, as action C(capture), with the server as Nova reports it in the
    request's C(server) (id, name, status, project_id, user_id, image_id, volume_backed) and the image as
    it is meant to be (O(name), O(visibility), O(properties)); the default policy refuses a server of
    another project. And on the result, as action C(upload), with what Glance stored (its own size,
    virtual size and hash, and the format and safety checks read from the stored data's header), never
    from properties a project member could have set.
  - The capture is made under a temporary name (V(NAME.capturing-STAMP)), marked with the server id and
    hidden (os_hidden) and private, until the policy has judged it; it gets O(name), O(visibility) and
    O(properties) only once it passed, and is deleted when it does not. Between Nova's createImage and
    the module hiding it (one request later) the new image is listed in the server's own project, queued
    and without data; until the verdict (one ranged read of its header) a member of that project who
    knows its id could boot it. Both only expose the server's bytes to the project that owns the server.
  - Waits for the server's task and the image (and for a volume-backed server, Cinder's snapshot and
    volume). A server or image that goes to an error state, or a capture not done within O(timeout), is
    an error that says so, and the image is deleted - except a pending capture of another run (or one a
    O(wait=false) run left) that is still being made at the timeout (Nova snapshotting the server, or
    Cinder uploading into it), which is left pending, hidden and private, for the run that finishes it.
    A pending image that nothing makes (a dead run's, or one planted with the marks) is deleted.
    With O(wait=false) the module returns once the capture started; the image stays hidden, private
    and under its temporary name until a later run with O(wait=true) judges and publishes (or deletes)
    it.
  - Idempotent by name and server. An image named O(name) in the caller's project that was captured from
    this server (property C(imagegov_captured_from)) is kept as it is, and nothing is captured; O(force)
    captures anew and renames and hides the earlier capture (asked as C(retire)), or give a new O(name).
    An image named O(name) that was not captured from this server is an error, also one that appears
    while the capture runs (the capture is then removed, not published as a second image of that name).
    A capture left pending by an interrupted run, or one another run is making, is finished (judged, then
    published or deleted) instead of capturing again.
  - A volume-backed server is captured through Cinder, so the image holds the bytes (Nova's own
    createImage would make a zero-byte image pointing at volume snapshots). The root volume (the
    bootable volume on the first device) is snapshotted, a volume is created from that snapshot, and
    that volume is uploaded to Glance (Cinder's os-volume_upload_image, as qcow2 unless the volume was
    made from a raw image); the snapshot and the volume are deleted afterwards, also when the capture
    fails. Those Cinder still uploads from when a O(wait=false) run ends are deleted by the run that
    finishes the capture.
  - A capture inherits the properties of the server's image (Nova and Cinder copy them). The
    openstacksdk checksums of that image's file (C(owner_specified.openstack.sha256), C(md5)) and this
    collection's own bookkeeping properties describe other bytes and are removed; the policy judges the
    image without them.
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.policy
  - imagegov.openstack.attributes
attributes:
  check_mode:
    support: full
    details:
      - Looks the server and earlier captures up and asks the policy about the capture; captures nothing.
      - The verdict on the result can only be given on a real capture.
  diff_mode:
    support: full
    details: Before and after of the image captured under O(name) from this server.
  idempotent:
    support: full
    details: An image of this name captured from this server is kept; O(force) captures anew.
options:
  server:
    description:
      - Name or id of the server, in the caller's project. A name is matched exactly.
    type: str
    required: true
  name:
    description:
      - Name of the new image.
    type: str
    required: true
  visibility:
    description:
      - Visibility the image gets once the policy passed it. Until then it is V(private) and hidden.
    type: str
    choices: [private, shared, community, public]
    default: private
  properties:
    description:
      - Properties the image gets once the policy passed it, on top of those Nova copies from the
        server's image. Values are strings (numbers and booleans are turned into strings).
      - Keys starting with C(imagegov_) are this collection's bookkeeping and are refused.
    type: dict
    default: {}
  force:
    description:
      - Capture anew even if an image named O(name) was captured from this server; the earlier one is
        renamed V(NAME.replaced-STAMP) and hidden (servers that use it keep it).
    type: bool
    default: false
notes:
  - Needs Nova's compute API (microversion 2.45), and Cinder's block-storage API v3 for volume-backed
    servers.
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Capture a server as a private image
  imagegov.openstack.image_capture:
    cloud: devcloud-alpha
    server: web-01
    name: web-01-golden
    properties:
      os_distro: ubuntu
    timeout: 600

- name: Capture it again, replacing the earlier capture of that name
  imagegov.openstack.image_capture:
    cloud: devcloud-alpha
    server: web-01
    name: web-01-golden
    force: true
"""

RETURN = r"""
image:
  description: The captured image as Glance has it (in check mode, as it would be).
  returned: when an image exists or would be made
  type: dict
  contains:
    id:
      description: Id of the image.
      type: str
    name:
      description: Name of the image.
      type: str
    status:
      description: Glance's status, V(active) once the capture is done.
      type: str
    visibility:
      description: Visibility of the image.
      type: str
    os_hidden:
      description: Whether the image is hidden from listings (V(true) while it waits for its verdict).
      type: bool
    size:
      description: Stored size in bytes, as Glance computed it.
      type: int
    virtual_size:
      description: Virtual (disk) size in bytes, as Glance computed it.
      type: int
    os_hash_algo:
      description: Algorithm of RV(image.os_hash_value).
      type: str
    os_hash_value:
      description: Glance's hash of the stored data.
      type: str
    imagegov_captured_from:
      description: Id of the server the image was captured from.
      type: str
server:
  description: The server as Nova reported it, as the policy saw it.
  returned: when the server was found
  type: dict
content:
  description:
    - What the policy judged the result on, from what Glance stored. C(detected_format),
      C(safety_failures) from the stored data's header; C(size), C(virtual_size) and the hash from Glance.
  returned: when a capture was judged
  type: dict
pending:
  description: The capture was started but not judged yet (O(wait=false)); it is still hidden.
  returned: always
  type: bool
operations:
  description: What was done (or, in check mode, would be done), in order, including rollbacks.
  returned: always
  type: list
  elements: str
requests:
  description: Number of requests sent to Glance, Nova and Cinder.
  returned: always
  type: int
caller:
  description: The user, project and roles the module acted as.
  returned: always
  type: dict
policy:
  description: The policy decisions, C(capture) before and C(upload) on the result.
  returned: always
  type: dict
"""

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._capture import (
    Capture,
    CaptureRequest,
    Cinder,
    Nova,
    image_summary,
    user_properties,
)


class ImageCaptureModule(ImagegovModule):
    enforces_policy = True
    argument_spec = dict(
        server=dict(type='str', required=True),
        name=dict(type='str', required=True),
        visibility=dict(type='str', default='private', choices=['private', 'shared', 'community', 'public']),
        properties=dict(type='dict', default={}),
        force=dict(type='bool', default=False),
    )
    module_kwargs = dict(supports_check_mode=True)

    def cinder(self) -> Cinder:
        return Cinder(self.conn)

    def run(self) -> None:
        p = self.params
        self.result.update(operations=[], caller=self.caller, pending=False)
        request = CaptureRequest(p['server'], p['name'], p['visibility'], user_properties(p['properties']), p['force'])
        nova = Nova(self.conn)
        capture = Capture(
            self.glance, nova, self.cinder, self.gate, self.caller, self.check_mode, p['wait'], p['timeout']
        )
        self.result['operations'] = capture.outcome.operations
        try:
            outcome = capture.run(request)
        finally:
            self.result['requests'] = self.glance.request_count + nova.request_count + capture.cinder_requests
            self.result['server'] = capture.outcome.server
        image = image_summary(outcome.image)
        self.exit(
            changed=outcome.changed,
            image=image,
            server=outcome.server,
            content=outcome.content,
            pending=outcome.pending,
            operations=outcome.operations,
            caller=self.caller,
            requests=self.result['requests'],
            diff={'before': None if outcome.changed else image, 'after': image},
        )


def main() -> None:
    ImageCaptureModule()()


if __name__ == '__main__':
    main()
