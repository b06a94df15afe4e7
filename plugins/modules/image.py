#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image
short_description: Manage an OpenStack Glance image, its data and its metadata
version_added: 0.1.0
description:
  - Creates, updates, deactivates and deletes one Glance image, idempotently.
  - Uploads stream from O(filename) or O(url) in one read that computes the sha256,
    detects the real format with oslo.utils' format inspector and feeds Glance; memory
    stays flat whatever the image size.
  - The source's sha256 is recorded on the image in the
    C(owner_specified.openstack.sha256) property (openstacksdk's convention), once it is
    verified. That property is only a hint, since any project member can edit it; an image is
    taken as holding the source's bytes only when Glance's own C(os_hash_value) equals a
    digest of the source in Glance's algorithm that this host computed itself (kept in a
    digest cache on the host the module runs on, C(IMAGEGOV_CACHE_DIR), default
    C(~/.cache/imagegov)) or that O(checksum) gives as sha512. The same bytes are never
    uploaded twice. Different bytes for an existing image never make a silent duplicate
    (see O(on_content_change)).
  - Concurrent runs of the same task converge on one image - the n-th image created
    under a name in a project gets an id derived from the project, the name and n, so
    Glance's own id uniqueness lets one run create it and the others carry on with it.
    Several images with the name (left by runs before this, or by a run killed during a
    replace) are settled - identical data (by Glance's hash) keeps the oldest and deletes
    the others unless they are in use; otherwise the image holding the wanted data stays
    and the others are retired, never deleted.
  - Metadata changes go out as one JSON-patch request; C(changed) is true only when
    something changed.
  - An upload that fails, times out or does not match O(checksum) leaves nothing behind;
    the record it created is removed and a retired original is restored.
  - The image is looked up by O(id), or by O(name) among the images owned by O(owner)
    (default the caller's project), hidden ones included. Names are matched literally, so
    names with colons or such as C(in:web) are safe.
  - Every change is first put to the policy (see O(policy)). What the data is (size,
    virtual size, format, unsafe features) is read from its header before any request
    reaches Glance, so a refused image is never uploaded; after the upload the facts of
    the whole read are checked again, and what Glance stored (C(size), C(os_hash_value))
    must equal what was read, or the upload is removed. Where the module cannot see the
    bytes first (V(web-download), or Glance's import plugins rewriting them), what Glance
    stored is read back and judged before the task returns, and removed if refused.
  - Every state change is its own policy action - create, upload, update, publish,
    narrow (fewer projects may use the image), protect, unprotect, retire (renaming and
    hiding a replaced image), deactivate, reactivate and delete. Deleting and narrowing
    ask which servers, images and volumes use the image; what cannot be checked counts as in use,
    and an image shared or published before (recorded in C(imagegov_shared_since)) counts
    as possibly used by other projects.
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.policy
  - imagegov.openstack.attributes
  - imagegov.openstack.usage
attributes:
  check_mode:
    support: full
    details: Reads the source to report its format and sha256; sends nothing to Glance.
  diff_mode:
    support: full
    details: Before and after of the image, without fields that change by themselves.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the image. Required unless O(id) is given; with O(id), renames the image.
    type: str
  id:
    description:
      - Id of the image. Use it when several images share a name, or to create an image
        with a chosen id.
    type: str
  state:
    description:
      - V(present) makes sure the image exists and is active (a deactivated image is
        reactivated); V(deactivated) makes sure it exists and is deactivated;
        V(absent) deletes it.
    type: str
    choices: [present, absent, deactivated]
    default: present
  filename:
    description: Local file, on the host the task runs on, to upload as the image's data.
    type: path
  url:
    description:
      - HTTP(S) URL of the image's data. With O(import_method=put) or
        O(import_method=glance-direct) the module reads it and streams it to Glance;
        with O(import_method=web-download) Glance fetches it itself.
    type: str
  import_method:
    description:
      - How the data reaches Glance. V(put) uploads in one request; V(glance-direct)
        stages the data and runs Glance's interoperable import (its import plugins run);
        V(web-download) asks Glance to download O(url) itself, and then O(checksum) is
        required. The module reads the URL's header first when it can (a size or format the
        policy refuses is refused before anything is created), and reads back what Glance
        stored before it returns.
    type: str
    choices: [put, glance-direct, web-download]
    default: put
  convert_to:
    description:
      - Convert the source to this format before it is uploaded (V(raw) for a Ceph backend that
        clones raw images, V(qcow2) for file backends, V(vmdk) (streamOptimized) for VMware).
        Sources may be raw, qcow2, vmdk (monolithicSparse, streamOptimized, or a flat
        descriptor naming files in its own directory), vdi, vhd, vhdx, and any of them
        compressed with gzip, xz or zstd. An ISO is never converted; a source already in the
        target format is uploaded as it is.
      - The source is judged by oslo.utils' format inspector and its safety checks before
        C(qemu-img) ever opens it (a backing file, a data file or an extent naming a host file
        is refused); C(qemu-img) runs with an explicit C(-f) and C(--force-share); the output
        is inspected again and must keep the source's virtual size.
      - The policy is asked on what would be stored - first from the source's header (a
        virtual size over the limit is refused before anything is read), then from the whole
        source, and again on the converted output before it is sent.
      - The image records the source's sha256 (C(imagegov_source_sha256)) and format
        (C(imagegov_source_format)); an unchanged source is neither converted nor uploaded
        again. O(checksum) then names the source's sha256.
      - Without it, a policy's C(allowed_formats) rule with C(convert_to) converts a source
        whose format it does not allow instead of refusing it.
    type: str
    choices: [qcow2, raw, vmdk]
  ova_disk:
    description:
      - An O(filename) ending in C(.ova) or C(.ovf) is unpacked (unless O(container_format=ova)
        stores the package as it is) - the package's disk is extracted (only that member; no other
        member is written; links, devices and names with paths are refused), checked against
        the package's manifest when there is one, inspected and converted like any source
        (O(convert_to), default V(qcow2)). The OVF's facts become properties Nova acts on
        (C(os_type), C(os_distro), C(hw_firmware_type), C(hw_disk_bus), C(hw_vif_model), ...)
        and O(min_ram); the task's own O(properties) and O(min_ram) win. The result's
        C(package) key lists what was read and what was not mapped, and why.
      - A package with several disks is refused unless this names one, by file name or disk id.
    type: str
  scratch_dir:
    description:
      - Directory for the decompressed source and the converted output (a private
        directory is made inside it and removed on success, failure and interruption).
        Needs room for the converted image's allocated bytes. Default the system's
        temporary directory.
    type: path
  checksum:
    description:
      - Expected digest of the source - sha256 or sha512, as hex (as sha256sum / sha512sum
        print it) optionally prefixed C(sha256:) or C(sha512:). An upload whose bytes do not
        match is removed.
      - A sha512 (Glance's own algorithm) proves an existing image unchanged from Glance's
        C(os_hash_value) alone, so the source is not read at all; a sha256 does so once this
        host has read those bytes before (its digest cache).
    type: str
  on_content_change:
    description:
      - What to do when the source's bytes differ from the image's, or a change of
        O(disk_format) / O(container_format) needs new data.
      - V(replace) uploads a replacement image with the same name and metadata, then
        retires the original (kept, so servers booted from it still work), renamed to
        C(<name>.replaced-<UTC time>), hidden, with an C(imagegov_replaced_by) property
        naming its replacement.
      - V(fail) stops with an error that names both checksums, changing nothing.
    type: str
    choices: [replace, fail]
    default: replace
  disk_format:
    description:
      - Disk format. When creating an image from O(filename) or O(url) without it, the
        format detected in the data is used.
    type: str
    choices: [ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop]
  container_format:
    description: Container format; V(bare) when creating an image without it.
    type: str
    choices: [ami, ari, aki, bare, ovf, ova, docker, compressed]
  min_disk:
    description: Minimum disk size in GiB a server needs to boot the image.
    type: int
  min_ram:
    description: Minimum RAM in MiB a server needs to boot the image.
    type: int
  properties:
    description:
      - Extra properties (C(os_distro), C(hw_disk_bus), ...). Values are stored as strings;
        booleans become V(true) / V(false).
      - Image attributes that have an option of their own (O(visibility), O(protected), ...)
        are refused here, and so is the collection's own bookkeeping (C(imagegov_*)) except
        the build records C(imagegov_base_sha256) and C(imagegov_build_hash) that the
        P(imagegov.openstack.image_build#role) role sets.
    type: dict
  purge_properties:
    description:
      - Remove properties the image has but O(properties) does not list. Glance's own
        C(os_glance*) properties and the recorded sha256 are kept.
    type: bool
    default: false
  tags:
    description: Tags of the image.
    type: list
    elements: str
  purge_tags:
    description:
      - Remove tags not listed in O(tags). O(tags=[]) with O(purge_tags=true) removes all.
    type: bool
    default: false
  visibility:
    description:
      - Who sees the image. Glance makes new images V(shared) unless told otherwise, and
        by default only admins may make an image V(public).
    type: str
    choices: [private, shared, community, public]
  protected:
    description: Protect the image from deletion.
    type: bool
  protect_in_use:
    description:
      - Keep Glance's own C(protected) flag in step with usage, so that even a plain CLI
        delete is refused while servers, other images or volumes created from it (attached
        or not) use the image. The image is
        protected while it is used (or while that cannot be checked), and the protection
        this option set is lifted once nothing uses it.
      - A protection set this way is marked with the C(imagegov_protected_while_used)
        property; O(state=absent) lifts it itself when nothing uses the image.
      - Usage is looked up as the account of O(usage_cloud), or the caller.
    type: bool
    default: false
  hidden:
    description: Hide the image from default image lists (Glance's C(os_hidden)).
    type: bool
  kernel:
    description: Name or id of the kernel image (sets C(kernel_id)).
    type: str
  ramdisk:
    description: Name or id of the ramdisk image (sets C(ramdisk_id)).
    type: str
  owner:
    description:
      - Project (name or id) that owns the image, and the project in which O(name) is
        looked up. Changing the owner of an image needs the admin role.
    type: str
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Upload a gold image, recording its sha256; re-runs change nothing
  imagegov.openstack.image:
    cloud: devcloud-alpha
    name: ubuntu-24.04
    filename: /srv/images/ubuntu-24.04.qcow2
    disk_format: qcow2
    min_disk: 10
    properties:
      os_distro: ubuntu
      os_version: "24.04"
      architecture: x86_64
      hw_qemu_guest_agent: true
    tags: [gold, lts]

- name: Same image; skip reading the file when its sha256 is already recorded
  imagegov.openstack.image:
    cloud: devcloud-alpha
    name: ubuntu-24.04
    filename: /srv/images/ubuntu-24.04.qcow2
    checksum: "{{ lookup('file', '/srv/images/ubuntu-24.04.qcow2.sha256') }}"

- name: Let Glance download the data itself
  imagegov.openstack.image:
    cloud: devcloud-admin
    name: cirros
    url: https://images.example.org/cirros.qcow2
    import_method: web-download
    checksum: 8b6e8fe6f93c1a8d6e3d8f2b7e7f0f0e5c3b7c2e1a9d8c7b6a5f4e3d2c1b0a99

- name: Drop every tag and every property not listed
  imagegov.openstack.image:
    cloud: devcloud-alpha
    name: ubuntu-24.04
    tags: []
    purge_tags: true
    properties: {os_distro: ubuntu}
    purge_properties: true

- name: Take an image out of service without deleting it
  imagegov.openstack.image:
    cloud: devcloud-admin
    name: ubuntu-22.04
    state: deactivated
"""

RETURN = r"""
id:
  description: Id of the image (after a replacement, the new image's id).
  returned: when the image exists or would be created
  type: str
image:
  description:
    - The image as Glance returns it (properties are top-level keys). In check mode, the
      predicted image. Empty after deletion.
  returned: always
  type: dict
operations:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
  sample: ["create 'ubuntu-24.04'", "upload (put) from filename '/srv/ubuntu.qcow2'"]
usage:
  description: Servers, images and volumes using the image, and what could not be checked.
  returned: with O(protect_in_use)
  type: dict
content:
  description: Facts about the source's bytes when they were read.
  returned: when the source was read or a checksum was used
  type: dict
  contains:
    sha256:
      description: sha256 of the bytes.
      type: str
    size:
      description: Number of bytes read.
      type: int
    detected_format:
      description: Format detected by oslo.utils' format inspector (V(raw) when none matched).
      type: str
    virtual_size:
      description: Size of the disk the image describes, in bytes.
      type: int
    safety_failures:
      description: Failed safety checks of the format inspector (backing file, data file, ...).
      type: list
      elements: dict
    boot_file:
      description:
        - V(kernel) or V(ramdisk) when the bytes' own header proves one (a kernel's boot header,
          an uncompressed cpio), else null. The policy judges an V(aki) kernel by it, not as a disk.
      type: str
caller:
  description: The user, project and roles the module acted as.
  returned: always
  type: dict
policy:
  description:
    - The policy decisions, one per action asked about (C(create), C(update), C(publish),
      C(upload), C(deactivate), C(delete)), with each violation's rule, severity, mode,
      message, path, expected and found values and any exception that waived it.
  returned: always
  type: dict
  contains:
    allowed:
      description: Whether every action was allowed.
      type: bool
    decisions:
      description: The decisions, in the order they were made.
      type: list
      elements: dict
"""

import os
from typing import Any

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._content import (
    Source,
    SourceError,
    glance_disk_format,
    prescan,
    unsupported_format_message,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._converting import (
    DEFAULT_PACKAGE_TARGET,
    ConvertingSource,
    Package,
    compression_of,
    conversion_target,
    is_package,
    source_sha256,
    stored_header,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache, parse_checksum
from ansible_collections.imagegov.openstack.plugins.module_utils._image import (
    ContentRequest,
    ImageReconciler,
    ImageRequestError,
    desired_image,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._redact import redact_url
from ansible_collections.imagegov.openstack.plugins.module_utils._state import make_diff, simulated_new_image
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import USAGE_CLOUD_ARGSPEC


class ImageModule(ImagegovModule):
    enforces_policy = True
    argument_spec = dict(
        name=dict(type='str'),
        id=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent', 'deactivated']),
        filename=dict(type='path'),
        url=dict(type='str'),
        import_method=dict(type='str', default='put', choices=['put', 'glance-direct', 'web-download']),
        convert_to=dict(type='str', choices=['qcow2', 'raw', 'vmdk']),
        scratch_dir=dict(type='path'),
        ova_disk=dict(type='str'),
        checksum=dict(type='str'),
        on_content_change=dict(type='str', default='replace', choices=['replace', 'fail']),
        disk_format=dict(
            type='str', choices=['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']
        ),
        container_format=dict(type='str', choices=['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed']),
        min_disk=dict(type='int'),
        min_ram=dict(type='int'),
        properties=dict(type='dict'),
        purge_properties=dict(type='bool', default=False),
        tags=dict(type='list', elements='str'),
        purge_tags=dict(type='bool', default=False),
        visibility=dict(type='str', choices=['private', 'shared', 'community', 'public']),
        protected=dict(type='bool'),
        hidden=dict(type='bool'),
        protect_in_use=dict(type='bool', default=False),
        **USAGE_CLOUD_ARGSPEC,
        kernel=dict(type='str'),
        ramdisk=dict(type='str'),
        owner=dict(type='str'),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        required_one_of=[('name', 'id')],
        mutually_exclusive=[('filename', 'url'), ('protected', 'protect_in_use'), ('convert_to', 'disk_format')],
        required_if=[('import_method', 'web-download', ('url', 'checksum'))],
    )

    def run(self) -> None:
        p = self.params
        source = Source(p['filename'], p['url'], p['api_timeout']) if (p['filename'] or p['url']) else None
        package = None
        # Scratch space (an OVA's disk, a download, a conversion) is removed however the run ends.
        self.cleanup: list = []
        if source and p['state'] != 'absent' and is_package(source, p['container_format']):
            source.check()
            package = Package(source, p['scratch_dir'], p['ova_disk'])
            self.cleanup.append(package.close)
            source = package.source
            p.update(
                properties=package.properties(p['properties']),
                min_ram=p['min_ram'] if p['min_ram'] is not None else package.min_ram,
                convert_to=p['convert_to'] or DEFAULT_PACKAGE_TARGET,
            )
        try:
            self.reconcile(source, package)
        finally:
            for close in reversed(self.cleanup):
                close()

    def reconcile(self, source: Source | None, package: Package | None) -> None:
        p = self.params
        expected = parse_checksum(p['checksum'])
        facts = self.read_header(source) if source and p['state'] != 'absent' else None
        detected = (facts or {}).get('detected_format')
        if detected and not p['disk_format'] and glance_disk_format(detected) is None:
            raise ImageRequestError(
                unsupported_format_message(detected, source.label) + ' Nothing was sent to the cloud.'
            )
        owner_id = self.resolve_project(p['owner']) if p['owner'] else None
        data_source = describe_source(source)
        digests = DigestCache()
        target = None
        if source and p['state'] != 'absent' and p['import_method'] != 'web-download':
            target, unconverted = conversion_target(
                p['convert_to'], facts, compression_of(source), self.gate.conversion_for
            )
            if unconverted and p['convert_to']:
                self.ansible.warn(f'Option convert_to: {unconverted}.')
        if target:
            p['disk_format'] = target
            source = ConvertingSource(
                source, target, p['scratch_dir'], self.run_qemu_img, digests, expected_sha256=source_sha256(expected)
            )
            self.cleanup.append(source.close)
            facts = self.judge_conversion(source, stored_header(facts, target), desired_image(p, owner_id, None, None))
        elif p['state'] != 'absent':
            # Asked before the first Glance request: what the task wants must be allowed.
            self.gate.check(
                'create',
                simulated_new_image(desired_image(p, owner_id, None, None)),
                None,
                facts,
                data_source=data_source,
            )
        owner = owner_id or self.caller['project_id']
        if p['id']:
            found = [image for image in [self.glance.live_image(p['id'])] if image]
        else:
            found = self.glance.images_named(p['name'], owner=owner)
        reconciler = ImageReconciler(
            self.glance, self.caller['project_id'], self.check_mode, p['wait'], p['timeout'], self.gate, digests
        )
        self.result['operations'] = reconciler.outcome.operations
        if p['state'] == 'absent':
            outcome = reconciler.absent(found, self.usage_of)
        else:
            desired = desired_image(
                p, owner_id, self.find_related(p['kernel'], 'kernel'), self.find_related(p['ramdisk'], 'ramdisk')
            )
            if not found:
                desired.attributes.update(id=p['id'], container_format=p['container_format'] or 'bare')
            content = ContentRequest(source, p['import_method'], expected, p['on_content_change'], facts, data_source)
            if package is not None:
                desired.properties.update(package.bookkeeping())
            if target:
                content.expected = {}
                if found:  # the source's sha256 decides whether anything is to do
                    desired.properties.update(source.properties())
                    content.known_sha256 = source.known_output_sha256()
            outcome = reconciler.present(found, desired, content, p['state'] == 'deactivated')
            if p['protect_in_use'] and (outcome.after or {}).get('id'):
                outcome = reconciler.protect_while_used(outcome.after, self.usage_of)
        image = outcome.after or {}
        result = dict(
            changed=outcome.changed,
            image=image,
            operations=outcome.operations,
            caller=self.caller,
            diff=make_diff(outcome.before, outcome.after),
        )
        if image.get('id'):
            result['id'] = image['id']
        if outcome.content or target:
            result['content'] = dict(outcome.content or {}, **({'source': source.describe()} if target else {}))
        if package is not None:
            result['package'] = package.facts(result.get('content', {}).get('virtual_size'))
        if outcome.usage:
            result['usage'] = outcome.usage
        self.exit(**result)

    def judge_conversion(self, source: ConvertingSource, header: dict, desired: Any) -> dict:
        """Ask the policy about what conversion would store: first on the header (a 30 GiB
        virtual disk is refused before the source is read), then on the whole source, and
        again on the output before a byte of it is sent."""
        source.check()
        data_source = describe_source(source.given)
        self.gate.check('create', simulated_new_image(desired), None, header, data_source=data_source)
        source.judge = lambda action, facts: self.gate.check(
            action, simulated_new_image(desired), None, facts, data_source=data_source
        )
        return source.judge_source()

    def read_header(self, source: Source) -> dict | None:
        """The source's header facts, before any Glance request. Glance fetches a web-download
        itself, possibly from where this host cannot: then its facts are judged afterwards."""
        if self.params['import_method'] != 'web-download':
            source.check()
            return prescan(source)
        try:
            return prescan(source)
        except SourceError as exc:
            self.ansible.warn(f'{exc} Glance downloads it itself; what it stores is judged before this task returns.')
            return None

    def find_related(self, name_or_id: str | None, option: str) -> str | None:
        if not name_or_id:
            return None
        image = self.glance.find(name_or_id, f'Option {option}', 'Give its id instead.')
        if image is None:
            raise ImageRequestError(
                f'Option {option}: no image {name_or_id!r} (by id or name) is visible. Check the name, or give its id.'
            )
        return image['id']


def describe_source(source: Source | None) -> dict | None:
    """The data's origin as the policy sees it (allowed_sources rules): never credentials."""
    if source is None:
        return None
    if source.filename:
        return {'kind': 'file', 'path': os.path.abspath(source.filename)}
    return {'kind': 'url', 'url': redact_url(source.url)}


def main() -> None:
    ImageModule()()


if __name__ == '__main__':
    main()
