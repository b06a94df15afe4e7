#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_export
short_description: Download a Glance image to a file, verified, resumable, sparse, converted or packed as an OVA
version_added: 0.3.0
description:
  - Downloads the data of an image to O(path) on the host the task runs on, streamed (memory
    stays at a few MiB whatever the size), hashed on the way with the image's C(os_hash_algo)
    and verified against Glance's C(os_hash_value) and C(size). The file appears at O(path)
    by a rename, only once verified; a mismatch leaves nothing there. The verified file stays
    open until it is published, its mode is set through it, and what the rename put at
    O(path) is checked to be that very file, so a file or link swapped in by name is refused
    (and removed), never published nor chmod-ed through. A O(path) (or, for a conversion, a
    O(scratch_dir)) in a directory where another user may replace files - one owned by another
    user than root, or one anyone may write to without the sticky bit, itself or above it - is
    refused before anything is downloaded.
  - Resumable. The bytes go to a part file beside O(path) (C(.<name>.<image id>.<hash>.imagegov-part),
    mode 0600), whose name binds it to the image's id and C(os_hash_value). An interrupted
    export (the task killed, the connection dropped) resumes on the next run - what the part
    file holds is hashed, the rest is asked of Glance with an HTTP Range request. A download
    that breaks off is also resumed within the run (twice). Part files bound to another image
    or other data are removed, never resumed onto. A part file is removed once the export is
    published, or when the whole proves wrong (hash or size mismatch), since resuming onto
    it could only fail again.
  - Sparse. Zero blocks (64 KiB, aligned) are skipped, not written, so a raw image takes the
    space of its data.
  - O(convert_to) converts the downloaded image with C(qemu-img) after the format inspector
    judged it (no backing file, no external data file, no extents outside - the checks of
    M(imagegov.openstack.image)'s O(imagegov.openstack.image#module:convert_to)); the
    conversion's scratch space is private and removed however the task ends.
  - O(container_format=ova) packs an OVA - the OVF descriptor, its manifest (SHA256) and the
    disk (a streamOptimized vmdk unless O(convert_to) says qcow2 or raw). The descriptor
    states the image's facts the way M(imagegov.openstack.image) reads them back from an OVA
    (C(hw_firmware_type), C(os_secure_boot), C(hw_disk_bus), C(hw_vif_model), C(os_type) and
    C(os_distro), C(min_ram) as memory, C(imagegov_ovf_cpus) as CPUs) and carries every other
    property of the image in the collection's own section (C(GlanceImageSection), namespace
    C(urn:x-imagegov:ovf:glance-image:1), C(ovf:required=false)), which
    M(imagegov.openstack.image) restores exactly. C(kernel_id), C(ramdisk_id), links to volumes,
    snapshots, keys and instances (C(block_device_mapping), C(bdm_v2), C(cinder_encryption_key_id)...), signatures
    (C(img_signature*)), Glance's C(os_glance*), C(owner_specified.*) and the collection's
    C(imagegov_*) bookkeeping are not carried (listed in RV(export.package) as C(not_carried)).
  - Idempotent. A record beside the file (C(.<name>.imagegov-export)) keeps the image's id
    and C(os_hash_value), the options and the file's identity (device, inode, size, mtime,
    ctime) and digest; a file whose identity still matches is current and not read at all.
    A file that was only touched (or chmod-ed) is hashed against the recorded digest and
    kept. Without a record, a file exported as stored is hashed against C(os_hash_value) and
    kept when it matches; a converted or packed file is exported again. The record is also a
    lock, so concurrent runs to one O(path) take turns (the second finds the file current).
  - Exporting changes no image, so no policy action is asked; Glance's own C(download_image)
    policy decides who may read the data. The result reports the image's facts.
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.attributes
  - imagegov.openstack.policy.ACCEPTED
attributes:
  check_mode:
    support: full
    details: Reports what would be done (download, resume from how many bytes, nothing); writes nothing.
  diff_mode:
    support: full
    details: The image, hash and options of the file at O(path) before and after.
  idempotent:
    support: full
options:
  image:
    description:
      - Name or id of the image. A name is looked up among all images visible to the caller;
        when several share it, give the id.
    type: str
    required: true
  path:
    description:
      - The file to write, on the host the task runs on. Its directory must exist and be
        writable; the part file, the record and (by default) the conversion's scratch
        space go beside it, so it needs room for the image and, converted, its conversion.
      - A symbolic link at O(path) is refused. A file of another user there is never taken
        as the export (it is replaced by a rename).
    type: path
    required: true
  container_format:
    description:
      - V(bare) writes the disk alone; V(ova) packs it with an OVF descriptor and a manifest.
    type: str
    choices: [bare, ova]
    default: bare
  convert_to:
    description:
      - The disk format to write. Default the image's own format (no conversion), and V(vmdk)
        (streamOptimized) inside an OVA.
    type: str
    choices: [qcow2, raw, vmdk]
  scratch_dir:
    description:
      - Directory for the conversion (a private directory is made inside it and removed
        however the task ends). Default the directory of O(path), which lets the converted
        file be renamed into place instead of copied.
    type: path
  force:
    description: Download and write the file again even when it is current.
    type: bool
    default: false
  mode:
    description:
      - Octal mode of the file (V("0644")); setting it on a current file is a change. Without
        it a new file gets 0666 less the umask, and an existing file keeps its mode. The part
        file and the record are always 0600.
    type: raw
notes:
  - The data is verified against what Glance computed when it stored the image; an image
    stored before Glance computed C(os_hash_value) is verified against its MD5 C(checksum),
    with a warning.
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Download the gold image as it is stored
  imagegov.openstack.image_export:
    cloud: devcloud-alpha
    image: ubuntu-24.04
    path: /srv/export/ubuntu-24.04.qcow2

- name: As a sparse raw disk
  imagegov.openstack.image_export:
    cloud: devcloud-alpha
    image: ubuntu-24.04
    path: /srv/export/ubuntu-24.04.raw
    convert_to: raw

- name: As an OVA (streamOptimized vmdk, the image's properties in the OVF)
  imagegov.openstack.image_export:
    cloud: devcloud-alpha
    image: ubuntu-24.04
    path: /srv/export/ubuntu-24.04.ova
    container_format: ova
    mode: "0644"
"""

RETURN = r"""
path:
  description: The file written (absolute).
  returned: always
  type: str
image:
  description:
    - Facts of the image exported (id, name, owner, visibility, status, disk_format,
      container_format, size, virtual_size, os_hash_algo, os_hash_value, min_disk, min_ram)
      and its C(properties).
  returned: always
  type: dict
export:
  description: What was done (or, in check mode, would be done) and the file's facts.
  returned: always
  type: dict
  contains:
    action:
      description:
        - V(none) (the file is current), V(record) (the file held the image, proven by hashing
          it; only the record was written), V(download), V(resume) (from the part file),
          V(finish) (the part file was whole, so it was only verified and published).
      type: str
    reason:
      description: Why, in words.
      type: str
    mode_set:
      description: Whether option O(mode) changed the mode of a file that was otherwise current.
      type: bool
    rehash_seconds:
      description: Time spent hashing the file at O(path) again to prove it current (no download).
      type: float
      returned: when the file was hashed again
    resumed_from:
      description: Bytes the part file held when the run started (hashed, not downloaded again).
      type: int
    downloaded:
      description: Bytes downloaded by this run.
      type: int
    skipped:
      description: Bytes of zero blocks not written (holes).
      type: int
    retries:
      description: Range requests made after the download broke off in this run.
      type: int
    requests:
      description: Glance requests made.
      type: int
    part:
      description: The part file, while one is left (an export that did not finish).
      type: str
    record:
      description: The record of the export, beside the file.
      type: str
    output:
      description:
        - The file (path, format, container_format, size, allocated bytes, mode, digest -
          the image's own for a file as stored, else the file's sha256).
      type: dict
    source:
      description: The format inspector's facts of the downloaded data, when converted or packed.
      type: dict
    converted:
      description: From and to which format, when converted.
      type: dict
    package:
      description:
        - The OVA packed - descriptor, manifest and disk names, the disk's format, size and
          sha256, the properties carried and those not carried, the OVA's sha256.
      type: dict
diff:
  description: Before and after (path, exists, image_id, os_hash_value, container_format, disk_format).
  returned: with --diff
  type: dict
"""

import os

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._export import (
    Exporter,
    ExportError,
    ExportSpec,
    describe,
    parse_mode,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._ova_pack import user_properties
from ansible_collections.imagegov.openstack.plugins.module_utils._policy import POLICY_ACCEPTED_ARGSPEC

IMAGE_FACTS = (
    'id',
    'name',
    'owner',
    'visibility',
    'status',
    'disk_format',
    'container_format',
    'size',
    'virtual_size',
    'os_hash_algo',
    'os_hash_value',
    'min_disk',
    'min_ram',
)


class ImageExportModule(ImagegovModule):
    argument_spec = dict(
        image=dict(type='str', required=True),
        path=dict(type='path', required=True),
        container_format=dict(type='str', default='bare', choices=['bare', 'ova']),
        convert_to=dict(type='str', choices=['qcow2', 'raw', 'vmdk']),
        scratch_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        mode=dict(type='raw'),
        **POLICY_ACCEPTED_ARGSPEC,
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self) -> None:
        p = self.params
        spec = ExportSpec(p['path'], p['container_format'], p['convert_to'], p['scratch_dir'], p['force'])
        spec.mode = parse_mode(p['mode'])
        image = self.glance.find(p['image'], 'Option image', 'Give its id.')
        if image is None:
            raise ExportError(f'Option image: no image {p["image"]!r} (by id or name) is visible. Check the name.')
        self.result['image'] = dict({k: image.get(k) for k in IMAGE_FACTS}, properties=user_properties(image))
        exporter = Exporter(self.glance, image, spec, self.run_qemu_img)
        exporter.check_destination()
        if exporter.algo == 'md5':
            self.ansible.warn(f'Image {image["id"]} has no os_hash_value: its data is verified with MD5 only.')
        record, exists = exporter.record.read(), os.path.isfile(exporter.path)
        before = describe(record if exists else None, exporter.path, exists)
        if self.check_mode:
            plan, output = exporter.plan(), None
        else:
            plan, output = exporter.apply()
        if plan.action in ('none', 'record'):
            before = describe(exporter.wanted(), exporter.path, True)
        export = dict(
            exporter.facts,
            action=plan.action,
            reason=plan.reason,
            mode_set=plan.chmod,
            requests=self.glance.request_count,
            record=exporter.record.path,
            output=output or plan.current,
        )
        if self.check_mode:
            export['resumed_from'] = plan.part_size
        if os.path.isfile(plan.part):
            export['part'] = plan.part
        if exporter.rehashed_seconds is not None:
            export['rehash_seconds'] = exporter.rehashed_seconds
        self.exit(
            changed=plan.changed,
            path=exporter.path,
            image=self.result['image'],
            export=export,
            diff={'before': before, 'after': describe(exporter.wanted(), exporter.path, True)},
        )


def main() -> None:
    ImageExportModule()()


if __name__ == '__main__':
    main()
