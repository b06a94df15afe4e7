# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OVA and OVF packages: one disk out, safely, with what the descriptor says about the VM.

    with read_ova('appliance.ova', scratch_dir, max_bytes=30 * 2**30) as bundle:
        with inspect_source(bundle.disk_path, scratch_dir, run) as source:   # _convert
            ...
        mapped = nova_properties(bundle)   # properties, min_ram, name, notes

Glance stores one disk per image and Nova boots no OVF, so the package is opened here: the
descriptor (the first member, as the OVF standard has it) is parsed, one disk is chosen
(several: the caller must name one), and only that member is written - into private scratch
space removed by close(). The archive is read as _bundle reads every tar: no member that is
not a plain regular file, no name twice, a byte budget. The descriptor is XML from whoever
made the package: no DTD is accepted (external entities, billion laughs) and its size is
capped. When a manifest (.mf) is there, the descriptor and the disk must match its digests.

A plain .ovf with its disks beside it is read by read_ovf(); the disk names it gives must be
plain file names of regular files in its directory, never symlinks.

What the VM's hardware was (firmware, disk controller, NIC, OS) becomes the Glance
properties Nova reads, mapped to values Nova's drivers accept (see docs/formats.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import stat
from typing import Any
from xml.etree import ElementTree

from ._bundle import (
    BundleError,
    ByteBudget,
    Extracted,
    TarMember,
    TarStream,
    file_digests,
    plain_name,
    private_workdir,
    remove_workdir,
    sibling_file,
)
from ._convert import _sigterm_raises
from ._state import BASE_FIELDS, BOOKKEEPING_PREFIX, KEPT_PROPERTY_PREFIXES

OVF_NAMESPACES = ('http://schemas.dmtf.org/ovf/envelope/1', 'http://schemas.dmtf.org/ovf/envelope/2')
VMW = 'http://www.vmware.com/schema/ovf'
VBOX = 'http://www.virtualbox.org/ovf/machine'
# The collection's own OVF section: the Glance properties of the image an OVA was exported
# from (_ova_pack writes it), restored as they were on import. ovf:required="false".
GLANCE_NAMESPACE = 'urn:x-imagegov:ovf:glance-image:1'
GLANCE_SECTION = 'GlanceImageSection'
GLANCE_MAX_PROPERTIES = 128  # Glance's image_property_quota
# Properties a package never sets: Glance's own fields, this collection's bookkeeping (what
# it records of the image it made), links to another cloud's images, volumes, snapshots,
# keys and instances (Nova and Cinder follow them when the image boots or is made a
# volume), signatures of bytes the package's disk no longer is.
NOT_CARRIED = frozenset(
    {
        'kernel_id',
        'ramdisk_id',
        'block_device_mapping',
        'bdm_v2',
        'root_device_name',
        'cinder_encryption_key_id',
        'cinder_encryption_key_deletion_policy',
        'base_image_ref',
        'instance_uuid',
        'image_location',
        'image_state',
        'image_type',
        'owner_id',
        'user_id',
    }
)
NOT_CARRIED_PREFIXES = ('img_signature', BOOKKEEPING_PREFIX, *KEPT_PROPERTY_PREFIXES)
OVF_MAX_BYTES = 4 * 1024 * 1024
MANIFEST_MAX_BYTES = 1024 * 1024
# The option of the image module that picks a disk.
DISK_OPTION = 'ova_disk'
HYPERVISORS = ('libvirt', 'vmware')
GIB = 1024**3
MIB = 1024**2

# CIM_ResourceAllocationSettingData.ResourceType values the mapping reads.
CPU, MEMORY, IDE, SCSI, NIC, DISK, OTHER_STORAGE = 3, 4, 5, 6, 10, 17, 20
HARDWARE_ITEMS = ('Item', 'StorageItem', 'EthernetPortItem')  # OVF 1 and OVF 2 spellings
_HOST_RESOURCE = re.compile(r'^(?:ovf:)?/{1,2}(disk|file)/(.+)$')
_MANIFEST_LINE = re.compile(r'^(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)$')
_DIGEST_LENGTHS = {'sha1': 40, 'sha256': 64, 'sha512': 128}
_DECLARED_ENCODING = re.compile(r'^\s*<\?xml[^>]*\bencoding\s*=\s*["\']([^"\']*)["\']')
_DTD = re.compile(r'<!\s*(DOCTYPE|ENTITY)', re.IGNORECASE)
_UNIT_WORDS = {
    'byte': 1,
    'bytes': 1,
    'kilobytes': 2**10,
    'megabytes': 2**20,
    'gigabytes': 2**30,
    'terabytes': 2**40,
    'kb': 2**10,
    'mb': 2**20,
    'gb': 2**30,
    'tb': 2**40,
}
_POWER = re.compile(r'^(\d{1,4})\s*\^\s*(\d{1,2})$')
_FORMAT_WORDS = (('vmdk', 'vmdk'), ('qcow', 'qcow2'), ('vhdx', 'vhdx'), ('vhd', 'vhd'), ('vdi', 'vdi'), ('raw', 'raw'))


class OvaError(BundleError):
    """An OVA or OVF that is refused; the message names the package, member and what to do."""


# --- what the descriptor says -----------------------------------------------------------


@dataclasses.dataclass
class OvfDisk:
    """One disk of the DiskSection, with the file and controller the descriptor gives it."""

    disk_id: str
    file_id: str | None = None  # the References/File id the disk uses
    file: str | None = None  # the file name in the package (References/File href); None: a blank disk
    file_size: int | None = None  # bytes, as References/File ovf:size states it
    compression: str | None = None  # ovf:compression (gzip): the file is compressed
    chunked: bool = False  # ovf:chunkSize: the file is split into numbered pieces
    capacity: int | None = None  # bytes: the disk's size in the VM (Disk ovf:capacity with its units)
    populated_size: int | None = None
    format: str | None = None  # vmdk, qcow2, vhd...: what the format URL names (the bytes decide)
    subformat: str | None = None  # the URL's fragment: streamOptimized, sparse...
    format_url: str | None = None
    controller: str | None = None  # the bus the VM had it on: ide, scsi, sata, nvme, other
    controller_model: str | None = None  # ResourceSubType: lsilogic, VirtualSCSI, vmware.sata.ahci, AHCI...


@dataclasses.dataclass
class OvfDescriptor:
    """The facts of an OVF descriptor the mapping to Glance uses."""

    name: str | None  # VirtualSystem/Name
    system_id: str | None  # VirtualSystem ovf:id
    product: str | None
    version: str | None
    os_cim_id: int | None  # OperatingSystemSection ovf:id: a CIM_OperatingSystem OSType
    os_vmware: str | None  # vmw:osType, a VMware guest id (ubuntu64Guest, rhel8_64Guest...)
    os_virtualbox: str | None  # vbox:OSType (Ubuntu_64, RedHat_64...)
    os_description: str | None
    cpus: int | None
    memory_mib: int | None
    firmware: str | None  # efi or bios, when stated
    secure_boot: bool | None
    nics: list[str]  # each NIC's ResourceSubType (E1000, VmxNet3...), in order
    disks: list[OvfDisk]
    glance_properties: dict[str, str] = dataclasses.field(default_factory=dict)  # GLANCE_SECTION


def parse_ovf(data: bytes, label: str) -> OvfDescriptor:
    """The facts of an OVF descriptor. Raises OvaError for what is no OVF, has a DTD, is too
    large, or describes several virtual machines."""
    root = _parse_xml(data, label)
    if _local(root.tag) != 'Envelope' or _namespace(root.tag) not in OVF_NAMESPACES:
        raise OvaError(f'{label} is not an OVF descriptor (its root element is {_local(root.tag)!r})')
    system = _virtual_system(root, label)
    disks = _disks(root, label)
    hardware = _hardware_items(root, system)
    _attach_controllers(hardware, disks)
    os_section = _first_child(system, 'OperatingSystemSection')
    product = _first_child(system, 'ProductSection')
    firmware, secure_boot = _firmware(system)
    return OvfDescriptor(
        name=_child_text(system, 'Name'),
        system_id=_ovf_attribute(system, 'id'),
        product=_child_text(product, 'Product'),
        version=_child_text(product, 'Version'),
        os_cim_id=_integer(_ovf_attribute(os_section, 'id')),
        os_vmware=os_section.get(f'{{{VMW}}}osType') if os_section is not None else None,
        os_virtualbox=_child_text(os_section, 'OSType', VBOX),
        os_description=_child_text(os_section, 'Description'),
        cpus=_cpus(hardware),
        memory_mib=_memory_mib(hardware),
        firmware=firmware,
        secure_boot=secure_boot,
        nics=[item.get('ResourceSubType', '') for item in hardware if item['type'] == NIC],
        disks=list(disks.values()),
        glance_properties=_glance_properties(system, label),
    )


def carried_property(key: str) -> bool:
    """Whether a package may carry (and restore) this property."""
    return key not in BASE_FIELDS and key not in NOT_CARRIED and not key.startswith(NOT_CARRIED_PREFIXES)


def _glance_properties(system: ElementTree.Element, label: str) -> dict[str, str]:
    """The properties of the collection's own section (those a package may carry)."""
    found: dict[str, str] = {}
    for section in system.iter(f'{{{GLANCE_NAMESPACE}}}{GLANCE_SECTION}'):
        for element in section.iter(f'{{{GLANCE_NAMESPACE}}}Property'):
            key = element.get(f'{{{GLANCE_NAMESPACE}}}key') or ''
            value = element.get(f'{{{GLANCE_NAMESPACE}}}value')
            if not key or len(key) > 255 or value is None or len(value) > 65535 or key in found:
                raise OvaError(f'{label}: a {GLANCE_SECTION} property is malformed or repeated: {key[:80]!r}')
            if carried_property(key):
                found[key] = value
    if len(found) > GLANCE_MAX_PROPERTIES:
        raise OvaError(f'{label}: {len(found)} properties in {GLANCE_SECTION}; Glance keeps {GLANCE_MAX_PROPERTIES}')
    return found


def _parse_xml(data: bytes, label: str) -> ElementTree.Element:
    if len(data) > OVF_MAX_BYTES:
        raise OvaError(f'{label} has {len(data)} bytes; an OVF descriptor of more than {OVF_MAX_BYTES} is refused')
    try:
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        raise OvaError(f'{label} is not UTF-8 text (UTF-16?): re-save the descriptor as UTF-8') from exc
    declared = _DECLARED_ENCODING.match(text)
    if declared and declared.group(1).lower().replace('_', '-') not in ('utf-8', 'utf8', 'us-ascii', 'ascii'):
        raise OvaError(f'{label} declares the encoding {declared.group(1)!r}; only UTF-8 descriptors are read')
    if _DTD.search(text):
        # Entities are how XML attacks work (external entities read host files, nested ones
        # exhaust memory); OVF descriptors never declare any.
        raise OvaError(f'{label} has a DOCTYPE or ENTITY declaration, which no OVF descriptor needs: refused')
    try:
        return ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise OvaError(f'{label} is not well-formed XML: {exc}') from exc


def _local(tag: str) -> str:
    return tag.rsplit('}', 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split('}', 1)[0] if tag.startswith('{') else ''


def _ovf_children(element: ElementTree.Element | None, local: str) -> list[ElementTree.Element]:
    if element is None:
        return []
    return [child for child in element if _local(child.tag) == local and _namespace(child.tag) in OVF_NAMESPACES]


def _first_child(element: ElementTree.Element | None, local: str) -> ElementTree.Element | None:
    return next(iter(_ovf_children(element, local)), None)


def _child_text(element: ElementTree.Element | None, local: str, namespace: str | None = None) -> str | None:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == local and (namespace is None or _namespace(child.tag) == namespace):
            return ' '.join((child.text or '').split()) or None
    return None


def _ovf_attribute(element: ElementTree.Element | None, local: str) -> str | None:
    if element is None:
        return None
    for namespace in OVF_NAMESPACES:
        value = element.get(f'{{{namespace}}}{local}')
        if value is not None:
            return value
    return element.get(local)


def _integer(value: str | None) -> int | None:
    # Values may be ${property} references, filled in at deployment: unknown here.
    value = (value or '').strip()
    return int(value) if value.isdigit() else None


def _virtual_system(root: ElementTree.Element, label: str) -> ElementTree.Element:
    systems = [
        element
        for element in root.iter()
        if _local(element.tag) == 'VirtualSystem' and _namespace(element.tag) in OVF_NAMESPACES
    ]
    if not systems:
        raise OvaError(f'{label} describes no VirtualSystem')
    if len(systems) > 1:
        raise OvaError(
            f'{label} describes {len(systems)} virtual machines (a VirtualSystemCollection); an image is one '
            'disk of one machine: export the machine you need on its own'
        )
    return systems[0]


# --- disks ------------------------------------------------------------------------------


def _disks(root: ElementTree.Element, label: str) -> dict[str, OvfDisk]:
    files = {
        _ovf_attribute(element, 'id'): element for element in _ovf_children(_first_child(root, 'References'), 'File')
    }
    disks = {}
    for element in _ovf_children(_first_child(root, 'DiskSection'), 'Disk'):
        disk_id = _ovf_attribute(element, 'diskId') or ''
        file_ref = _ovf_attribute(element, 'fileRef')
        file_element = files.get(file_ref) if file_ref else None
        if file_ref and file_element is None:
            raise OvaError(f'{label}: disk {disk_id!r} names the file {file_ref!r}, which References does not list')
        disks[disk_id] = _disk(disk_id, element, file_element)
    return disks


def _disk(disk_id: str, element: ElementTree.Element, file_element: ElementTree.Element | None) -> OvfDisk:
    units = _ovf_attribute(element, 'capacityAllocationUnits') or 'byte'
    capacity = _integer(_ovf_attribute(element, 'capacity'))
    unit = _unit_bytes(units)
    format_url = _ovf_attribute(element, 'format')
    disk_format, subformat = _disk_format(format_url)
    return OvfDisk(
        disk_id=disk_id,
        file_id=_ovf_attribute(element, 'fileRef'),
        file=_ovf_attribute(file_element, 'href'),
        file_size=_integer(_ovf_attribute(file_element, 'size')),
        compression=_ovf_attribute(file_element, 'compression'),
        chunked=_ovf_attribute(file_element, 'chunkSize') is not None,
        capacity=capacity * unit if capacity is not None and unit else None,
        populated_size=_integer(_ovf_attribute(element, 'populatedSize')),
        format=disk_format,
        subformat=subformat,
        format_url=format_url,
        controller=None,
        controller_model=None,
    )


def _unit_bytes(units: str) -> int | None:
    """Bytes per unit of a DMTF programmatic unit: ``byte * 2^30``, ``byte * 1024``, or an
    older word (``MegaBytes``); None for anything else."""
    terms = [term.strip().lower() for term in units.split('*')]
    factor = _UNIT_WORDS.get(terms[0])
    if factor is None:
        return None
    for term in terms[1:]:
        power = _POWER.match(term)
        if power:
            factor *= int(power.group(1)) ** int(power.group(2))
        elif term.isdigit() and len(term) < 16:
            factor *= int(term)
        else:
            return None
    return factor if factor <= 2**80 else None


def _disk_format(url: str | None) -> tuple[str | None, str | None]:
    if not url:
        return None, None
    lowered = url.lower()
    disk_format = next((name for word, name in _FORMAT_WORDS if word in lowered), None)
    return disk_format, (url.split('#', 1)[1] or None) if '#' in url else None


# --- hardware ---------------------------------------------------------------------------


def _hardware_items(root: ElementTree.Element, system: ElementTree.Element) -> list[dict[str, Any]]:
    """The items of the first VirtualHardwareSection that apply to the default deployment
    configuration, each as {'type': ResourceType, field: text}."""
    section = _first_child(system, 'VirtualHardwareSection')
    default = _default_configuration(root)
    items = []
    for element in section if section is not None else []:
        if _local(element.tag) not in HARDWARE_ITEMS or not _applies(element, default):
            continue
        fields = {}
        for child in element:
            name = 'InstanceID' if _local(child.tag) == 'InstanceId' else _local(child.tag)
            fields.setdefault(name, (child.text or '').strip())
        fields['type'] = _integer(fields.get('ResourceType'))
        items.append(fields)
    return items


def _default_configuration(root: ElementTree.Element) -> str | None:
    configurations = _ovf_children(_first_child(root, 'DeploymentOptionSection'), 'Configuration')
    chosen = next((c for c in configurations if _ovf_attribute(c, 'default') == 'true'), None)
    chosen = chosen if chosen is not None else next(iter(configurations), None)
    return _ovf_attribute(chosen, 'id')


def _applies(element: ElementTree.Element, default: str | None) -> bool:
    # Items bound to a range (min / max) or to another deployment option are not the VM's.
    if _ovf_attribute(element, 'bound') in ('min', 'max'):
        return False
    configurations = _ovf_attribute(element, 'configuration')
    return configurations is None or (default is not None and default in configurations.split())


def _attach_controllers(hardware: list[dict[str, Any]], disks: dict[str, OvfDisk]) -> None:
    controllers = {item.get('InstanceID'): item for item in hardware if item['type'] in (IDE, SCSI, OTHER_STORAGE)}
    for item in hardware:
        if item['type'] != DISK:
            continue
        resource = _HOST_RESOURCE.match(item.get('HostResource', ''))
        controller = controllers.get(item.get('Parent'))
        if not resource or controller is None:
            continue
        kind, reference = resource.groups()
        disk = disks.get(reference) if kind == 'disk' else _disk_of_file_id(reference, disks)
        if disk is not None:
            disk.controller, disk.controller_model = _controller(controller)


def _disk_of_file_id(reference: str, disks: dict[str, OvfDisk]) -> OvfDisk | None:
    # ovf:/file/<id> names a References/File id; the disk is the one using that file.
    return next((disk for disk in disks.values() if disk.file_id == reference), None)


def _controller(item: dict[str, Any]) -> tuple[str, str | None]:
    model = item.get('ResourceSubType') or None
    lowered = (model or '').lower()
    if item['type'] == IDE:
        return 'ide', model
    if item['type'] == SCSI:
        return 'scsi', model
    if 'ahci' in lowered or 'sata' in lowered:
        return 'sata', model
    if 'nvme' in lowered:
        return 'nvme', model
    if 'virtio' in lowered and 'scsi' in lowered:
        return 'scsi', model
    return 'other', model


def _cpus(hardware: list[dict[str, Any]]) -> int | None:
    return next((_integer(item.get('VirtualQuantity')) for item in hardware if item['type'] == CPU), None)


def _memory_mib(hardware: list[dict[str, Any]]) -> int | None:
    item = next((item for item in hardware if item['type'] == MEMORY), None)
    quantity = _integer(item.get('VirtualQuantity')) if item else None
    unit = _unit_bytes(item.get('AllocationUnits') or 'byte * 2^20') if item else None
    if quantity is None or unit is None:
        return None
    return -(-quantity * unit // MIB)


def _firmware(system: ElementTree.Element) -> tuple[str | None, bool | None]:
    """(efi | bios | None, secure boot or None) from VMware's vmw:Config entries or
    VirtualBox's machine settings."""
    settings = {}
    for element in system.iter(f'{{{VMW}}}Config'):
        settings[element.get(f'{{{VMW}}}key')] = (element.get(f'{{{VMW}}}value') or '').strip().lower()
    firmware = settings.get('firmware')
    secure = settings.get('uefi.secureBoot.enabled')
    if firmware is None:
        vbox = next((element for element in system.iter() if _local(element.tag) == 'Firmware'), None)
        vbox_type = (vbox.get('type') or '').lower() if vbox is not None else ''
        firmware = 'efi' if vbox_type.startswith('efi') else ('bios' if vbox_type == 'bios' else None)
    if firmware not in ('efi', 'bios'):
        firmware = None
    return firmware, (None if secure is None else secure == 'true')


# --- choosing the disk ------------------------------------------------------------------


def select_disk(descriptor: OvfDescriptor, wanted: str | None, label: str) -> OvfDisk:
    """The disk to make the image of: ``wanted`` (a file name or disk id), or the only disk
    with a file. Several disks and none named is an error that lists them."""
    with_files = [disk for disk in descriptor.disks if disk.file]
    if wanted:
        chosen = next((disk for disk in descriptor.disks if wanted in (disk.file, disk.disk_id)), None)
        if chosen is None:
            raise OvaError(f'{label} has no disk {wanted!r} ({DISK_OPTION}); its disks: {_disk_list(with_files)}')
        if not chosen.file:
            raise OvaError(f'{label}: disk {wanted!r} is blank (no file): there is nothing to upload')
    elif not with_files:
        raise OvaError(f'{label} names no disk file: there is nothing to make an image of')
    elif len(with_files) > 1:
        raise OvaError(
            f'{label} has {len(with_files)} disks ({_disk_list(with_files)}) and an image holds one: '
            f'give {DISK_OPTION} to pick one by file name or disk id (the boot disk is usually the first); '
            'the others can become images or volumes of their own'
        )
    else:
        chosen = with_files[0]
    plain_name(chosen.file, f'{label}: the disk file')
    if chosen.chunked:
        raise OvaError(
            f'{label}: the disk file {chosen.file!r} is split into chunks (ovf:chunkSize), which is not read: '
            'export the package again without chunking'
        )
    return chosen


def _disk_list(disks: list[OvfDisk]) -> str:
    return ', '.join(disk.file or disk.disk_id for disk in disks) or 'none'


# --- manifests --------------------------------------------------------------------------


def parse_manifest(data: bytes, label: str) -> dict[str, tuple[str, str]]:
    """{file name: (algorithm, hex digest)} from ``SHA256(disk1.vmdk)= ...`` lines (VMware
    writes that, VirtualBox ``SHA256 (disk1.vmdk) = ...``)."""
    try:
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        raise OvaError(f'{label} is not UTF-8 text') from exc
    digests: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _MANIFEST_LINE.match(line.strip())
        algorithm = match.group(1).lower() if match else ''
        if not match or len(match.group(3)) != _DIGEST_LENGTHS[algorithm]:
            raise OvaError(f'{label}:{number}: not a SHA1, SHA256 or SHA512 manifest line: {line.strip()[:100]!r}')
        name = match.group(2).strip()
        if name in digests:
            raise OvaError(f'{label}:{number}: a second digest for {name!r}')
        digests[name] = (algorithm, match.group(3).lower())
    return digests


def _verify(manifest: dict[str, tuple[str, str]], name: str, digests: dict[str, str], label: str) -> None:
    if name not in manifest:
        raise OvaError(f'{label}: the manifest has no digest for {name!r}, which is read: the package is incomplete')
    algorithm, expected = manifest[name]
    if digests.get(algorithm) != expected:
        raise OvaError(
            f'{label}: {name!r} does not match the manifest ({algorithm.upper()} {digests.get(algorithm)}, the '
            f'manifest says {expected}): the file was changed or damaged since the package was made'
        )


def _bytes_digests(data: bytes) -> dict[str, str]:
    return {algorithm: hashlib.new(algorithm, data).hexdigest() for algorithm in _DIGEST_LENGTHS}


# --- the bundle -------------------------------------------------------------------------


class OvaBundle:
    """An OVA or OVF read: the descriptor's facts, the chosen disk and its file.

    For an OVA the disk file is in private scratch space, removed by close() (or the end of a
    ``with`` block); for a .ovf it is the file next to the descriptor.
    """

    def __init__(self, source: str, kind: str, sha256: str, descriptor_name: str, descriptor: OvfDescriptor) -> None:
        self.source = source  # the .ova or .ovf read (absolute path)
        self.kind = kind  # 'ova' or 'ovf'
        self.sha256 = sha256  # of the .ova file, or of the .ovf descriptor
        self.descriptor_name = descriptor_name
        self.descriptor = descriptor
        self.disk = OvfDisk('')  # set by _set_disk
        self.disk_path = ''  # the chosen disk's file, for inspect_source
        self.disk_sha256 = ''
        self.disk_size = 0
        self.manifest: str | None = None  # the manifest's name, when there was one
        self.verified: list[str] = []  # the files whose digests matched it
        self._workdir: str | None = None

    def _set_disk(self, disk: OvfDisk, path: str, size: int, digests: dict[str, str], label: str) -> None:
        if disk.file_size is not None and disk.file_size != size:
            raise OvaError(
                f'{label}: the OVF says {disk.file!r} has {disk.file_size} bytes, the file has {size}: '
                'the package is damaged or was changed'
            )
        self.disk, self.disk_path, self.disk_size, self.disk_sha256 = disk, path, size, digests['sha256']

    def _set_manifest(
        self, name: str, manifest: dict[str, tuple[str, str]], data: bytes, digests: dict[str, str]
    ) -> None:
        """Both files read must match the manifest: the descriptor and the disk."""
        label = os.path.basename(self.source)
        _verify(manifest, self.descriptor_name, _bytes_digests(data), label)
        _verify(manifest, self.disk.file or '', digests, label)
        self.manifest, self.verified = name, [self.descriptor_name, self.disk.file or '']

    def facts(self) -> dict[str, Any]:
        """What was read, as plain data for a module's result."""
        return {
            'source': self.source,
            'kind': self.kind,
            'sha256': self.sha256,
            'descriptor': self.descriptor_name,
            'ovf': dataclasses.asdict(self.descriptor),
            'disk': {**dataclasses.asdict(self.disk), 'sha256': self.disk_sha256, 'size': self.disk_size},
            'manifest': {'file': self.manifest, 'verified': list(self.verified)},
        }

    def close(self) -> None:
        remove_workdir(self._workdir)
        self._workdir = None

    def __enter__(self) -> OvaBundle:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def read_ova(path: str, scratch_dir: str, max_bytes: int | None = None, disk: str | None = None) -> OvaBundle:
    """Read an OVA (a tar, possibly compressed) and write its chosen disk into a private
    directory under ``scratch_dir``; at most ``max_bytes`` are written. ``disk`` picks one
    by file name or disk id. The directory is removed on failure and by the bundle's close().
    """
    path = os.path.abspath(path)
    label = os.path.basename(path)
    workdir = private_workdir(scratch_dir, 'ova')
    try:
        with _sigterm_raises():
            reader = _OvaReader(label, workdir, ByteBudget(max_bytes, label), disk)
            with TarStream(path, label) as tar:
                for member in tar:
                    reader.take(member)
                bundle = reader.bundle(path, tar.sha256 or '', tar.names)
    except BaseException:
        remove_workdir(workdir)
        raise
    bundle._workdir = workdir
    return bundle


class _OvaReader:
    """The members of an OVA as they pass: the descriptor first, then its manifest, the
    chosen disk written out, everything else skipped."""

    def __init__(self, label: str, workdir: str, budget: ByteBudget, wanted: str | None) -> None:
        self.label = label
        self.workdir = workdir
        self.budget = budget
        self.wanted = wanted
        self.descriptor_name = ''
        self.descriptor_data = b''
        self.descriptor: OvfDescriptor | None = None
        self.disk: OvfDisk | None = None
        self.manifest_name = ''
        self.manifest: dict[str, tuple[str, str]] | None = None
        self.extracted: Extracted | None = None

    def take(self, member: TarMember) -> None:
        if self.descriptor is None:
            self._take_descriptor(member)
        elif member.name == self.manifest_name:
            self.manifest = parse_manifest(member.read(MANIFEST_MAX_BYTES, 'manifest'), f'{self.label}: {member.name}')
        elif self.disk is not None and member.name == self.disk.file:
            self.extracted = member.extract(self.workdir, self.budget, self._algorithms(member.name))

    def _take_descriptor(self, member: TarMember) -> None:
        if not member.name.lower().endswith('.ovf'):
            raise OvaError(
                f'{self.label}: the first member is {member.name!r}, not the .ovf descriptor the OVF standard puts '
                'first: repack it (tar -cf x.ova x.ovf x.mf disk1.vmdk) or extract it and read the .ovf'
            )
        self.descriptor_name = member.name
        self.descriptor_data = member.read(OVF_MAX_BYTES, 'OVF descriptor')
        self.descriptor = parse_ovf(self.descriptor_data, f'{self.label}: {member.name}')
        self.disk = select_disk(self.descriptor, self.wanted, self.label)
        self.manifest_name = _manifest_name(member.name)

    def _algorithms(self, name: str) -> tuple[str, ...]:
        # Before the manifest (the standard puts it second) every digest it might use.
        if self.manifest is None:
            return tuple(_DIGEST_LENGTHS)
        return (self.manifest[name][0],) if name in self.manifest else ()

    def bundle(self, path: str, sha256: str, names: list[str]) -> OvaBundle:
        if self.descriptor is None or self.disk is None:
            raise OvaError(f'{self.label} holds no files')
        if self.extracted is None:
            raise OvaError(
                f'{self.label}: the OVF names the disk file {self.disk.file!r}, which the OVA does not hold '
                f'(members: {", ".join(names)})'
            )
        extracted = self.extracted
        bundle = OvaBundle(path, 'ova', sha256, self.descriptor_name, self.descriptor)
        bundle._set_disk(self.disk, extracted.path, extracted.size, extracted.digests, self.label)
        if self.manifest is not None:
            bundle._set_manifest(self.manifest_name, self.manifest, self.descriptor_data, extracted.digests)
        return bundle


def read_ovf(path: str, disk: str | None = None) -> OvaBundle:
    """Read a plain .ovf whose disks lie beside it. The chosen disk must be a plain file name
    of a regular file in the descriptor's directory (a symlink is refused); a manifest
    ``<name>.mf`` beside it is verified. Nothing is copied: close() has nothing to remove."""
    path = os.path.abspath(path)
    label = os.path.basename(path)
    directory = os.path.dirname(path)
    data = _read_small(path, OVF_MAX_BYTES, 'the OVF descriptor')
    descriptor = parse_ovf(data, label)
    chosen = select_disk(descriptor, disk, label)
    disk_path = sibling_file(directory, chosen.file or '', f'{label}: the disk file')
    manifest = _sibling_manifest(path, label)
    algorithms = (manifest[chosen.file][0],) if manifest and chosen.file in manifest else ()
    digests = file_digests(disk_path, algorithms)
    bundle = OvaBundle(path, 'ovf', hashlib.sha256(data).hexdigest(), label, descriptor)
    bundle._set_disk(chosen, disk_path, os.lstat(disk_path).st_size, digests, label)
    if manifest is not None:
        bundle._set_manifest(_manifest_name(label), manifest, data, digests)
    return bundle


def _manifest_name(descriptor_name: str) -> str:
    return descriptor_name[: -len('.ovf')] + '.mf'


def _read_small(path: str, limit: int, what: str) -> bytes:
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OvaError(f'{path}: {what} is not a regular file')
    size = info.st_size
    if size > limit:
        raise OvaError(f'{path}: {what} has {size} bytes, more than the {limit} accepted')
    with open(path, 'rb') as stream:
        return stream.read(limit + 1)


def _sibling_manifest(path: str, label: str) -> dict[str, tuple[str, str]] | None:
    if not path.lower().endswith('.ovf'):
        return None
    name = _manifest_name(os.path.basename(path))
    if not os.path.lexists(os.path.join(os.path.dirname(path), name)):
        return None
    manifest = sibling_file(os.path.dirname(path), name, f'{label}: the manifest')
    return parse_manifest(_read_small(manifest, MANIFEST_MAX_BYTES, 'the manifest'), name)


# --- sizes ------------------------------------------------------------------------------


def size_facts(bundle: OvaBundle, virtual_size: int) -> dict[str, Any]:
    """The OVF's capacity next to the disk's virtual size (as the format inspector read it).

    The image keeps the disk's virtual size - that is what the bytes hold and what Glance
    records; the capacity is a fact. When they differ, ``mismatch`` says so: a capacity larger
    than the disk is the "OVA size mismatch" peer tools report (the VM's disk was larger than
    the exported file describes, or the descriptor was edited). ``min_disk`` is the virtual
    size in whole GiB, rounded up (Glance's min_disk unit).
    """
    capacity = bundle.disk.capacity
    mismatch = None
    if capacity is not None and capacity != virtual_size:
        relation = 'larger' if capacity > virtual_size else 'smaller'
        mismatch = (
            f'the OVF gives disk {bundle.disk.file!r} a capacity of {capacity} bytes, {relation} than the '
            f'{virtual_size} bytes of virtual size its file holds; the image keeps the virtual size of the file'
        )
    return {
        'ovf_capacity': capacity,
        'virtual_size': virtual_size,
        'min_disk': -(-virtual_size // GIB),
        'mismatch': mismatch,
    }


# --- Glance properties for Nova ---------------------------------------------------------

# vmw:osType / vbox:OSType prefixes (lower case) -> os_distro, in the libosinfo vocabulary
# Glance documents. Longer prefixes first.
_VMWARE_DISTROS = (
    ('ubuntu', 'ubuntu'),
    ('debian', 'debian'),
    ('rhel', 'rhel'),
    ('centos', 'centos'),
    ('fedora', 'fedora'),
    ('sles', 'sles'),
    ('opensuse', 'opensuse'),
    ('rockylinux', 'rocky'),
    ('almalinux', 'almalinux'),
    ('freebsd', 'freebsd'),
    ('win', 'windows'),
)
_VIRTUALBOX_DISTROS = (
    ('ubuntu', 'ubuntu'),
    ('debian', 'debian'),
    ('redhat', 'rhel'),
    ('fedora', 'fedora'),
    ('opensuse', 'opensuse'),
    ('suse_le', 'sles'),
    ('archlinux', 'arch'),
    ('gentoo', 'gentoo'),
    ('freebsd', 'freebsd'),
    ('windows', 'windows'),
)
_LINUX_DISTROS = {'ubuntu', 'debian', 'rhel', 'centos', 'fedora', 'sles', 'opensuse', 'rocky', 'almalinux', 'arch'}
_LINUX_WORDS = ('linux', 'photon', 'coreos', 'asianux', 'mandr', 'turbo', 'oracle', 'suse', 'gentoo')
# CIM_OperatingSystem OSType codes (DMTF) -> (os_type, os_distro).
_CIM_WINDOWS = (15, 16, 17, 18, 19, 58, 63, 67, 69, 70, 71, 72, 73, 74, 75, 76, 77, 103, 105, *range(111, 121))
_CIM_OS = {
    **dict.fromkeys(_CIM_WINDOWS, ('windows', 'windows')),
    **dict.fromkeys((36, 82, 83, 86, 87, 88, 89, 90, 91, 92, 97, 98, 99, 100, 101, 108, 109), ('linux', None)),
    79: ('linux', 'rhel'),
    80: ('linux', 'rhel'),
    84: ('linux', 'sles'),
    85: ('linux', 'sles'),
    93: ('linux', 'ubuntu'),
    94: ('linux', 'ubuntu'),
    95: ('linux', 'debian'),
    96: ('linux', 'debian'),
    106: ('linux', 'centos'),
    107: ('linux', 'centos'),
    42: (None, 'freebsd'),
    78: (None, 'freebsd'),
    43: (None, 'netbsd'),
    65: (None, 'openbsd'),
}
# NIC ResourceSubType (lower case) -> hw_vif_model, per driver (Glance's list, Nova's enums).
_LIBVIRT_VIFS = {'e1000': 'e1000', 'e1000e': 'e1000e', 'pcnet32': 'pcnet', 'virtio': 'virtio', 'rtl8139': 'rtl8139'}
_VMWARE_VIFS = {
    'e1000': 'e1000',
    'e1000e': 'e1000e',
    'pcnet32': 'pcnet',
    'vmxnet': 'vmxnet',
    'vmxnet2': 'vmxnet',
    'vmxnet3': 'vmxnet3',
}
# SCSI controller ResourceSubType (lower case) -> vmware_adaptertype.
_VMWARE_ADAPTERS = {
    'lsilogic': 'lsiLogic',
    'lsilogicsas': 'lsiLogicsas',
    'buslogic': 'busLogic',
    'virtualscsi': 'paraVirtual',
    'pvscsi': 'paraVirtual',
}


def nova_properties(bundle: OvaBundle, hypervisor: str = 'libvirt') -> dict[str, Any]:
    """What the OVF says, as Glance image metadata Nova acts on, for Nova's ``libvirt``
    (KVM/QEMU) or ``vmware`` driver.

    Returns {'properties': {...}, 'min_ram': MiB or None, 'name': default image name or
    None, 'notes': [what was not mapped, and why]}. Only values the driver accepts are set;
    a device with no such value is left to Nova's default and named in ``notes``.
    """
    if hypervisor not in HYPERVISORS:
        raise OvaError(f'hypervisor {hypervisor!r} is not one of {", ".join(HYPERVISORS)}')
    descriptor, notes = bundle.descriptor, []
    properties = _os_properties(descriptor)
    if descriptor.firmware:
        properties['hw_firmware_type'] = 'uefi' if descriptor.firmware == 'efi' else 'bios'
    if descriptor.cpus:
        # Nova takes the vCPU count from the flavor; hw_cpu_* only shape its topology and
        # fail a boot on a flavor that cannot match them. Kept as a hint for picking a flavor.
        properties['imagegov_ovf_cpus'] = str(descriptor.cpus)
    if hypervisor == 'libvirt':
        properties.update(_libvirt_hardware(bundle, notes))
    else:
        properties.update(_vmware_hardware(bundle, notes))
    if descriptor.glance_properties:
        # The exact values of the image the package was exported from win over what the
        # hardware implies.
        properties.update(descriptor.glance_properties)
        notes.append(f"{len(descriptor.glance_properties)} properties restored from the package's {GLANCE_SECTION}")
    return {'properties': properties, 'min_ram': descriptor.memory_mib, 'name': default_name(bundle), 'notes': notes}


def _os_properties(descriptor: OvfDescriptor) -> dict[str, str]:
    os_type, distro = None, None
    if descriptor.os_vmware:
        distro = _prefixed(descriptor.os_vmware, _VMWARE_DISTROS)
        os_type = _os_type(descriptor.os_vmware, distro)
    elif descriptor.os_virtualbox:
        distro = _prefixed(descriptor.os_virtualbox, _VIRTUALBOX_DISTROS)
        os_type = _os_type(descriptor.os_virtualbox, distro)
    if os_type is None and distro is None and descriptor.os_cim_id is not None:
        os_type, distro = _CIM_OS.get(descriptor.os_cim_id, (None, None))
    properties = {}
    if os_type:
        properties['os_type'] = os_type
    if distro:
        properties['os_distro'] = distro
    return properties


def _prefixed(value: str, table: tuple[tuple[str, str], ...]) -> str | None:
    lowered = value.lower()
    return next((distro for prefix, distro in table if lowered.startswith(prefix)), None)


def _os_type(value: str, distro: str | None) -> str | None:
    if distro == 'windows':
        return 'windows'
    if distro in _LINUX_DISTROS or any(word in value.lower() for word in _LINUX_WORDS):
        return 'linux'
    return None


def _libvirt_hardware(bundle: OvaBundle, notes: list[str]) -> dict[str, str]:
    properties = {}
    disk, descriptor = bundle.disk, bundle.descriptor
    if disk.controller in ('ide', 'sata'):
        properties['hw_disk_bus'] = disk.controller
    elif disk.controller == 'scsi':
        # Glance documents virtio-scsi as the libvirt driver's SCSI model; QEMU does not
        # emulate VMware's LSI Logic or BusLogic cards.
        properties.update(hw_disk_bus='scsi', hw_scsi_model='virtio-scsi')
        if 'virtio' not in (disk.controller_model or '').lower():
            notes.append(
                f'the disk was on a {disk.controller_model or "SCSI"} controller and becomes virtio-scsi: the guest '
                'needs the virtio_scsi driver in its initramfs (Windows: the virtio-win drivers) to find its disk'
            )
    else:
        notes.append(_unmapped_bus(disk))
    if descriptor.secure_boot and descriptor.firmware == 'efi':
        properties['os_secure_boot'] = 'required'
        notes.append('Secure Boot was on: os_secure_boot=required; Nova needs the q35 machine type for it')
    properties.update(_vif_model(descriptor, _LIBVIRT_VIFS, 'libvirt', notes))
    return properties


def _vmware_hardware(bundle: OvaBundle, notes: list[str]) -> dict[str, str]:
    properties = {}
    disk, descriptor = bundle.disk, bundle.descriptor
    if descriptor.os_vmware:
        properties['vmware_ostype'] = descriptor.os_vmware
    adapter = _VMWARE_ADAPTERS.get((disk.controller_model or '').lower()) if disk.controller == 'scsi' else None
    if disk.controller == 'ide':
        adapter = 'ide'
    if adapter:
        properties['vmware_adaptertype'] = adapter
    else:
        notes.append(_unmapped_bus(disk))
    if (disk.subformat or '').lower() == 'streamoptimized':
        # As in the package, and as convert_to vmdk writes it.
        properties['vmware_disktype'] = 'streamOptimized'
    properties.update(_vif_model(descriptor, _VMWARE_VIFS, 'vmware', notes))
    return properties


def _unmapped_bus(disk: OvfDisk) -> str:
    where = f'a {disk.controller} controller ({disk.controller_model})' if disk.controller else 'no known controller'
    return f'the disk was on {where}, which has no Nova disk bus here: Nova chooses the bus (virtio by default)'


def _vif_model(descriptor: OvfDescriptor, table: dict[str, str], driver: str, notes: list[str]) -> dict[str, str]:
    if not descriptor.nics:
        return {}
    models = {nic.lower().replace('-net', '') for nic in descriptor.nics}
    first = descriptor.nics[0]
    if len(models) > 1:
        notes.append(f'the NICs differ ({", ".join(descriptor.nics)}); hw_vif_model applies to all: the first one')
    model = table.get(first.lower().replace('-net', ''))
    if model is None:
        notes.append(f'NIC {first or "(no model)"} has no hw_vif_model the {driver} driver accepts: Nova chooses')
        return {}
    return {'hw_vif_model': model}


def default_name(bundle: OvaBundle) -> str | None:
    """A name for the image: the VM's name, else the product and version, else the system id."""
    descriptor = bundle.descriptor
    product = ' '.join(part for part in (descriptor.product, descriptor.version) if part)
    name = ' '.join((descriptor.name or product or descriptor.system_id or '').split())
    return name[:255] or None
