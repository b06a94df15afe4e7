# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An OVA made of a Glance image: the reverse of what _ova reads.

The tar holds the OVF descriptor first, the manifest second (as the OVF standard orders
them, so a reader verifies the disk while it passes) and then the disk. The descriptor
states the image's facts the way _ova maps them back on import - firmware, disk bus, NIC
model, OS, memory, CPUs - using _ova's own tables, and carries every other property of the
image in the collection's own OVF section (``GLANCE_SECTION``, ``ovf:required="false"`` so
other tools skip it), which _ova restores exactly.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import re
import tarfile
import time
from typing import Any
from xml.etree import ElementTree

from ._ova import (
    _CIM_OS,
    _LIBVIRT_VIFS,
    CPU,
    DISK,
    GLANCE_NAMESPACE,
    GLANCE_SECTION,
    IDE,
    MEMORY,
    NIC,
    OTHER_STORAGE,
    OVF_NAMESPACES,
    SCSI,
    VMW,
    carried_property,
)
from ._state import BASE_FIELDS, VOLATILE_FIELDS

OVF = OVF_NAMESPACES[0]
RASD = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData'
VSSD = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData'
CPUS_PROPERTY = 'imagegov_ovf_cpus'  # what _ova.nova_properties records of the OVF's CPUs
# ovf:format of each disk format (the URL's words are what _ova reads back).
DISK_FORMAT_URLS = {
    'vmdk': 'http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized',
    'qcow2': 'http://www.gnome.org/~markmc/qcow-image-format.html',
    'raw': 'http://www.qemu.org/raw',
}
# A VMware guest id for each os_distro, each read back by _ova as the same distro and os_type.
VMWARE_OS_IDS = {
    'ubuntu': 'ubuntu64Guest',
    'debian': 'debian11_64Guest',
    'rhel': 'rhel9_64Guest',
    'centos': 'centos8_64Guest',
    'fedora': 'fedora64Guest',
    'sles': 'sles15_64Guest',
    'opensuse': 'opensuse64Guest',
    'rocky': 'rockylinux_64Guest',
    'almalinux': 'almalinux_64Guest',
    'freebsd': 'freebsd13_64Guest',
    'windows': 'windows2019srv_64Guest',
}
OTHER_LINUX_OS_ID = 'other5xLinux64Guest'
# hw_disk_bus -> (controller ResourceType, ResourceSubType); virtio or none: a virtio
# controller of no CIM type, which _ova maps to no bus (Nova's default).
CONTROLLERS = {
    'ide': (IDE, 'PIIX4'),
    'sata': (OTHER_STORAGE, 'AHCI'),
    'scsi': (SCSI, 'virtio-scsi'),
}
DEFAULT_CONTROLLER = (OTHER_STORAGE, 'virtio')
# NIC ResourceSubType for each hw_vif_model (_ova's own table, reversed).
VIF_SUBTYPES = {model: subtype for subtype, model in _LIBVIRT_VIFS.items()}


def _register_namespaces() -> None:
    # The prefixes other tools write (and people read) instead of ns0, ns1...
    for prefix, uri in (('ovf', OVF), ('rasd', RASD), ('vssd', VSSD), ('vmw', VMW), ('imagegov', GLANCE_NAMESPACE)):
        ElementTree.register_namespace(prefix, uri)


_register_namespaces()


def user_properties(image: dict[str, Any]) -> dict[str, str]:
    """The image's own properties (Glance returns them as top-level keys)."""
    return {
        key: str(value)
        for key, value in image.items()
        if key not in BASE_FIELDS and key not in VOLATILE_FIELDS and value is not None
    }


def carried_properties(image: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(properties the OVF carries, names of those it does not: bookkeeping of this cloud,
    links to its images, signatures of the stored bytes - see _ova.carried_property)."""
    carried, left = {}, []
    for key, value in sorted(user_properties(image).items()):
        if carried_property(key):
            carried[key] = value
        else:
            left.append(key)
    return carried, left


def _element(parent: ElementTree.Element, namespace: str, tag: str, text: Any = None, **attributes: Any):
    element = ElementTree.SubElement(parent, f'{{{namespace}}}{tag}', {k: str(v) for k, v in attributes.items()})
    if text is not None:
        element.text = str(text)
    return element


def _info(parent: ElementTree.Element, text: str) -> None:
    _element(parent, OVF, 'Info', text)


def _item(section: ElementTree.Element, **fields: Any) -> None:
    # CIM_ResourceAllocationSettingData's schema orders its fields alphabetically.
    item = _element(section, OVF, 'Item')
    for name in sorted(fields):
        if fields[name] is not None:
            _element(item, RASD, name, fields[name])


def _os_ids(properties: dict[str, str]) -> tuple[int | None, str | None]:
    """(CIM OSType, VMware guest id) that _ova reads back as this os_type / os_distro."""
    distro, os_type = properties.get('os_distro'), properties.get('os_type')
    table = sorted(_CIM_OS.items())
    codes = [code for code, (kind, name) in table if distro and name == distro and (os_type or kind) == kind]
    if not codes and os_type in ('linux', 'windows'):
        codes = [code for code, (kind, name) in table if kind == os_type and name in (None, os_type)]
    vmware = VMWARE_OS_IDS.get(distro or '') or {'linux': OTHER_LINUX_OS_ID}.get(os_type or '')
    if vmware is None and os_type == 'windows':
        vmware = VMWARE_OS_IDS['windows']
    return (codes[-1] if codes else None), vmware


def build_ovf(image: dict[str, Any], disk: dict[str, Any]) -> bytes:
    """The OVF descriptor of ``image`` with one disk: ``disk`` has file (its name in the OVA),
    format (vmdk / qcow2 / raw), size (the file's bytes) and virtual_size."""
    properties, _left = carried_properties(image)
    name = image.get('name') or image['id']
    envelope = ElementTree.Element(f'{{{OVF}}}Envelope')
    references = _element(envelope, OVF, 'References')
    _element(
        references,
        OVF,
        'File',
        **{f'{{{OVF}}}id': 'file1', f'{{{OVF}}}href': disk['file'], f'{{{OVF}}}size': disk['size']},
    )
    disks = _element(envelope, OVF, 'DiskSection')
    _info(disks, 'Virtual disk information')
    _element(
        disks,
        OVF,
        'Disk',
        **{
            f'{{{OVF}}}capacity': disk['virtual_size'],
            f'{{{OVF}}}capacityAllocationUnits': 'byte',
            f'{{{OVF}}}diskId': 'vmdisk1',
            f'{{{OVF}}}fileRef': 'file1',
            f'{{{OVF}}}format': DISK_FORMAT_URLS[disk['format']],
        },
    )
    vif = VIF_SUBTYPES.get(properties.get('hw_vif_model', ''))
    if vif:
        networks = _element(envelope, OVF, 'NetworkSection')
        _info(networks, 'The networks the VM connects to')
        _element(networks, OVF, 'Network', **{f'{{{OVF}}}name': 'VM Network'})
    system = _element(envelope, OVF, 'VirtualSystem', **{f'{{{OVF}}}id': name})
    _info(system, 'A virtual machine made from a Glance image')
    _element(system, OVF, 'Name', name)
    cim, vmware = _os_ids(properties)
    if cim is not None or vmware:
        attributes = {f'{{{OVF}}}id': cim if cim is not None else 1}
        if vmware:
            attributes[f'{{{VMW}}}osType'] = vmware
        os_section = _element(system, OVF, 'OperatingSystemSection', **attributes)
        _info(os_section, 'The guest operating system')
    _hardware(system, image, properties, name, vif)
    _glance_section(system, image, properties)
    ElementTree.indent(envelope)
    return ElementTree.tostring(envelope, encoding='utf-8', xml_declaration=True) + b'\n'


def _hardware(
    system: ElementTree.Element, image: dict[str, Any], properties: dict[str, str], name: str, vif: str | None
):
    hardware = _element(system, OVF, 'VirtualHardwareSection')
    _info(hardware, 'Virtual hardware requirements')
    settings = _element(hardware, OVF, 'System')
    _element(settings, VSSD, 'ElementName', 'Virtual Hardware Family')
    _element(settings, VSSD, 'InstanceID', 0)
    _element(settings, VSSD, 'VirtualSystemIdentifier', name)
    cpus = str(image.get(CPUS_PROPERTY) or '')
    if cpus.isdigit() and int(cpus) > 0:
        _item(hardware, ElementName=f'{cpus} virtual CPU(s)', InstanceID=1, ResourceType=CPU, VirtualQuantity=cpus)
    if image.get('min_ram'):
        _item(
            hardware,
            AllocationUnits='byte * 2^20',
            ElementName=f'{image["min_ram"]}MB of memory',
            InstanceID=2,
            ResourceType=MEMORY,
            VirtualQuantity=image['min_ram'],
        )
    kind, subtype = CONTROLLERS.get(properties.get('hw_disk_bus', ''), DEFAULT_CONTROLLER)
    _item(hardware, ElementName='Disk controller', InstanceID=3, ResourceSubType=subtype, ResourceType=kind)
    _item(
        hardware,
        AddressOnParent=0,
        ElementName='Hard disk 1',
        HostResource='ovf:/disk/vmdisk1',
        InstanceID=4,
        Parent=3,
        ResourceType=DISK,
    )
    if vif:
        _item(
            hardware,
            AutomaticAllocation='true',
            Connection='VM Network',
            ElementName='Network adapter 1',
            InstanceID=5,
            ResourceSubType=vif,
            ResourceType=NIC,
        )
    firmware = properties.get('hw_firmware_type')
    if firmware in ('uefi', 'bios'):
        _vmw_config(hardware, 'firmware', 'efi' if firmware == 'uefi' else 'bios')
        if firmware == 'uefi' and properties.get('os_secure_boot') == 'required':
            _vmw_config(hardware, 'uefi.secureBoot.enabled', 'true')


def _vmw_config(hardware: ElementTree.Element, key: str, value: str) -> None:
    _element(hardware, VMW, 'Config', **{f'{{{OVF}}}required': 'false', f'{{{VMW}}}key': key, f'{{{VMW}}}value': value})


def _glance_section(system: ElementTree.Element, image: dict[str, Any], properties: dict[str, str]) -> None:
    section = _element(
        system,
        GLANCE_NAMESPACE,
        GLANCE_SECTION,
        **{
            f'{{{OVF}}}required': 'false',
            f'{{{GLANCE_NAMESPACE}}}imageId': image['id'],
            f'{{{GLANCE_NAMESPACE}}}osHashAlgo': image.get('os_hash_algo') or '',
            f'{{{GLANCE_NAMESPACE}}}osHashValue': image.get('os_hash_value') or '',
        },
    )
    _info(section, 'The Glance image properties (imagegov.openstack), restored on import')
    for key, value in sorted(properties.items()):
        _element(
            section,
            GLANCE_NAMESPACE,
            'Property',
            **{f'{{{GLANCE_NAMESPACE}}}key': key, f'{{{GLANCE_NAMESPACE}}}value': value},
        )


def manifest(entries: list[tuple[str, str]]) -> bytes:
    """A manifest of (file name, sha256) pairs, as VMware's ovftool writes it."""
    return ''.join(f'SHA256({name})= {digest}\n' for name, digest in entries).encode('ascii')


def package_names(image: dict[str, Any], disk_format: str) -> tuple[str, str, str]:
    """(descriptor, manifest, disk) member names: plain names made of the image's name."""
    stem = re.sub(r'[^A-Za-z0-9._-]+', '_', image.get('name') or '').strip('._')[:100] or 'image'
    return f'{stem}.ovf', f'{stem}.mf', f'{stem}-disk1.{disk_format}'


def image_mtime(image: dict[str, Any]) -> int:
    """The image's creation time, for the members' mtime: the same image packs the same bytes."""
    try:
        return calendar.timegm(time.strptime(image.get('created_at') or '', '%Y-%m-%dT%H:%M:%SZ'))
    except ValueError:
        return 0


class _HashingFile:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.stream.write(data)


def pack_ova(
    out: Any, image: dict[str, Any], disk_path: str, disk_format: str, facts: dict[str, Any]
) -> dict[str, Any]:
    """Write the OVA of ``image`` to the open binary file ``out``; ``facts`` of the disk file
    (sha256, virtual_size). Returns what was packed (names, digests, the OVA's sha256)."""
    ovf_name, mf_name, disk_name = package_names(image, disk_format)
    size = os.path.getsize(disk_path)
    descriptor = build_ovf(
        image, {'file': disk_name, 'format': disk_format, 'size': size, 'virtual_size': facts['virtual_size']}
    )
    listing = manifest([(ovf_name, hashlib.sha256(descriptor).hexdigest()), (disk_name, facts['sha256'])])
    hashing = _HashingFile(out)
    mtime = image_mtime(image)
    with tarfile.open(fileobj=hashing, mode='w|', format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((ovf_name, descriptor), (mf_name, listing)):
            tar.addfile(_member(name, len(data), mtime), _BytesReader(data))
        with open(disk_path, 'rb') as disk:
            tar.addfile(_member(disk_name, size, mtime), disk)
    carried, left = carried_properties(image)
    return {
        'descriptor': ovf_name,
        'manifest': mf_name,
        'disk': {'file': disk_name, 'format': disk_format, 'size': size, 'sha256': facts['sha256']},
        'properties': sorted(carried),
        'not_carried': left,
        'sha256': hashing.digest.hexdigest(),
        'size': hashing.size,
    }


def _member(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uname = info.gname = ''
    return info


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data, self._offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._offset + size
        chunk, self._offset = self._data[self._offset : end], min(end, len(self._data))
        return chunk
