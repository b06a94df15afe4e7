"""UEC bundles: kernel, initrd and disk are told apart by their bytes (names only break ties),
ambiguity is an error that says what to name, the three images link up in the right order,
and the tarball is read with the same refusals as an OVA."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import pathlib
import struct
import tarfile

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._bundle import BundleError
from ansible_collections.imagegov.openstack.plugins.module_utils._uec import (
    UecError,
    content_of,
    image_specs,
    link_properties,
    read_uec,
    uec_from_files,
)

MIB = 1024**2
UBUNTU = 'focal-server-cloudimg-amd64'


@pytest.fixture
def scratch(tmp_path):
    path = tmp_path / 'scratch'
    path.mkdir()
    yield path
    assert list(path.iterdir()) == [], 'scratch space is left empty'


def x86_kernel(size=96 * 1024):
    """A bzImage as far as a reader can tell: boot sector, HdrS, 64-bit entry flag."""
    data = bytearray(os.urandom(size))
    data[0x1FE:0x200] = b'\x55\xaa'
    data[0x202:0x206] = b'HdrS'
    data[0x236:0x238] = struct.pack('<H', 0x1)
    return bytes(data)


def arm64_kernel(size=96 * 1024):
    data = bytearray(os.urandom(size))
    data[0:2] = b'MZ'
    data[0x38:0x3C] = b'ARM\x64'
    return bytes(data)


def cpio_newc():
    """An initramfs: one file and the trailer, in the newc format."""
    entries = []
    for name, body in ((b'init\0', b'#!/bin/sh\n'), (b'TRAILER!!!\0', b'')):
        header = b'070701' + b''.join(
            b'%08X' % value for value in (1, 0o100755, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(name), 0)
        )
        record = header + name
        record += b'\0' * (-len(record) % 4) + body
        entries.append(record + b'\0' * (-len(record) % 4))
    return b''.join(entries)


def initrd():
    return gzip.compress(cpio_newc())


def ext_disk(size=8 * MIB):
    """A file system image as old UEC tarballs carry it: the ext magic at 1080, data, holes."""
    data = bytearray(size)
    data[1024:1080] = os.urandom(56)
    data[1080:1082] = b'\x53\xef'
    data[size // 2 : size // 2 + 4096] = os.urandom(4096)
    return bytes(data)


def mbr_disk(size=4 * MIB):
    data = bytearray(size)
    data[:446] = os.urandom(446)
    data[510:512] = b'\x55\xaa'
    return bytes(data)


def _entry(name, data=b'', **attributes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attributes.items():
        setattr(info, key, value)
    return info, data


def tarball(path, members, compression=None):
    opener = {None: open, 'gz': gzip.open, 'xz': lzma.open}[compression]
    with opener(path, 'wb') as raw, tarfile.open(fileobj=raw, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for item in members:
            info, data = item if isinstance(item[0], tarfile.TarInfo) else _entry(*item)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def ubuntu_members():
    return [
        (f'{UBUNTU}.img', ext_disk()),
        (f'{UBUNTU}-vmlinuz-generic', x86_kernel()),
        (f'{UBUNTU}-initrd-generic', initrd()),
        ('README.files', b'focal-server-cloudimg-amd64.img: the root file system\n'),
    ]


def _sha(data):
    return hashlib.sha256(data).hexdigest()


# --- recognising members ----------------------------------------------------------------


@pytest.mark.parametrize(
    ('head', 'expected'),
    [
        (x86_kernel(), ('an x86 Linux kernel (bzImage)', 'kernel')),
        (arm64_kernel(), ('an arm64 Linux kernel (Image)', 'kernel')),
        (b'\0' * 0x38 + b'RSC\x05' + b'\0' * 64, ('a RISC-V Linux kernel (Image)', 'kernel')),
        (b'MZ\0\0zimg' + b'\0' * 64, ('an EFI zboot Linux kernel', 'kernel')),
        (b'\x7fELF\x02\x01\x01' + b'\0' * 64, ('an ELF kernel (vmlinux)', 'kernel')),
        (cpio_newc(), ('a cpio archive (initramfs)', 'ramdisk')),
        (initrd(), ('gzip data', None)),
        (lzma.compress(b'x'), ('xz data', None)),
        (b'(\xb5/\xfd' + b'\0' * 16, ('zstd data', None)),
        (b'QFI\xfb' + b'\0' * 64, ('a qcow2 disk', 'disk')),
        (b'KDMV' + b'\0' * 64, ('a vmdk disk', 'disk')),
        (b'\0' * 512 + b'EFI PART' + b'\0' * 8, ('a GPT-partitioned disk', 'disk')),
        (ext_disk(4096), ('an ext2/3/4 file system', 'disk')),
        (b'XFSB' + b'\0' * 64, ('an XFS file system', 'disk')),
        (mbr_disk(4096), ('an MBR-partitioned disk', 'disk')),
        (b'focal: a README\n', ('text', None)),
        (b'', ('empty', None)),
        (b'\x00\x01\x02\xff' * 16, ('data of no known kind', None)),
    ],
)
def test_content_tells_what_a_file_is(head, expected):
    assert content_of(head) == expected


# --- happy paths ------------------------------------------------------------------------


@pytest.mark.parametrize('compression', [None, 'gz', 'xz'])
def test_an_ubuntu_uec_tarball_gives_kernel_ramdisk_and_disk(compression, tmp_path, scratch):
    members = dict(ubuntu_members())
    path = tarball(tmp_path / f'{UBUNTU}.tar', list(members.items()), compression)
    with read_uec(str(path), str(scratch)) as bundle:
        assert bundle.kernel.name == f'{UBUNTU}-vmlinuz-generic'
        assert bundle.ramdisk.name == f'{UBUNTU}-initrd-generic'
        assert bundle.disk.name == f'{UBUNTU}.img'
        for part in bundle.parts():
            assert pathlib.Path(part.path).read_bytes() == members[part.name]
            assert part.sha256 == _sha(members[part.name])
        assert sorted(os.listdir(os.path.dirname(bundle.disk.path))) == sorted(p.name for p in bundle.parts())
        assert os.stat(bundle.disk.path).st_blocks * 512 < 1 * MIB  # holes kept
        assert bundle.sha256 == _sha(path.read_bytes())
        assert bundle.members == [name for name, _data in ubuntu_members()]
        assert bundle.facts()['kernel']['architecture'] == 'x86_64'


def test_the_specs_link_the_machine_image_to_kernel_and_ramdisk(tmp_path, scratch):
    with read_uec(str(tarball(tmp_path / 'u.tar.gz', ubuntu_members(), 'gz')), str(scratch)) as bundle:
        specs = image_specs(bundle, 'focal', command_line='root=LABEL=cloudimg-rootfs ro console=ttyS0')
        legacy = image_specs(bundle, 'focal', legacy_formats=True)
        assert [spec['path'] for spec in specs] == [bundle.kernel.path, bundle.ramdisk.path, bundle.disk.path]
    assert [(s['role'], s['name'], s['disk_format'], s['container_format']) for s in specs] == [
        ('kernel', 'focal-kernel', 'aki', 'aki'),
        ('ramdisk', 'focal-ramdisk', 'ari', 'ari'),
        ('disk', 'focal', 'raw', 'bare'),
    ]
    assert specs[2]['properties'] == {
        'architecture': 'x86_64',
        'os_command_line': 'root=LABEL=cloudimg-rootfs ro console=ttyS0',
    }
    assert specs[2]['links'] == {'kernel_id': 'kernel', 'ramdisk_id': 'ramdisk'}
    assert [s['disk_format'] for s in legacy] == ['aki', 'ari', 'ami'] and legacy[2]['container_format'] == 'ami'
    assert link_properties(specs[0], {}) == {}
    assert link_properties(specs[2], {'kernel': 'k-id', 'ramdisk': 'r-id'}) == {
        'kernel_id': 'k-id',
        'ramdisk_id': 'r-id',
    }
    with pytest.raises(UecError, match='links to the ramdisk image, which has no id yet'):
        link_properties(specs[2], {'kernel': 'k-id'})


def test_a_converted_disk_keeps_its_format_and_bad_formats_are_refused(tmp_path, scratch):
    with read_uec(str(tarball(tmp_path / 'u.tar', ubuntu_members())), str(scratch)) as bundle:
        assert image_specs(bundle, 'focal', disk_format='qcow2')[2]['disk_format'] == 'qcow2'
        with pytest.raises(UecError, match='an ami machine image holds raw bytes, not qcow2'):
            image_specs(bundle, 'focal', legacy_formats=True, disk_format='qcow2')
        with pytest.raises(UecError, match="disk_format 'iso' is not one of"):
            image_specs(bundle, 'focal', disk_format='iso')
        with pytest.raises(UecError, match='longer than Glance takes'):
            image_specs(bundle, 'x' * 250)


def test_an_arm64_tarball_is_told_apart_by_names_where_the_bytes_are_both_gzip(tmp_path, scratch):
    """Ubuntu's arm64 vmlinuz is a gzipped Image: compressed data is a kernel or an initrd."""
    members = [
        ('jammy-server-cloudimg-arm64-vmlinuz-generic', gzip.compress(arm64_kernel())),
        ('jammy-server-cloudimg-arm64-initrd-generic', initrd()),
        ('jammy-server-cloudimg-arm64.img', ext_disk()),
    ]
    with read_uec(str(tarball(tmp_path / 'arm.tar.gz', members, 'gz')), str(scratch)) as bundle:
        assert (bundle.kernel.name, bundle.ramdisk.name) == (members[0][0], members[1][0])
        assert bundle.kernel.content == 'gzip data' and bundle.kernel.architecture is None


def test_a_cirros_uec_tarball_without_an_initrd(tmp_path, scratch):
    members = [('cirros-0.6.2-x86_64-vmlinuz', arm64_kernel()), ('cirros-0.6.2-x86_64-blank.img', mbr_disk())]
    with read_uec(str(tarball(tmp_path / 'c.tar.gz', members, 'gz')), str(scratch)) as bundle:
        assert bundle.ramdisk is None and bundle.kernel.architecture == 'aarch64'
        specs = image_specs(bundle, 'cirros')
    assert [spec['role'] for spec in specs] == ['kernel', 'disk']
    assert specs[1]['links'] == {'kernel_id': 'kernel'} and specs[1]['properties'] == {'architecture': 'aarch64'}


def test_two_kernels_by_content_are_settled_by_the_name_that_says_kernel(tmp_path, scratch):
    members = [
        ('lucid-server-uec-amd64-loader', x86_kernel()),
        ('lucid-server-uec-amd64-vmlinuz-virtual', x86_kernel()),
    ]
    members += [('lucid-server-uec-amd64.img', ext_disk())]
    with read_uec(str(tarball(tmp_path / 'l.tar.gz', members, 'gz')), str(scratch)) as bundle:
        assert bundle.kernel.name == 'lucid-server-uec-amd64-vmlinuz-virtual' and bundle.ramdisk is None
        assert not os.path.exists(os.path.join(os.path.dirname(bundle.kernel.path), members[0][0]))


# --- ambiguity and choices --------------------------------------------------------------


def test_two_kernels_nothing_tells_apart_need_a_name(tmp_path, scratch):
    members = [('boot-a', x86_kernel()), ('boot-b', x86_kernel()), ('root.img', ext_disk())]
    path = tarball(tmp_path / 'k.tar', members)
    with pytest.raises(
        UecError,
        match=r'2 members could be the kernel \(boot-a \(an x86 Linux kernel \(bzImage\)\), boot-b .*\): name one with uec_kernel',
    ):
        read_uec(str(path), str(scratch))
    with read_uec(str(path), str(scratch), kernel='boot-b') as bundle:
        assert bundle.kernel.sha256 == _sha(members[1][1])
        assert sorted(os.listdir(os.path.dirname(bundle.kernel.path))) == ['boot-b', 'root.img']


def test_two_initrds_and_two_disks_need_names(tmp_path, scratch):
    members = [('vmlinuz', x86_kernel()), ('initrd-a', initrd()), ('initrd-b', initrd())]
    members += [('a.img', ext_disk()), ('b.img', mbr_disk())]
    path = tarball(tmp_path / 'r.tar', members)
    with pytest.raises(UecError, match=r'2 members could be the ramdisk .*: name one with uec_ramdisk'):
        read_uec(str(path), str(scratch))
    with pytest.raises(UecError, match=r'2 members could be the disk .*: name one with uec_disk'):
        read_uec(str(path), str(scratch), ramdisk='initrd-b')
    with read_uec(str(path), str(scratch), ramdisk='initrd-b', disk='b.img') as bundle:
        assert (bundle.ramdisk.name, bundle.disk.name) == ('initrd-b', 'b.img')


def test_compressed_data_with_no_telling_name_is_used_only_when_named(tmp_path, scratch):
    members = [('vmlinuz', x86_kernel()), ('blob.gz', initrd()), ('root.img', ext_disk())]
    path = tarball(tmp_path / 'b.tar', members)
    with read_uec(str(path), str(scratch)) as bundle:
        assert bundle.ramdisk is None
        assert 'blob.gz' not in os.listdir(os.path.dirname(bundle.disk.path))
    with read_uec(str(path), str(scratch), ramdisk='blob.gz') as bundle:
        assert bundle.ramdisk.name == 'blob.gz' and bundle.ramdisk.content == 'gzip data'


@pytest.mark.parametrize(
    ('choice', 'message'),
    [
        ({'kernel': 'README'}, r"'README' \(uec_kernel\) is text, not a kernel"),
        ({'kernel': 'root.img'}, r"'root.img' \(uec_kernel\) is an ext2/3/4 file system, not a kernel"),
        ({'disk': 'vmlinuz'}, r"'vmlinuz' \(uec_disk\) is an x86 Linux kernel \(bzImage\), not a disk"),
        (
            {'kernel': 'nope'},
            r"has no member 'nope' \(uec_kernel\); its members: vmlinuz, root.img, README, empty.img$",
        ),
        ({'kernel': 'vmlinuz', 'disk': 'vmlinuz'}, "'vmlinuz' is named for two roles"),
        ({'disk': 'empty.img'}, r"'empty.img' \(uec_disk\) is empty, not a disk"),
    ],
)
def test_a_named_member_must_fit_its_role(choice, message, tmp_path, scratch):
    members = [('vmlinuz', x86_kernel()), ('root.img', ext_disk()), ('README', b'read me\n'), ('empty.img', b'')]
    with pytest.raises(UecError, match=message):
        read_uec(str(tarball(tmp_path / 'n.tar', members)), str(scratch), **choice)


def test_a_tarball_without_a_kernel_says_how_to_name_one(tmp_path, scratch):
    path = tarball(tmp_path / 'nk.tar', [('root.img', ext_disk()), ('notes', b'no kernel here\n')])
    with pytest.raises(UecError, match=r'holds no kernel that can be recognised .*: name one with uec_kernel'):
        read_uec(str(path), str(scratch))


# --- the tar refusals, shared with OVAs -------------------------------------------------


@pytest.mark.parametrize(
    ('member', 'message'),
    [
        (_entry('vmlinuz', type=tarfile.SYMTYPE, linkname='/boot/vmlinuz'), "'vmlinuz' is a symlink"),
        (_entry('initrd', type=tarfile.LNKTYPE, linkname='/etc/shadow'), 'is a hardlink'),
        (_entry('../../root/.ssh/authorized_keys', b'ssh-ed25519 AAAA'), 'has a directory part'),
        (_entry('/boot/vmlinuz', x86_kernel()), 'has a directory part or is absolute'),
        (_entry('null', type=tarfile.CHRTYPE, devmajor=1, devminor=3), 'is a device file'),
        (_entry(f'{UBUNTU}.img', b'a second disk'), f"two members are named '{UBUNTU}.img'"),
    ],
)
def test_a_uec_tarball_with_an_unsafe_member_is_refused(member, message, tmp_path, scratch):
    path = tarball(tmp_path / 'evil.tar.gz', [*ubuntu_members(), member], 'gz')
    with pytest.raises(BundleError, match=message):
        read_uec(str(path), str(scratch))


def test_a_uec_tarball_larger_than_max_bytes_is_refused(tmp_path, scratch):
    path = tarball(tmp_path / 'big.tar.gz', ubuntu_members(), 'gz')
    with pytest.raises(BundleError, match=f"member '{UBUNTU}.img' has 8388608 bytes"):
        read_uec(str(path), str(scratch), max_bytes=4 * MIB)


# --- three separate files ---------------------------------------------------------------


def test_three_files_make_the_same_bundle_in_place(tmp_path):
    files = {'vmlinuz-6.8': x86_kernel(), 'initrd.img-6.8': initrd(), 'root.img': ext_disk()}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    os.symlink(tmp_path / 'vmlinuz-6.8', tmp_path / 'vmlinuz')  # as /boot has it: the user's own path
    with uec_from_files(str(tmp_path / 'vmlinuz'), str(tmp_path / 'initrd.img-6.8'), str(tmp_path / 'root.img')) as b:
        assert b.source is None and b.kernel.path == str(tmp_path / 'vmlinuz')
        assert b.ramdisk.sha256 == _sha(files['initrd.img-6.8']) and b.disk.content == 'an ext2/3/4 file system'
        assert [spec['name'] for spec in image_specs(b, 'k')] == ['k-kernel', 'k-ramdisk', 'k']
    assert all((tmp_path / name).exists() for name in files)
    with uec_from_files(str(tmp_path / 'vmlinuz-6.8'), None, str(tmp_path / 'root.img')) as bundle:
        assert bundle.ramdisk is None


def test_three_files_are_checked_like_members(tmp_path):
    for name, data in (('vmlinuz', x86_kernel()), ('vmlinuz-old', x86_kernel()), ('root.img', ext_disk())):
        (tmp_path / name).write_bytes(data)
    with pytest.raises(UecError, match='vmlinuz-old.* is an x86 Linux kernel .*, not a disk'):
        uec_from_files(str(tmp_path / 'vmlinuz'), None, str(tmp_path / 'vmlinuz-old'))
    with pytest.raises(UecError, match='root.img.* is an ext2/3/4 file system, not a kernel'):
        uec_from_files(str(tmp_path / 'root.img'), None, str(tmp_path / 'vmlinuz'))
    with pytest.raises(UecError, match='is named for two roles'):
        uec_from_files(str(tmp_path / 'vmlinuz'), None, str(tmp_path / 'vmlinuz'))
    with pytest.raises(UecError, match='is not a regular file'):
        uec_from_files(str(tmp_path), None, str(tmp_path / 'root.img'))
    with pytest.raises(UecError, match='cannot be read'):
        uec_from_files(str(tmp_path / 'missing'), None, str(tmp_path / 'root.img'))


BOOT_KERNELS = sorted(pathlib.Path('/boot').glob('vmlinuz-*'))


@pytest.mark.skipif(not BOOT_KERNELS, reason='no /boot/vmlinuz-* on this host')
def test_this_hosts_own_kernel_and_initrd_are_recognised(tmp_path):
    kernel = BOOT_KERNELS[-1]
    ramdisk = kernel.parent / kernel.name.replace('vmlinuz-', 'initrd.img-')
    (tmp_path / 'root.img').write_bytes(ext_disk())
    with uec_from_files(str(kernel), str(ramdisk) if ramdisk.exists() else None, str(tmp_path / 'root.img')) as b:
        assert b.kernel.content.endswith('Linux kernel (bzImage)') or b.kernel.content.startswith(('an arm64', 'gzip'))
        assert b.ramdisk is None or b.ramdisk.role == 'ramdisk'
