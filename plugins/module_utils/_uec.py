# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""UEC tarballs and kernel / ramdisk / disk triples: three Glance images, linked.

    with read_uec('focal-server-cloudimg-amd64.tar.gz', scratch_dir) as bundle:
        ids = {}
        for spec in image_specs(bundle, 'focal'):         # kernel, ramdisk, then the disk
            properties = {**spec['properties'], **link_properties(spec, ids)}
            ids[spec['role']] = upload(spec['path'], spec['name'], spec['disk_format'], ...)

A UEC tarball (Ubuntu's ``*-server-cloudimg-*.tar.gz``, CirrOS' ``*-uec.tar.gz``) holds a
machine disk, the kernel that boots it and usually an initrd. Glance keeps each as an image;
Nova's libvirt driver boots the disk with the kernel and ramdisk named by the machine image's
``kernel_id`` and ``ramdisk_id`` properties, which is why the machine image comes last.

Each member is recognised by its bytes - a kernel by its boot header, an initrd by its cpio
or compression magic, a disk by its partition table, file system or format header - and
names only break ties (or decide for compressed data, which could be an arm64 kernel or an
initrd). Anything still ambiguous is an error listing the members and how to name one. The
tarball is read as _bundle reads every tar (regular files with plain names only, no name
twice, a byte budget); members that may be chosen are written to private scratch space, the
others are removed once the choice is made, and everything by close().
"""

from __future__ import annotations

import os
import re
import stat
from typing import Any

from ._bundle import (
    HEAD_SIZE,
    BundleError,
    ByteBudget,
    TarMember,
    TarStream,
    file_digests,
    private_workdir,
    read_head,
    remove_workdir,
)
from ._content import GLANCE_DISK_FORMATS
from ._convert import _sigterm_raises
from ._sniff import UNUSABLE, architecture_of, content_of

ROLES = ('kernel', 'ramdisk', 'disk')
# The image_bundle options naming a member for each role.
ROLE_OPTIONS = {'kernel': 'uec_kernel', 'ramdisk': 'uec_ramdisk', 'disk': 'uec_disk'}
NAME_SUFFIXES = {'kernel': '-kernel', 'ramdisk': '-ramdisk', 'disk': ''}
LEGACY_FORMATS = {'kernel': 'aki', 'ramdisk': 'ari', 'disk': 'ami'}
# The machine image property that names each of the other two images.
LINK_PROPERTIES = {'kernel': 'kernel_id', 'ramdisk': 'ramdisk_id'}
MACHINE_FORMATS = sorted(set(GLANCE_DISK_FORMATS.values()) - {'iso'})
_NAME_ROLES = (
    ('kernel', re.compile(r'vmlinu[xz]|bzimage|(^|[-_.])(kernel|aki)([-_.]|$)', re.IGNORECASE)),
    ('ramdisk', re.compile(r'initrd|initramfs|ramdisk|(^|[-_.])(loader|ari)([-_.]|$)', re.IGNORECASE)),
    ('disk', re.compile(r'\.(img|raw|qcow2|vmdk|vhdx?|vdi)$|(^|[-_.])(disk|ami)([-_.]|$)', re.IGNORECASE)),
)


class UecError(BundleError):
    """A UEC bundle that is refused or ambiguous; the message lists what to name and how."""


# --- what a file is (its bytes: _sniff) ------------------------------------------------


def name_role(name: str) -> str | None:
    """The role a file name suggests (vmlinuz, initrd, .img...), or None."""
    return next((role for role, pattern in _NAME_ROLES if pattern.search(name)), None)


class UecPart:
    """One file of the bundle: the role it plays, where it is and what its bytes are."""

    def __init__(self, name: str, head: bytes, size: int) -> None:
        self.name = name
        self.content, self.proven_role = content_of(head)
        self.name_role = name_role(name)
        self.architecture = architecture_of(head, self.content)
        self.size = size
        self.path = ''
        self.sha256 = ''
        self.role: str | None = None

    def may_be(self, role: str) -> bool:
        """Proven by content, or - for compressed or unknown data - suggested by the name."""
        if self.proven_role:
            return self.proven_role == role
        return self.content not in UNUSABLE and self.name_role == role

    def fits(self, role: str) -> bool:
        """Acceptable when named explicitly: not text or empty, not proven to be something else."""
        return self.content not in UNUSABLE and self.proven_role in (None, role)

    def describe(self) -> str:
        return f'{self.name} ({self.content})'

    def facts(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'path': self.path,
            'size': self.size,
            'sha256': self.sha256,
            'content': self.content,
            'architecture': self.architecture,
        }


# --- choosing ---------------------------------------------------------------------------


def choose(
    parts: list[UecPart], wanted: dict[str, str | None], label: str, names: list[str]
) -> dict[str, UecPart | None]:
    """The kernel, ramdisk (optional) and disk among ``parts``: those named in ``wanted``
    (member names), else the one part each role fits. Raises UecError for a missing kernel
    or disk and for any role more than one part fits; ``names`` (every member) are listed
    when a wanted one does not exist."""
    chosen: dict[str, UecPart | None] = {}
    for role in sorted(ROLES, key=lambda role: wanted.get(role) is None):  # named ones first
        taken = [part for part in chosen.values() if part is not None]
        free = [part for part in parts if part not in taken]
        part = _pick(role, free, wanted.get(role), parts, label, names)
        if part is not None:
            part.role = role
        chosen[role] = part
    return {role: chosen[role] for role in ROLES}


def _pick(
    role: str, free: list[UecPart], wanted: str | None, parts: list[UecPart], label: str, names: list[str]
) -> UecPart | None:
    option = ROLE_OPTIONS[role]
    if wanted:
        part = next((part for part in parts if part.name == wanted), None)
        if part is None:
            raise UecError(f'{label} has no member {wanted!r} ({option}); its members: {", ".join(names)}')
        if part not in free:
            raise UecError(f'{label}: {wanted!r} is named for two roles')
        if not part.fits(role):
            raise UecError(f'{label}: {wanted!r} ({option}) is {part.content}, not a {role}')
        return part
    fitting = [part for part in free if part.may_be(role)]
    if len(fitting) > 1:
        # Content fits several (two kernels: vmlinuz and a loader): a name that says so wins.
        fitting = [part for part in fitting if part.name_role == role] or fitting
    if len(fitting) == 1:
        return fitting[0]
    if not fitting and role == 'ramdisk':
        return None  # a kernel can boot without an initrd
    if not fitting:
        raise UecError(f'{label} holds no {role} that can be recognised ({_listing(parts)}): name one with {option}')
    raise UecError(f'{label}: {len(fitting)} members could be the {role} ({_listing(fitting)}): name one with {option}')


def _listing(parts: list[UecPart]) -> str:
    return ', '.join(part.describe() for part in parts) or 'none'


# --- the bundle -------------------------------------------------------------------------


class UecBundle:
    """A kernel, an optional ramdisk and a machine disk, ready to upload.

    ``source`` / ``sha256`` are the tarball's (None for three separate files). Parts read
    from a tarball are in private scratch space, removed by close() (or a ``with`` block).
    """

    def __init__(
        self, source: str | None, sha256: str | None, chosen: dict[str, UecPart | None], members: list[str]
    ) -> None:
        self.source = source
        self.sha256 = sha256
        self.kernel = _required(chosen['kernel'])
        self.ramdisk = chosen['ramdisk']
        self.disk = _required(chosen['disk'])
        self.members = members
        self._workdir: str | None = None

    def parts(self) -> list[UecPart]:
        """In upload order: kernel, ramdisk (when there is one), disk."""
        return [part for part in (self.kernel, self.ramdisk, self.disk) if part is not None]

    def facts(self) -> dict[str, Any]:
        return {
            'source': self.source,
            'sha256': self.sha256,
            'members': list(self.members),
            **{role: (part.facts() if part else None) for role, part in zip(ROLES, self._roles(), strict=True)},
        }

    def _roles(self) -> tuple[UecPart | None, ...]:
        return self.kernel, self.ramdisk, self.disk

    def close(self) -> None:
        remove_workdir(self._workdir)
        self._workdir = None

    def __enter__(self) -> UecBundle:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _required(part: UecPart | None) -> UecPart:
    if part is None:  # choose() raises first; this keeps the type honest
        raise UecError('a UEC bundle needs a kernel and a disk')
    return part


def read_uec(
    path: str,
    scratch_dir: str,
    max_bytes: int | None = None,
    kernel: str | None = None,
    ramdisk: str | None = None,
    disk: str | None = None,
) -> UecBundle:
    """Read a UEC tarball (plain, gzip, xz or zstd) and write the members that may be the
    kernel, ramdisk or disk into a private directory under ``scratch_dir`` (at most
    ``max_bytes`` in all); ``kernel``, ``ramdisk``, ``disk`` name members to use. Members not
    chosen are removed at once, the directory on failure and by the bundle's close()."""
    path = os.path.abspath(path)
    label = os.path.basename(path)
    wanted = {'kernel': kernel, 'ramdisk': ramdisk, 'disk': disk}
    workdir = private_workdir(scratch_dir, 'uec')
    try:
        with _sigterm_raises():
            bundle = _read_tarball(path, label, workdir, ByteBudget(max_bytes, label), wanted)
    except BaseException:
        remove_workdir(workdir)
        raise
    bundle._workdir = workdir
    return bundle


def _read_tarball(path: str, label: str, workdir: str, budget: ByteBudget, wanted: dict[str, str | None]) -> UecBundle:
    parts = []
    with TarStream(path, label) as tar:
        for member in tar:
            part = _kept(member, workdir, budget, set(wanted.values()))
            if part is not None:
                parts.append(part)
        chosen = choose(parts, wanted, label, tar.names)
        for part in parts:
            if part.role is None:
                os.remove(part.path)  # scratch space for what is used only
        return UecBundle(path, tar.sha256, chosen, list(tar.names))


def _kept(member: TarMember, workdir: str, budget: ByteBudget, named: set[str | None]) -> UecPart | None:
    """The member written out when it may play a role (or is named); None for the rest."""
    part = UecPart(member.name, member.head(HEAD_SIZE), member.size)
    if member.name not in named and not any(part.may_be(role) for role in ROLES):
        return None  # README, package manifests...
    extracted = member.extract(workdir, budget)
    part.path, part.sha256 = extracted.path, extracted.sha256
    return part


def uec_from_files(kernel: str, ramdisk: str | None, disk: str) -> UecBundle:
    """The same bundle from three files given by path (``ramdisk`` may be None), each
    checked to be a regular file whose bytes fit its role. The paths are the caller's own,
    so symlinks are followed (unlike names read from a package). Nothing is copied."""
    parts, wanted = [], {}
    for role, given in zip(ROLES, (kernel, ramdisk, disk), strict=True):
        if given is None:
            wanted[role] = None
            continue
        part = _local_part(given)
        parts.append(part)
        wanted[role] = part.name
    chosen = choose(parts, wanted, 'the files given', [part.name for part in parts])
    return UecBundle(None, None, chosen, [part.name for part in parts])


def _local_part(path: str) -> UecPart:
    path = os.path.abspath(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UecError(f'{path} cannot be read: {exc.strerror}') from exc
    if not stat.S_ISREG(info.st_mode):
        raise UecError(f'{path} is not a regular file')
    # The name is the path: two files of one name in different directories stay apart.
    part = UecPart(path, read_head(path, HEAD_SIZE), info.st_size)
    part.name_role = name_role(os.path.basename(path))
    part.path = path
    part.sha256 = file_digests(path, follow_symlinks=True)['sha256']
    return part


# --- what to upload ---------------------------------------------------------------------


def image_specs(
    bundle: UecBundle,
    name: str,
    legacy_formats: bool = False,
    disk_format: str = 'raw',
    command_line: str | None = None,
) -> list[dict[str, Any]]:
    """The images to create, in order: ``<name>-kernel`` (aki/aki), ``<name>-ramdisk``
    (ari/ari) when there is one, then ``<name>``: the machine image, ``disk_format`` / bare
    (what the disk is, or what it was converted to), or ami / ami with ``legacy_formats``
    (ami means raw bytes). Each spec: role, name, path, size, sha256, disk_format,
    container_format, properties, and ``links`` - {property: role} for the machine image,
    filled by link_properties() once the kernel and ramdisk images exist.
    ``command_line`` becomes the machine image's os_command_line (the kernel's arguments).
    """
    _check_machine_format(disk_format, legacy_formats)
    specs = []
    for part in bundle.parts():
        role = part.role or ''
        image_name = _image_name(name, role)
        formats = LEGACY_FORMATS[role] if legacy_formats or role != 'disk' else disk_format
        containers = LEGACY_FORMATS[role] if legacy_formats or role != 'disk' else 'bare'
        specs.append(
            {
                'role': role,
                'name': image_name,
                'path': part.path,
                'size': part.size,
                'sha256': part.sha256,
                'disk_format': formats,
                'container_format': containers,
                'properties': _machine_properties(bundle, command_line) if role == 'disk' else {},
                'links': _links(bundle) if role == 'disk' else {},
            }
        )
    return specs


def _check_machine_format(disk_format: str, legacy_formats: bool) -> None:
    if legacy_formats and disk_format != 'raw':
        raise UecError(f'an ami machine image holds raw bytes, not {disk_format}: leave legacy_formats off')
    if disk_format not in MACHINE_FORMATS:
        raise UecError(f'disk_format {disk_format!r} is not one of {", ".join(MACHINE_FORMATS)}')


def _image_name(name: str, role: str) -> str:
    image_name = f'{name}{NAME_SUFFIXES[role]}'
    if not name.strip() or len(image_name) > 255:
        raise UecError(f'image name {image_name[:80]!r} is empty or longer than Glance takes (255)')
    return image_name


def _machine_properties(bundle: UecBundle, command_line: str | None) -> dict[str, str]:
    properties = {}
    if bundle.kernel.architecture:
        properties['architecture'] = bundle.kernel.architecture
    if command_line:
        properties['os_command_line'] = command_line
    return properties


def _links(bundle: UecBundle) -> dict[str, str]:
    return {LINK_PROPERTIES[part.role]: part.role for part in bundle.parts() if part.role in LINK_PROPERTIES}


def link_properties(spec: dict[str, Any], image_ids: dict[str, str]) -> dict[str, str]:
    """The machine image's kernel_id / ramdisk_id from the ids of the images made before it
    ({role: image id}); {} for the kernel and ramdisk specs themselves."""
    missing = [role for role in spec['links'].values() if not image_ids.get(role)]
    if missing:
        raise UecError(f'{spec["name"]} links to the {" and ".join(missing)} image, which has no id yet')
    return {prop: image_ids[role] for prop, role in spec['links'].items()}
