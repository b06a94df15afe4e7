#!/usr/bin/python
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_bundle
short_description: Upload a UEC bundle (kernel, ramdisk, machine disk) as three linked Glance images
version_added: 0.2.0
description:
  - Makes a UEC tarball (Ubuntu's C(*-server-cloudimg-*.tar.gz), CirrOS' C(*-uec.tar.gz)),
    or a kernel, an optional ramdisk and a disk given as three files, into three images,
    idempotently - C(<name>-kernel) (V(aki) disk and container format),
    C(<name>-ramdisk) (V(ari), when there is an initrd) and C(<name>), the machine image, whose
    C(kernel_id) and C(ramdisk_id) name the other two, so that Nova's libvirt driver boots
    the disk with that kernel and initrd.
  - Members are recognised by their bytes (a kernel by its boot header, an initrd by its cpio
    or compression magic, a disk by its format header, partition table or file system);
    names only break ties. A tarball is read without trusting it - only regular files with
    plain names, no name twice - into private scratch space removed before the task returns.
    An ambiguous or refused tarball fails the task, naming the members and the option that
    picks one (O(uec_kernel), O(uec_ramdisk), O(uec_disk)), before any Glance request.
  - Each image is reconciled as M(imagegov.openstack.image) reconciles one - the sha256 of
    its bytes is its identity, checked against Glance's own hash; the same bytes are never
    uploaded twice; new bytes make a replacement, and the image replaced is retired (renamed
    and hidden), never deleted. The kernel and ramdisk go first, then the machine image,
    linked to their ids.
  - Every change is put to the policy as M(imagegov.openstack.image) puts it (create,
    upload, update, publish, delete...), and all three images are asked about (C(create), on
    their headers) before the first Glance request. A kernel is judged as a kernel - by its
    boot header, not as a disk (see the C(format_integrity) rule in the collection's
    C(policies/README.md)).
  - Nothing is left half-done. When an image fails, what this run did to the images before
    it is undone - an image it created is deleted, an image it replaced is restored.
    O(state=absent) deletes the machine image, then the ramdisk, then the kernel, and asks
    the policy about all three before deleting the first, as if the bundle's own images
    were already gone; anything else that uses the kernel or ramdisk still refuses it
    under a C(delete_protection) rule.
extends_documentation_fragment:
  - imagegov.openstack.openstack
  - imagegov.openstack.policy
  - imagegov.openstack.attributes
  - imagegov.openstack.usage
attributes:
  check_mode:
    support: full
    details: Reads the bundle (a tarball into scratch space, removed) to report what it holds; sends nothing to Glance.
  diff_mode:
    support: full
    details: Before and after of each image (kernel, ramdisk, machine), without fields that change by themselves.
  idempotent:
    support: full
options:
  name:
    description:
      - Base name. The images are named C(<name>-kernel), C(<name>-ramdisk) and C(<name>)
        (the machine image), and looked up by these names among the images of O(owner).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the three images exist, hold the bundle's bytes and are linked.
        V(absent) deletes the machine image, the ramdisk and the kernel, in that order.
    type: str
    choices: [present, absent]
    default: present
  uec:
    description:
      - UEC tarball (plain, gzip, xz or zstd), on the host the task runs on. Its members are
        written to a private directory in O(scratch_dir) and removed before the task returns.
      - Mutually exclusive with O(kernel_file), O(ramdisk_file) and O(disk_file).
    type: path
  uec_kernel:
    description: The tarball's member that is the kernel, when its bytes and names leave it ambiguous.
    type: str
  uec_ramdisk:
    description: The tarball's member that is the ramdisk (initrd), when ambiguous.
    type: str
  uec_disk:
    description: The tarball's member that is the machine disk, when ambiguous.
    type: str
  max_bytes:
    description:
      - Most bytes the tarball's members may take once written to O(scratch_dir), checked
        against each member's size before it is written. Default no limit.
    type: int
  kernel_file:
    description:
      - The kernel, as a file on the host the task runs on; with O(disk_file) instead of O(uec).
        Used in place; symlinks are followed (the path is the caller's own).
    type: path
  ramdisk_file:
    description: The ramdisk (initrd), as a file; optional with O(kernel_file).
    type: path
  disk_file:
    description: The machine disk, as a file; with O(kernel_file).
    type: path
  legacy_formats:
    description:
      - Make the machine image V(ami) (disk and container format) instead of O(disk_format) in a
        V(bare) container. An ami holds raw bytes, so a disk in another format needs
        O(convert_to=raw).
      - The kernel and ramdisk are always V(aki) / V(ari).
    type: bool
    default: false
  convert_to:
    description:
      - Convert the machine disk to this format before it is uploaded, as option
        O(imagegov.openstack.image#module:convert_to) of M(imagegov.openstack.image) does
        (judged before C(qemu-img) opens it, the output judged again, the source's sha256
        recorded as C(imagegov_source_sha256)).
      - Without it, a policy's C(allowed_formats) rule with C(convert_to) converts a disk
        whose format it does not allow.
    type: str
    choices: [qcow2, raw, vmdk]
  scratch_dir:
    description:
      - Directory for the tarball's members and a conversion's output (private directories
        are made inside it and removed on success, failure and interruption). Default the
        system's temporary directory.
    type: path
  disk_format:
    description:
      - Disk format of the machine image. Default what the disk is (V(raw) for a file system
        or a partitioned disk), or O(convert_to).
    type: str
    choices: [ploop, qcow2, raw, vdi, vhd, vhdx, vmdk]
  os_command_line:
    description: The kernel command line, stored as the machine image's C(os_command_line) property.
    type: str
  properties:
    description:
      - Extra properties of the machine image (C(os_distro), C(hw_disk_bus), ...). Values are
        stored as strings. The machine image also gets C(architecture) from the kernel's
        header (x86_64, aarch64, riscv64); C(kernel_id), C(ramdisk_id) and
        C(os_command_line) are set by the module and refused here.
    type: dict
  tags:
    description: Tags of the machine image.
    type: list
    elements: str
  visibility:
    description:
      - Who sees the images. All three get it, since a project that boots the machine image
        needs its kernel and ramdisk too. Glance makes new images V(shared) unless told
        otherwise.
    type: str
    choices: [private, shared, community, public]
  min_disk:
    description: Minimum disk size in GiB a server needs to boot the machine image.
    type: int
  min_ram:
    description: Minimum RAM in MiB a server needs to boot the machine image.
    type: int
  owner:
    description:
      - Project (name or id) that owns the images, and in which they are looked up. Changing
        the owner of an image needs the admin role.
    type: str
notes:
  - Sharing the machine image with other projects (M(imagegov.openstack.image_member)) does
    not share its kernel and ramdisk; share them too, or give the bundle O(visibility=community)
    or V(public).
author:
  - imagegov maintainers (@imagegov)
"""

EXAMPLES = r"""
- name: Ubuntu's UEC tarball as three linked images
  imagegov.openstack.image_bundle:
    cloud: devcloud-alpha
    name: focal
    uec: /srv/images/focal-server-cloudimg-amd64.tar.gz
    os_command_line: console=ttyS0 root=LABEL=cloudimg-rootfs
    properties:
      os_distro: ubuntu
      os_version: "20.04"

- name: A kernel, an initrd and a disk of one's own, in the legacy aki / ari / ami formats
  imagegov.openstack.image_bundle:
    cloud: devcloud-alpha
    name: appliance
    kernel_file: /srv/build/vmlinuz
    ramdisk_file: /srv/build/initrd.img
    disk_file: /srv/build/rootfs.img
    legacy_formats: true

- name: Two kernels in the tarball - say which one
  imagegov.openstack.image_bundle:
    cloud: devcloud-alpha
    name: cirros
    uec: /srv/images/cirros-0.6.2-x86_64-uec.tar.gz
    uec_kernel: cirros-0.6.2-x86_64-vmlinuz
    convert_to: qcow2

- name: Delete the machine image, its ramdisk and its kernel
  imagegov.openstack.image_bundle:
    cloud: devcloud-alpha
    name: focal
    state: absent
"""

RETURN = r"""
images:
  description:
    - The images as Glance returns them (properties are top-level keys), by role. In check
      mode, the predicted images (a machine image to be linked to images not yet created
      names them as C(<id of the new image '...'>)). Empty dicts for what does not exist.
  returned: always
  type: dict
  contains:
    kernel:
      description: The kernel image, C(<name>-kernel).
      type: dict
    ramdisk:
      description: The ramdisk image, C(<name>-ramdisk); empty when the bundle has no initrd.
      type: dict
    machine:
      description: The machine image, C(<name>), with C(kernel_id) and C(ramdisk_id).
      type: dict
operations:
  description: What was done (or, in check mode, would be done) to the three images, in order.
  returned: always
  type: list
  elements: str
  sample: ["create 'focal-kernel' (0c3a...)", "upload (put) from filename '/tmp/imagegov-uec-x/vmlinuz'"]
content:
  description:
    - Facts about each image's bytes (as the RV(imagegov.openstack.image#module:content) result
      of M(imagegov.openstack.image) - sha256, size, detected_format, virtual_size,
      safety_failures, boot_file), by role, with C(name) (the member's name, or the file's
      path) and C(what) (what its bytes were recognised as); C(source) describes a conversion.
  returned: with O(state=present)
  type: dict
bundle:
  description: The tarball read (or the files given), its sha256, and every member's name.
  returned: with O(state=present)
  type: dict
  contains:
    source:
      description: Path of the tarball; null for three files.
      type: str
    sha256:
      description: sha256 of the tarball; null for three files.
      type: str
    members:
      description: Names of every member of the tarball (the paths of the files given).
      type: list
      elements: str
caller:
  description: The user, project and roles the module acted as.
  returned: always
  type: dict
policy:
  description:
    - The policy decisions, one per action asked about, with each violation's rule,
      severity, mode, message, path, expected and found values and any exception that
      waived it.
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

from ansible_collections.imagegov.openstack.plugins.module_utils._base import ImagegovModule
from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache
from ansible_collections.imagegov.openstack.plugins.module_utils._image_bundle import BundleReconciler, open_bundle
from ansible_collections.imagegov.openstack.plugins.module_utils._uec import UecBundle
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import USAGE_CLOUD_ARGSPEC

SOURCES = ('uec', 'kernel_file')


class ImageBundleModule(ImagegovModule):
    enforces_policy = True
    argument_spec = dict(
        name=dict(type='str', required=True),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        uec=dict(type='path'),
        uec_kernel=dict(type='str'),
        uec_ramdisk=dict(type='str'),
        uec_disk=dict(type='str'),
        max_bytes=dict(type='int'),
        kernel_file=dict(type='path'),
        ramdisk_file=dict(type='path'),
        disk_file=dict(type='path'),
        legacy_formats=dict(type='bool', default=False),
        convert_to=dict(type='str', choices=['qcow2', 'raw', 'vmdk']),
        scratch_dir=dict(type='path'),
        disk_format=dict(type='str', choices=['ploop', 'qcow2', 'raw', 'vdi', 'vhd', 'vhdx', 'vmdk']),
        os_command_line=dict(type='str'),
        properties=dict(type='dict'),
        tags=dict(type='list', elements='str'),
        visibility=dict(type='str', choices=['private', 'shared', 'community', 'public']),
        min_disk=dict(type='int'),
        min_ram=dict(type='int'),
        owner=dict(type='str'),
        **USAGE_CLOUD_ARGSPEC,
    )
    module_kwargs = dict(
        supports_check_mode=True,
        mutually_exclusive=[
            ('uec', 'kernel_file'),
            ('uec', 'ramdisk_file'),
            ('uec', 'disk_file'),
            ('convert_to', 'disk_format'),
        ],
        required_together=[('kernel_file', 'disk_file')],
        required_by={'uec_kernel': 'uec', 'uec_ramdisk': 'uec', 'uec_disk': 'uec', 'ramdisk_file': 'kernel_file'},
        required_if=[('state', 'present', SOURCES, True)],
    )

    def run(self) -> None:
        if self.params['state'] == 'absent':
            self.reconcile(None)
        else:
            # Read before the first request to the cloud: a refused tarball costs no connection.
            with open_bundle(self.params) as bundle:
                self.reconcile(bundle)

    def reconcile(self, bundle: UecBundle | None) -> None:
        p = self.params
        owner_id = self.resolve_project(p['owner']) if p['owner'] else None
        reconciler = BundleReconciler(
            p,
            self.glance,
            self.gate,
            self.caller['project_id'],
            self.check_mode,
            DigestCache(),
            self.run_qemu_img,
            self.ansible.warn,
        )
        self.result['operations'] = reconciler.operations
        if bundle is None:
            reconciler.absent(owner_id or self.caller['project_id'])
        else:
            reconciler.present(bundle, owner_id)
        self.exit(caller=self.caller, **reconciler.result(bundle))


def main() -> None:
    ImageBundleModule()()


if __name__ == '__main__':
    main()
