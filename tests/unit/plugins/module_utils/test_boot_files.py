"""A kernel is not a disk: from the bytes read to the default policy's verdict, an aki kernel
is judged by its boot header, and a disk format dressed up as a kernel is still refused."""

from __future__ import annotations

import gzip
import os
import pathlib
import shutil
import struct
import subprocess

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._content import ContentScanner, Source
from ansible_collections.imagegov.openstack.plugins.module_utils._sniff import boot_file
from ansible_collections.imagegov.openstack.plugins.module_utils.policy import (
    build_request,
    evaluate,
    load_default_policy,
)

ACTOR = {'user': 'alice', 'project': 'demo', 'roles': ['member']}
BOOT_KERNELS = sorted(pathlib.Path('/boot').glob('vmlinuz-*'))
needs_qemu_img = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img')


def bzimage(size=64 * 1024):
    """An x86 kernel as oslo sees this host's: a boot sector ending in 55 AA whose first
    "partition entry" (boot code) has a boot flag that is neither 0x00 nor 0x80."""
    data = bytearray(os.urandom(size))
    data[446] = 0x31
    data[0x1FE:0x200] = b'\x55\xaa'
    data[0x202:0x206] = b'HdrS'
    data[0x236:0x238] = struct.pack('<H', 0x1)
    return bytes(data)


def facts_of(path):
    scanner = ContentScanner(Source(filename=str(path))).consume()
    return scanner.facts()


def verdict(path, disk_format, container_format=None):
    image = {'name': path.name, 'disk_format': disk_format, 'container_format': container_format or disk_format}
    request = build_request('upload', image=image, actor=ACTOR, content=facts_of(path))
    return evaluate(load_default_policy(), request)


def test_boot_file_is_what_the_header_proves():
    assert boot_file(bzimage()) == 'kernel'
    assert boot_file(b'070701' + b'0' * 200) == 'ramdisk'
    assert boot_file(gzip.compress(b'070701')) is None  # compressed: could be either
    assert boot_file(b'QFI\xfb' + b'\0' * 600) is None  # a disk is no boot file
    assert boot_file(b'') is None


def test_the_scanner_reports_the_boot_file_of_what_it_read(tmp_path):
    kernel = tmp_path / 'vmlinuz'
    kernel.write_bytes(bzimage())
    facts = facts_of(kernel)
    assert facts['boot_file'] == 'kernel'
    assert facts['detected_format'] == 'gpt'
    assert [failure['check'] for failure in facts['safety_failures']] == ['mbr']


def test_a_kernel_declared_aki_passes_the_default_policy(tmp_path):
    kernel = tmp_path / 'vmlinuz'
    kernel.write_bytes(bzimage())
    assert verdict(kernel, 'aki').allowed
    refused = verdict(kernel, 'raw', 'bare')  # declared a disk, its partition table is judged
    assert not refused.allowed
    assert [violation.found for violation in refused.violations] == ['mbr']


def test_a_gzipped_initrd_declared_ari_passes_the_default_policy(tmp_path):
    initrd = tmp_path / 'initrd.img'
    initrd.write_bytes(gzip.compress(b'070701' + os.urandom(4096)))
    assert verdict(initrd, 'ari').allowed


def test_an_initrd_declared_aki_is_refused(tmp_path):
    initramfs = tmp_path / 'initramfs'
    initramfs.write_bytes(b'070701' + b'0' * 4096)
    refused = verdict(initramfs, 'aki')
    assert not refused.allowed
    assert "disk_format is 'aki' but the content is an initrd (cpio)" in refused.violations[0].message


@needs_qemu_img
def test_a_qcow2_with_a_backing_file_and_a_planted_kernel_header_is_refused_as_aki(tmp_path):
    """The attacker's aki: a qcow2 naming a host file as its backing file, with 'HdrS' written
    where an x86 kernel has it (the qcow2 header cluster ignores those bytes)."""
    smuggled = tmp_path / 'vmlinuz'
    subprocess.run(
        ['qemu-img', 'create', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/hostname', str(smuggled), '1G'],
        check=True,
        capture_output=True,
    )
    data = bytearray(smuggled.read_bytes())
    data[0x202:0x206] = b'HdrS'
    smuggled.write_bytes(bytes(data))
    facts = facts_of(smuggled)
    assert facts['boot_file'] == 'kernel' and facts['detected_format'] == 'qcow2'
    refused = verdict(smuggled, 'aki')
    assert not refused.allowed
    assert sorted(violation.found for violation in refused.violations) == ['backing_file', 'qcow2']


@pytest.mark.skipif(not BOOT_KERNELS, reason='no /boot/vmlinuz-* on this host')
def test_this_hosts_kernel_passes_the_default_policy_as_aki():
    kernel = BOOT_KERNELS[-1]
    if not os.access(kernel, os.R_OK):
        pytest.skip(f'{kernel} is not readable')
    assert facts_of(kernel)['boot_file'] == 'kernel'
    decision = verdict(kernel, 'aki')
    assert decision.allowed, [violation.message for violation in decision.violations]
