"""OVA and OVF packages: the chosen disk comes out whole and verified, the descriptor's facts
become Glance properties Nova accepts, and every way an archive or a descriptor can reach
outside its package is refused with nothing left in scratch space."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import string
import subprocess
import tarfile

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._bundle import BundleError
from ansible_collections.imagegov.openstack.plugins.module_utils._convert import inspect_source
from ansible_collections.imagegov.openstack.plugins.module_utils._ova import (
    OvaError,
    nova_properties,
    parse_manifest,
    parse_ovf,
    read_ova,
    read_ovf,
    select_disk,
    size_facts,
)

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img')

MIB = 1024**2
DISK_MIB = 16
FIXTURES = pathlib.Path(__file__).parent / 'fixtures' / 'ovf'


def run(args, started):
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started(child)
    out, err = child.communicate()
    return child.returncode, out.decode(), err.decode()


@pytest.fixture
def scratch(tmp_path):
    path = tmp_path / 'scratch'
    path.mkdir()
    yield path
    assert list(path.iterdir()) == [], 'scratch space is left empty'


@pytest.fixture
def vmdk(tmp_path):
    """A streamOptimized vmdk of 16 MiB with data at its start and end, as OVAs carry."""
    raw = tmp_path / 'src.raw'
    with open(raw, 'wb') as disk:
        disk.write(os.urandom(4096))
        disk.seek(DISK_MIB * MIB - 4096)
        disk.write(os.urandom(4096))
    target = tmp_path / 'disk1.vmdk'
    subprocess.run(
        ['qemu-img', 'convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', str(raw), str(target)],
        check=True,
        capture_output=True,
    )
    return target


def _descriptor(fixture, disk_file='disk1.vmdk', disk_size=0, capacity=DISK_MIB):
    template = string.Template((FIXTURES / fixture).read_text())
    return template.substitute(disk_file=disk_file, disk_size=disk_size, capacity=capacity).encode()


def _vmware(vmdk, **overrides):
    return _descriptor('vmware-ubuntu.ovf', **{'disk_size': vmdk.stat().st_size, **overrides})


def _virtualbox(capacity=DISK_MIB * MIB):
    return _descriptor('virtualbox-rhel.ovf', capacity=capacity)


def _sha(data, algorithm='sha256'):
    return hashlib.new(algorithm, data).hexdigest()


def _manifest(files, algorithm='SHA256', bsd=False):
    lines = []
    for name, data in files:
        digest = _sha(data, algorithm.lower())
        lines.append(f'{algorithm} ({name}) = {digest}' if bsd else f'{algorithm}({name})= {digest}')
    return ('\n'.join(lines) + '\n').encode()


def _entry(name, data=b'', **attributes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attributes.items():
        setattr(info, key, value)
    return info, data


def _ova(path, entries, fmt=tarfile.USTAR_FORMAT, opener=open):
    with opener(path, 'wb') as raw, tarfile.open(fileobj=raw, mode='w', format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _standard_ova(tmp_path, vmdk, ovf=None, manifest=True, name='appliance.ova'):
    ovf = ovf if ovf is not None else _vmware(vmdk)
    disk = vmdk.read_bytes()
    entries = [_entry('appliance.ovf', ovf)]
    if manifest:
        entries.append(_entry('appliance.mf', _manifest([('appliance.ovf', ovf), ('disk1.vmdk', disk)])))
    entries.append(_entry('disk1.vmdk', disk))
    return _ova(tmp_path / name, entries)


# --- happy paths ------------------------------------------------------------------------


def test_a_vmware_ova_gives_its_disk_verified_and_its_facts(tmp_path, vmdk, scratch):
    ova = _standard_ova(tmp_path, vmdk)
    with read_ova(str(ova), str(scratch)) as bundle:
        assert pathlib.Path(bundle.disk_path).read_bytes() == vmdk.read_bytes()
        assert os.path.dirname(os.path.dirname(bundle.disk_path)) == str(scratch)
        assert bundle.disk_sha256 == _sha(vmdk.read_bytes())
        assert bundle.sha256 == _sha(ova.read_bytes())
        assert bundle.manifest == 'appliance.mf' and bundle.verified == ['appliance.ovf', 'disk1.vmdk']
        facts = bundle.facts()
        assert facts['disk']['controller'] == 'scsi' and facts['disk']['controller_model'] == 'VirtualSCSI'
        assert facts['disk']['capacity'] == DISK_MIB * MIB
        assert (facts['disk']['format'], facts['disk']['subformat']) == ('vmdk', 'streamOptimized')
        assert facts['ovf']['cpus'] == 2 and facts['ovf']['memory_mib'] == 4096
        assert facts['ovf']['firmware'] == 'efi' and facts['ovf']['secure_boot'] is True
        assert facts['ovf']['nics'] == ['VmxNet3']
        json.dumps(facts)  # a module result must serialise
        with inspect_source(bundle.disk_path, str(scratch), run) as source:
            assert source.safe and source.format == 'vmdk'
            assert source.facts['virtual_size'] == DISK_MIB * MIB


def test_vmware_facts_map_to_libvirt_properties(tmp_path, vmdk, scratch):
    with read_ova(str(_standard_ova(tmp_path, vmdk)), str(scratch)) as bundle:
        mapped = nova_properties(bundle)
    assert mapped['properties'] == {
        'os_type': 'linux',
        'os_distro': 'ubuntu',
        'hw_firmware_type': 'uefi',
        'imagegov_ovf_cpus': '2',
        'hw_disk_bus': 'scsi',
        'hw_scsi_model': 'virtio-scsi',
        'os_secure_boot': 'required',
    }
    assert mapped['min_ram'] == 4096 and mapped['name'] == 'ubuntu-22.04-gold'
    notes = ' '.join(mapped['notes'])
    assert 'VirtualSCSI controller and becomes virtio-scsi' in notes
    assert 'q35' in notes and 'NIC VmxNet3 has no hw_vif_model the libvirt driver accepts' in notes


def test_vmware_facts_map_to_vmware_driver_properties(tmp_path, vmdk, scratch):
    with read_ova(str(_standard_ova(tmp_path, vmdk)), str(scratch)) as bundle:
        mapped = nova_properties(bundle, hypervisor='vmware')
    assert mapped['properties'] == {
        'os_type': 'linux',
        'os_distro': 'ubuntu',
        'hw_firmware_type': 'uefi',
        'imagegov_ovf_cpus': '2',
        'vmware_ostype': 'ubuntu64Guest',
        'vmware_adaptertype': 'paraVirtual',
        'vmware_disktype': 'streamOptimized',
        'hw_vif_model': 'vmxnet3',
    }
    assert mapped['notes'] == []
    with pytest.raises(OvaError, match='hypervisor'):
        nova_properties(bundle, hypervisor='hyperv')


def test_a_virtualbox_ova_with_its_manifest_last_is_verified(tmp_path, vmdk, scratch):
    """VirtualBox writes SHA256 (name) = hex; a manifest after the disk is still checked."""
    ovf, disk = _virtualbox(), vmdk.read_bytes()
    manifest = _manifest([('rhel.ovf', ovf), ('disk1.vmdk', disk)], 'SHA1', bsd=True)
    ova = _ova(
        tmp_path / 'rhel.ova',
        [_entry('rhel.ovf', ovf), _entry('disk1.vmdk', disk), _entry('rhel.mf', manifest)],
        fmt=tarfile.PAX_FORMAT,
    )
    with read_ova(str(ova), str(scratch)) as bundle:
        assert bundle.verified == ['rhel.ovf', 'disk1.vmdk']
        mapped = nova_properties(bundle)
    assert mapped['properties'] == {
        'os_type': 'linux',
        'os_distro': 'rhel',
        'hw_firmware_type': 'uefi',
        'imagegov_ovf_cpus': '1',
        'hw_disk_bus': 'sata',
        'hw_vif_model': 'e1000',
    }
    assert mapped['min_ram'] == 2048 and mapped['name'] == 'RHEL 9 base 9.3' and mapped['notes'] == []


@pytest.mark.parametrize(
    ('controller', 'subtype', 'expected'),
    [
        ('5', 'PIIX4', {'hw_disk_bus': 'ide'}),
        ('20', 'vmware.sata.ahci', {'hw_disk_bus': 'sata'}),
        ('6', 'lsilogic', {'hw_disk_bus': 'scsi', 'hw_scsi_model': 'virtio-scsi'}),
        ('20', 'vmware.nvme.controller', {}),
    ],
)
def test_the_disk_controller_maps_to_a_bus_libvirt_accepts(controller, subtype, expected, tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk).replace(
        b'<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>\n        <rasd:ResourceType>6<',
        f'<rasd:ResourceSubType>{subtype}</rasd:ResourceSubType>\n        <rasd:ResourceType>{controller}<'.encode(),
    )
    with read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch)) as bundle:
        properties = nova_properties(bundle)['properties']
    assert {key: properties[key] for key in ('hw_disk_bus', 'hw_scsi_model') if key in properties} == expected


def test_memory_in_gib_and_a_cim_only_windows_os(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk).replace(
        b'<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>',
        b'<rasd:AllocationUnits>byte*2^30</rasd:AllocationUnits>',
    )
    ovf = ovf.replace(b'<rasd:VirtualQuantity>4096<', b'<rasd:VirtualQuantity>8<')
    ovf = ovf.replace(b'ovf:id="94" vmw:osType="ubuntu64Guest"', b'ovf:id="112"')
    with read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch)) as bundle:
        mapped = nova_properties(bundle)
    assert mapped['min_ram'] == 8192
    assert (mapped['properties']['os_type'], mapped['properties']['os_distro']) == ('windows', 'windows')


def test_an_ovf_2_descriptor_reads_the_same(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk).replace(b'schemas.dmtf.org/ovf/envelope/1', b'schemas.dmtf.org/ovf/envelope/2')
    with read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch)) as bundle:
        assert bundle.descriptor.cpus == 2 and bundle.disk.controller == 'scsi'
        assert bundle.manifest is None and bundle.verified == []


def test_items_of_another_deployment_option_do_not_count(vmdk):
    ovf = _vmware(vmdk).replace(
        b'<NetworkSection>',
        b'<DeploymentOptionSection><Info>sizes</Info>'
        b'<Configuration ovf:id="small"><Label>small</Label><Description>s</Description></Configuration>'
        b'<Configuration ovf:default="true" ovf:id="large"><Label>large</Label><Description>l</Description>'
        b'</Configuration></DeploymentOptionSection><NetworkSection>',
    )
    ovf = ovf.replace(
        b'<Item>\n        <rasd:AllocationUnits>byte * 2^20',
        b'<Item ovf:configuration="small">\n        <rasd:AllocationUnits>byte * 2^20',
    )
    large = (
        b'<Item ovf:configuration="large"><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>'
        b'<rasd:InstanceID>12</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>'
        b'<rasd:VirtualQuantity>16384</rasd:VirtualQuantity></Item>'
    )
    ovf = ovf.replace(
        b'<vmw:Config ovf:required="false" vmw:key="cpuHotAddEnabled"',
        large + b'<vmw:Config ovf:required="false" vmw:key="cpuHotAddEnabled"',
    )
    assert parse_ovf(ovf, 'x.ovf').memory_mib == 16384


def test_a_gzipped_ova_and_a_gzip_disk_file_are_read(tmp_path, vmdk, scratch):
    disk = gzip.compress(vmdk.read_bytes())
    ovf = _vmware(vmdk, disk_size=len(disk)).replace(b'ovf:id="file1"', b'ovf:id="file1" ovf:compression="gzip"')
    ova = _ova(tmp_path / 'a.ova.gz', [_entry('a.ovf', ovf), _entry('disk1.vmdk', disk)], opener=gzip.open)
    with read_ova(str(ova), str(scratch)) as bundle:
        assert bundle.disk.compression == 'gzip' and bundle.sha256 == _sha(ova.read_bytes())
        with inspect_source(bundle.disk_path, str(scratch), run) as source:  # decompresses it
            assert source.safe and source.facts['virtual_size'] == DISK_MIB * MIB


def test_a_raw_disk_is_written_with_its_holes(tmp_path, scratch):
    raw = bytearray(DISK_MIB * MIB)
    raw[:4096] = os.urandom(4096)
    raw = bytes(raw)
    ovf = _descriptor('vmware-ubuntu.ovf', disk_file='disk1.img', disk_size=len(raw))
    with read_ova(str(_ova(tmp_path / 'r.ova', [_entry('r.ovf', ovf), _entry('disk1.img', raw)])), str(scratch)) as b:
        assert os.stat(b.disk_path).st_blocks * 512 < DISK_MIB * MIB // 4
        assert pathlib.Path(b.disk_path).read_bytes() == raw


def test_several_disks_need_a_choice_and_only_the_chosen_one_is_written(tmp_path, vmdk, scratch):
    ovf = (
        _vmware(vmdk)
        .replace(b'</References>', b'<File ovf:href="data.vmdk" ovf:id="file2"/></References>')
        .replace(
            b'</DiskSection>',
            b'<Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>'
            b'</DiskSection>',
        )
    )
    entries = [_entry('a.ovf', ovf), _entry('disk1.vmdk', vmdk.read_bytes()), _entry('data.vmdk', b'x' * 4096)]
    ova = _ova(tmp_path / 'two.ova', entries)
    with pytest.raises(OvaError, match=r'has 2 disks \(disk1.vmdk, data.vmdk\) and an image holds one: give ova_disk'):
        read_ova(str(ova), str(scratch))
    with read_ova(str(ova), str(scratch), disk='vmdisk2') as bundle:
        assert bundle.disk.file == 'data.vmdk' and os.listdir(os.path.dirname(bundle.disk_path)) == ['data.vmdk']
        assert bundle.disk.capacity == 1024**3
    with pytest.raises(OvaError, match="has no disk 'disk3.vmdk'"):
        read_ova(str(ova), str(scratch), disk='disk3.vmdk')


def test_size_facts_report_the_ova_size_mismatch(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk, capacity=DISK_MIB * 4)
    with read_ova(str(_standard_ova(tmp_path, vmdk, ovf)), str(scratch)) as bundle:
        facts = size_facts(bundle, DISK_MIB * MIB)
    assert facts['ovf_capacity'] == DISK_MIB * 4 * MIB and facts['virtual_size'] == DISK_MIB * MIB
    assert facts['min_disk'] == 1
    assert 'larger than the 16777216 bytes of virtual size its file holds' in facts['mismatch']
    assert size_facts(bundle, DISK_MIB * 4 * MIB)['mismatch'] is None


def test_a_plain_ovf_reads_its_disk_in_place(tmp_path, vmdk):
    ovf = _vmware(vmdk)
    (tmp_path / 'appliance.ovf').write_bytes(ovf)
    (tmp_path / 'appliance.mf').write_bytes(_manifest([('appliance.ovf', ovf), ('disk1.vmdk', vmdk.read_bytes())]))
    with read_ovf(str(tmp_path / 'appliance.ovf')) as bundle:
        assert bundle.kind == 'ovf' and bundle.disk_path == str(vmdk)
        assert bundle.verified == ['appliance.ovf', 'disk1.vmdk'] and bundle.sha256 == _sha(ovf)
    assert vmdk.exists()  # close() removes nothing of the user's


# --- attacks: the archive ---------------------------------------------------------------


def _ova_with(tmp_path, vmdk, *extra, disk=True):
    ovf = _vmware(vmdk)
    entries = [_entry('appliance.ovf', ovf), *extra]
    if disk:
        entries.append(_entry('disk1.vmdk', vmdk.read_bytes()))
    return _ova(tmp_path / 'evil.ova', entries, fmt=tarfile.PAX_FORMAT)


ARCHIVE_ATTACKS = {
    'symlink named as the disk': (
        lambda: _entry('disk1.vmdk', type=tarfile.SYMTYPE, linkname='/etc/passwd'),
        "member 'disk1.vmdk' is a symlink to '/etc/passwd'",
    ),
    'hardlink': (
        lambda: _entry('disk1.vmdk', type=tarfile.LNKTYPE, linkname='/etc/shadow'),
        'is a hardlink',
    ),
    '../ name': (lambda: _entry('../../etc/cron.d/evil', b'* * * * * root id\n'), 'has a directory part'),
    'absolute name': (lambda: _entry('/etc/cron.d/evil', b'x'), 'has a directory part or is absolute'),
    'device file': (lambda: _entry('sda', type=tarfile.BLKTYPE, devmajor=8, devminor=0), 'is a device file'),
    'character device': (lambda: _entry('mem', type=tarfile.CHRTYPE, devmajor=1, devminor=1), 'is a device file'),
    'fifo': (lambda: _entry('pipe', type=tarfile.FIFOTYPE), 'is a FIFO'),
    'directory': (lambda: _entry('sub', type=tarfile.DIRTYPE), 'is a directory'),
    'newline in a name': (lambda: _entry('disk1.vmdk\nSHA256(x)= 00', b'x'), 'control character'),
    'dot-dot': (lambda: _entry('..', b'x'), 'it is . or ..'),
}


@pytest.mark.parametrize('attack', sorted(ARCHIVE_ATTACKS))
def test_an_archive_member_that_is_no_plain_file_refuses_the_ova(attack, tmp_path, vmdk, scratch):
    make, message = ARCHIVE_ATTACKS[attack]
    ova = _ova_with(tmp_path, vmdk, make())
    with pytest.raises(BundleError, match=message):
        read_ova(str(ova), str(scratch))
    assert not (tmp_path / 'etc').exists()


def test_a_name_twice_is_refused_rather_than_picked(tmp_path, vmdk, scratch):
    ova = _ova_with(tmp_path, vmdk, _entry('disk1.vmdk', b'the other disk1.vmdk'))
    with pytest.raises(BundleError, match="two members are named 'disk1.vmdk'"):
        read_ova(str(ova), str(scratch))


def test_a_dot_slash_prefix_names_the_same_member(tmp_path, vmdk, scratch):
    ova = _ova_with(tmp_path, vmdk, _entry('./disk1.vmdk', b'a second disk1.vmdk'))
    with pytest.raises(BundleError, match="two members are named 'disk1.vmdk'"):
        read_ova(str(ova), str(scratch))


def test_a_member_larger_than_max_bytes_is_refused_before_it_is_written(tmp_path, vmdk, scratch):
    ova = _standard_ova(tmp_path, vmdk)
    with pytest.raises(BundleError, match=r"member 'disk1.vmdk' has \d+ bytes, .* more than the limit of 1000"):
        read_ova(str(ova), str(scratch), max_bytes=1000)


def test_a_pax_header_cannot_fill_memory(tmp_path, vmdk, scratch):
    info, data = _entry('disk1.vmdk', vmdk.read_bytes())
    info.pax_headers = {'comment': 'x' * (2 * MIB)}
    ova = _ova(tmp_path / 'pax.ova', [_entry('a.ovf', _vmware(vmdk)), (info, data)], fmt=tarfile.PAX_FORMAT)
    with pytest.raises(BundleError, match='a tar header .* is larger than 1048576 bytes'):
        read_ova(str(ova), str(scratch))


def test_the_descriptor_must_come_first(tmp_path, vmdk, scratch):
    ova = _ova(tmp_path / 'late.ova', [_entry('disk1.vmdk', vmdk.read_bytes()), _entry('a.ovf', _vmware(vmdk))])
    with pytest.raises(OvaError, match="the first member is 'disk1.vmdk', not the .ovf descriptor"):
        read_ova(str(ova), str(scratch))


def test_a_missing_disk_names_what_the_ova_holds(tmp_path, vmdk, scratch):
    ova = _ova_with(tmp_path, vmdk, _entry('notes.txt', b'hello'), disk=False)
    with pytest.raises(
        OvaError, match=r"disk file 'disk1.vmdk', which the OVA does not hold \(members: appliance.ovf, notes.txt\)"
    ):
        read_ova(str(ova), str(scratch))


def test_a_truncated_ova_is_refused(tmp_path, vmdk, scratch):
    ova = _standard_ova(tmp_path, vmdk)
    ova.write_bytes(ova.read_bytes()[: os.path.getsize(ova) // 2])
    with pytest.raises(BundleError, match='cannot be read as a tar archive'):
        read_ova(str(ova), str(scratch))


def test_not_a_tar_is_refused(tmp_path, scratch):
    (tmp_path / 'x.ova').write_bytes(os.urandom(4096))
    with pytest.raises(BundleError, match='cannot be read as a tar archive'):
        read_ova(str(tmp_path / 'x.ova'), str(scratch))


# --- attacks: the manifest and the sizes ------------------------------------------------


def test_a_disk_that_does_not_match_the_manifest_is_refused(tmp_path, vmdk, scratch):
    ovf, disk = _vmware(vmdk), vmdk.read_bytes()
    tampered = disk[:-1] + bytes([disk[-1] ^ 1])
    manifest = _manifest([('appliance.ovf', ovf), ('disk1.vmdk', disk)])
    ova = _ova(
        tmp_path / 'm.ova',
        [_entry('appliance.ovf', ovf), _entry('appliance.mf', manifest), _entry('disk1.vmdk', tampered)],
    )
    with pytest.raises(
        OvaError, match=r"'disk1.vmdk' does not match the manifest \(SHA256 [0-9a-f]{64}, the manifest says"
    ):
        read_ova(str(ova), str(scratch))


def test_a_descriptor_that_does_not_match_the_manifest_is_refused(tmp_path, vmdk, scratch):
    ovf, disk = _vmware(vmdk), vmdk.read_bytes()
    manifest = _manifest([('appliance.ovf', ovf.replace(b'4096', b'8192')), ('disk1.vmdk', disk)])
    ova = _ova(
        tmp_path / 'm.ova', [_entry('appliance.ovf', ovf), _entry('appliance.mf', manifest), _entry('disk1.vmdk', disk)]
    )
    with pytest.raises(OvaError, match="'appliance.ovf' does not match the manifest"):
        read_ova(str(ova), str(scratch))


def test_a_manifest_without_the_disk_is_refused(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk)
    manifest = _manifest([('appliance.ovf', ovf)])
    ova = _ova(
        tmp_path / 'm.ova',
        [_entry('appliance.ovf', ovf), _entry('appliance.mf', manifest), _entry('disk1.vmdk', vmdk.read_bytes())],
    )
    with pytest.raises(OvaError, match="the manifest has no digest for 'disk1.vmdk'"):
        read_ova(str(ova), str(scratch))


@pytest.mark.parametrize(
    'line',
    ['MD5(disk1.vmdk)= d41d8cd98f00b204e9800998ecf8427e', 'SHA256(disk1.vmdk)= abc', 'garbage'],
)
def test_a_manifest_line_that_is_not_understood_is_refused(line):
    with pytest.raises(OvaError, match='not a SHA1, SHA256 or SHA512 manifest line'):
        parse_manifest(f'{line}\n'.encode(), 'a.mf')


def test_a_manifest_with_two_digests_for_one_file_is_refused():
    digest = '0' * 64
    with pytest.raises(OvaError, match="a second digest for 'disk1.vmdk'"):
        parse_manifest(f'SHA256(disk1.vmdk)= {digest}\nSHA256(disk1.vmdk)= {"1" * 64}\n'.encode(), 'a.mf')


def test_a_disk_of_another_size_than_the_descriptor_says_is_refused(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk, disk_size=12345)
    with pytest.raises(OvaError, match="the OVF says 'disk1.vmdk' has 12345 bytes, the file has"):
        read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch))


def test_a_chunked_disk_file_is_refused(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk).replace(b'ovf:id="file1"', b'ovf:id="file1" ovf:chunkSize="2147483648"')
    with pytest.raises(OvaError, match='split into chunks'):
        read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch))


# --- attacks: the descriptor ------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><Name>&lol2;</Name></Envelope>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><Name>&xxe;</Name></Envelope>"""

DESCRIPTOR_ATTACKS = {
    'billion laughs': (BILLION_LAUGHS, 'DOCTYPE or ENTITY declaration'),
    'external entity': (EXTERNAL_ENTITY, 'DOCTYPE or ENTITY declaration'),
    'lower-case doctype': (EXTERNAL_ENTITY.replace(b'DOCTYPE', b'doctype'), 'DOCTYPE or ENTITY'),
    'utf-16 hides a doctype': (EXTERNAL_ENTITY.decode().encode('utf-16'), 'not UTF-8 text'),
    'declared latin-1': (b'<?xml version="1.0" encoding="ISO-8859-1"?><Envelope/>', "encoding 'ISO-8859-1'"),
    'not xml': (b'<Envelope><unclosed></Envelope>', 'not well-formed XML'),
    'not an envelope': (b'<html xmlns="http://www.w3.org/1999/xhtml"/>', "root element is 'html'"),
    'no virtual system': (b'<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>', 'no VirtualSystem'),
    'a vApp of two machines': (
        b'<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><VirtualSystemCollection>'
        b'<VirtualSystem/><VirtualSystem/></VirtualSystemCollection></Envelope>',
        '2 virtual machines',
    ),
}


@pytest.mark.parametrize('attack', sorted(DESCRIPTOR_ATTACKS))
def test_a_hostile_descriptor_is_refused(attack, tmp_path, vmdk, scratch):
    ovf, message = DESCRIPTOR_ATTACKS[attack]
    with pytest.raises(OvaError, match=message):
        parse_ovf(ovf, 'x.ovf')
    with pytest.raises(OvaError, match=message):
        read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch))


def test_a_descriptor_larger_than_4_mib_is_refused_before_it_is_read(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk).replace(b'<References>', b'<!--' + b'x' * (4 * MIB) + b'--><References>')
    with pytest.raises(BundleError, match=r"OVF descriptor 'appliance.ovf' has \d+ bytes, more than the 4194304"):
        read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch))


@pytest.mark.parametrize('href', ['../disk1.vmdk', 'sub/disk1.vmdk', '/etc/passwd', 'http://evil.example/disk1.vmdk'])
def test_a_disk_href_with_a_directory_part_is_refused(href, tmp_path, vmdk, scratch):
    ovf = _descriptor('vmware-ubuntu.ovf', disk_file=href, disk_size=vmdk.stat().st_size)
    with pytest.raises(BundleError, match='the disk file .* is refused: it has a directory part'):
        read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch))
    (tmp_path / 'x.ovf').write_bytes(ovf)
    with pytest.raises(BundleError, match='has a directory part'):
        read_ovf(str(tmp_path / 'x.ovf'))


def test_a_plain_ovf_whose_disk_is_a_symlink_to_etc_passwd_is_refused(tmp_path, vmdk):
    folder = tmp_path / 'package'
    folder.mkdir()
    (folder / 'a.ovf').write_bytes(_descriptor('vmware-ubuntu.ovf', disk_file='disk1.vmdk'))
    os.symlink('/etc/passwd', folder / 'disk1.vmdk')
    with pytest.raises(BundleError, match="the disk file 'disk1.vmdk' is not a regular file"):
        read_ovf(str(folder / 'a.ovf'))


def test_a_plain_ovf_with_a_missing_disk_or_a_bad_manifest_is_refused(tmp_path, vmdk):
    ovf = _descriptor('vmware-ubuntu.ovf', disk_file='gone.vmdk')
    (tmp_path / 'a.ovf').write_bytes(ovf)
    with pytest.raises(BundleError, match="the disk file 'gone.vmdk' cannot be read"):
        read_ovf(str(tmp_path / 'a.ovf'))
    (tmp_path / 'b.ovf').write_bytes(_vmware(vmdk))
    (tmp_path / 'b.mf').write_bytes(_manifest([('b.ovf', b'another descriptor'), ('disk1.vmdk', vmdk.read_bytes())]))
    with pytest.raises(OvaError, match="'b.ovf' does not match the manifest"):
        read_ovf(str(tmp_path / 'b.ovf'))


def test_a_blank_disk_cannot_be_chosen(tmp_path, vmdk, scratch):
    ovf = _vmware(vmdk).replace(
        b'</DiskSection>',
        b'<Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="blank"/></DiskSection>',
    )
    ova = _standard_ova(tmp_path, vmdk, ovf, manifest=False)
    with pytest.raises(OvaError, match="disk 'blank' is blank"):
        read_ova(str(ova), str(scratch), disk='blank')
    with read_ova(str(ova), str(scratch)) as bundle:  # one disk with a file: no choice needed
        assert bundle.disk.disk_id == 'vmdisk1' and len(bundle.descriptor.disks) == 2


# --- descriptor details -----------------------------------------------------------------


@pytest.mark.parametrize(
    ('units', 'quantity', 'memory_mib'),
    [
        ('byte * 2^20', '4096', 4096),
        ('byte*2^30', '4', 4096),
        ('MegaBytes', '2048', 2048),
        ('GigaBytes', '2', 2048),
        ('byte * 1024 * 1024', '512', 512),
        ('KiloBytes', '1536', 2),  # rounded up to whole MiB
        ('hertz * 10^6', '4096', None),  # not a memory unit
        ('byte * 2^20', '${memory}', None),  # a deployment-time property
    ],
)
def test_memory_units(units, quantity, memory_mib, vmdk):
    ovf = _vmware(vmdk).replace(
        b'<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>',
        f'<rasd:AllocationUnits>{units}</rasd:AllocationUnits>'.encode(),
    )
    ovf = ovf.replace(b'<rasd:VirtualQuantity>4096<', f'<rasd:VirtualQuantity>{quantity}<'.encode())
    assert parse_ovf(ovf, 'x.ovf').memory_mib == memory_mib


def test_a_disk_item_may_name_its_file_instead_of_its_disk(vmdk):
    ovf = _vmware(vmdk).replace(b'ovf:/disk/vmdisk1', b'ovf:/file/file1')
    disk = parse_ovf(ovf, 'x.ovf').disks[0]
    assert (disk.file_id, disk.controller, disk.controller_model) == ('file1', 'scsi', 'VirtualSCSI')


def test_a_virtualbox_virtio_scsi_disk_needs_no_driver_note(tmp_path, vmdk, scratch):
    ovf = _virtualbox().replace(b'<rasd:ResourceSubType>AHCI<', b'<rasd:ResourceSubType>VirtioSCSI<')
    with read_ova(
        str(_ova(tmp_path / 'v.ova', [_entry('v.ovf', ovf), _entry('disk1.vmdk', vmdk.read_bytes())])), str(scratch)
    ) as b:
        mapped = nova_properties(b)
    assert (mapped['properties']['hw_disk_bus'], mapped['properties']['hw_scsi_model']) == ('scsi', 'virtio-scsi')
    assert mapped['notes'] == []


def test_differing_nics_and_an_unmapped_controller_are_noted(tmp_path, vmdk, scratch):
    second_nic = (
        b'<Item><rasd:InstanceID>9</rasd:InstanceID><rasd:ResourceSubType>E1000</rasd:ResourceSubType>'
        b'<rasd:ResourceType>10</rasd:ResourceType></Item><vmw:Config ovf:required="false" vmw:key="cpuHotAddEnabled"'
    )
    ovf = _vmware(vmdk).replace(b'<vmw:Config ovf:required="false" vmw:key="cpuHotAddEnabled"', second_nic)
    ovf = ovf.replace(
        b'<rasd:Parent>3</rasd:Parent>\n        <rasd:ResourceType>17',
        b'<rasd:Parent>4</rasd:Parent>\n        <rasd:ResourceType>17',
    )
    with read_ova(str(_standard_ova(tmp_path, vmdk, ovf, manifest=False)), str(scratch)) as bundle:
        vmware = nova_properties(bundle, hypervisor='vmware')
    assert 'vmware_adaptertype' not in vmware['properties'] and vmware['properties']['hw_vif_model'] == 'vmxnet3'
    assert vmware['notes'] == [
        'the disk was on a sata controller (vmware.sata.ahci), which has no Nova disk bus here: Nova chooses the bus (virtio by default)',
        'the NICs differ (VmxNet3, E1000); hw_vif_model applies to all: the first one',
    ]


def test_a_tar_made_of_a_directory_with_dot_slash_names_is_read(tmp_path, vmdk, scratch):
    """tar -C dir -cf x.ova . writes a ./ entry first and ./ before every name."""
    ovf = _vmware(vmdk)
    entries = [_entry('./', type=tarfile.DIRTYPE), _entry('./a.ovf', ovf), _entry('./disk1.vmdk', vmdk.read_bytes())]
    with read_ova(str(_ova(tmp_path / 'dot.ova', entries)), str(scratch)) as bundle:
        assert os.path.basename(bundle.disk_path) == 'disk1.vmdk' and bundle.descriptor_name == 'a.ovf'


def test_too_many_members_or_too_long_a_name_is_refused(tmp_path, vmdk, scratch):
    many = [_entry('a.ovf', _vmware(vmdk)), *(_entry(f'f{index}', b'') for index in range(1001))]
    with pytest.raises(BundleError, match='more than 1000 members'):
        read_ova(str(_ova(tmp_path / 'many.ova', many, fmt=tarfile.PAX_FORMAT)), str(scratch))
    long_name = [_entry('a.ovf', _vmware(vmdk)), _entry('d' * 256, b'x')]
    with pytest.raises(BundleError, match='longer than 255 bytes'):
        read_ova(str(_ova(tmp_path / 'long.ova', long_name, fmt=tarfile.PAX_FORMAT)), str(scratch))


def test_a_descriptor_naming_a_file_it_does_not_list_or_no_file_at_all(vmdk):
    with pytest.raises(OvaError, match="disk 'vmdisk1' names the file 'file1', which References does not list"):
        parse_ovf(_vmware(vmdk).replace(b'ovf:id="file1"', b'ovf:id="other"'), 'x.ovf')
    blank = parse_ovf(_vmware(vmdk).replace(b' ovf:fileRef="file1"', b''), 'x.ovf')
    with pytest.raises(OvaError, match='names no disk file: there is nothing to make an image of'):
        select_disk(blank, None, 'x.ovf')


def test_a_plain_ovf_that_is_not_a_regular_file_is_refused(tmp_path):
    (tmp_path / 'dir.ovf').mkdir()
    with pytest.raises(OvaError, match='is not a regular file'):
        read_ovf(str(tmp_path / 'dir.ovf'))
