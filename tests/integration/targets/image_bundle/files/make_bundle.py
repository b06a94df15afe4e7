"""The kernel, initrd and disk of a UEC bundle, made here, and the tarballs of the target.

Usage: python3 make_bundle.py DIR. The kernel is this host's own (/boot/vmlinuz-*) when readable,
else bytes with a Linux x86 boot header; the initrd a gzip'd newc cpio; the disk a raw disk
made by qemu-img with one Linux partition in its MBR. Writes into DIR:
  files/vmlinuz, files/initrd.img, files/disk.img   the three files
  good.tar.gz              bundle-vmlinuz-generic, bundle-initrd-generic, bundle.img, README
  symlink.tar.gz           the three, and a symlink member
  two-kernels.tar.gz       boot-a, boot-b (both kernels, no name telling them apart), bundle.img
(each made with ``tar czf``), and prints where the kernel came from.
"""

from __future__ import annotations

import glob
import gzip
import os
import shutil
import struct
import subprocess
import sys


def host_kernel() -> tuple[bytes, str]:
    for path in sorted(glob.glob('/boot/vmlinuz-*'), reverse=True):
        if os.access(path, os.R_OK):
            with open(path, 'rb') as kernel:
                return kernel.read(), path
    data = bytearray(os.urandom(256 * 1024))
    data[0x1FE:0x200] = b'\x55\xaa'
    data[0x202:0x206] = b'HdrS'
    data[0x236:0x238] = struct.pack('<H', 0x1)  # 64-bit entry point: architecture x86_64
    return bytes(data), 'a made-up bzImage header'


def initramfs() -> bytes:
    """A newc cpio with /init and the trailer, gzip'd, as initramfs-tools writes it."""
    records = []
    for name, body in ((b'init\0', b'#!/bin/sh\nexec /bin/sh\n'), (b'TRAILER!!!\0', b'')):
        fields = (1, 0o100755, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(name), 0)
        record = b'070701' + b''.join(b'%08X' % value for value in fields) + name
        record += b'\0' * (-len(record) % 4) + body
        records.append(record + b'\0' * (-len(record) % 4))
    return gzip.compress(b''.join(records), mtime=0)


def disk(path: str) -> None:
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'raw', path, '16M'], check=True)
    entry = struct.pack('<B3sB3sII', 0x80, b'\x00\x02\x00', 0x83, b'\xfe\xff\xff', 2048, 16 * 2048 - 2048)
    with open(path, 'r+b') as out:
        out.seek(446)
        out.write(entry)
        out.seek(510)
        out.write(b'\x55\xaa')
        out.seek(4 * 1024 * 1024)
        out.write(os.urandom(64 * 1024))  # some data of its own


def tarball(path: str, members: dict[str, str], symlinks: dict[str, str] | None = None) -> None:
    """``tar czf`` of the members (name: source file) and symlinks (name: target), side by side."""
    staging = path + '.d'
    os.makedirs(staging)
    for name, source in members.items():
        shutil.copyfile(source, os.path.join(staging, name))
    for name, target in (symlinks or {}).items():
        os.symlink(target, os.path.join(staging, name))
    subprocess.run(['tar', 'czf', path, '-C', staging, *members, *(symlinks or {})], check=True)
    shutil.rmtree(staging)


def main(directory: str) -> None:
    files = os.path.join(directory, 'files')
    os.makedirs(files, exist_ok=True)
    kernel, origin = host_kernel()
    paths = {role: os.path.join(files, name) for role, name in (('kernel', 'vmlinuz'), ('ramdisk', 'initrd.img'))}
    with open(paths['kernel'], 'wb') as out:
        out.write(kernel)
    with open(paths['ramdisk'], 'wb') as out:
        out.write(initramfs())
    paths['disk'] = os.path.join(files, 'disk.img')
    disk(paths['disk'])
    readme = os.path.join(directory, 'README.files')
    with open(readme, 'w', encoding='utf-8') as out:
        out.write('bundle.img: the root disk\n')
    ubuntu = {
        'bundle-vmlinuz-generic': paths['kernel'],
        'bundle-initrd-generic': paths['ramdisk'],
        'bundle.img': paths['disk'],
        'README.files': readme,
    }
    tarball(os.path.join(directory, 'good.tar.gz'), ubuntu)
    tarball(os.path.join(directory, 'symlink.tar.gz'), ubuntu, {'passwd': '/etc/passwd'})
    second = os.path.join(directory, 'vmlinuz-b')
    shutil.copyfile(paths['kernel'], second)
    with open(second, 'ab') as out:
        out.write(b'another build')
    tarball(
        os.path.join(directory, 'two-kernels.tar.gz'),
        {'boot-a': paths['kernel'], 'boot-b': second, 'bundle.img': paths['disk']},
    )
    os.remove(second)
    os.remove(readme)
    print(origin)


if __name__ == '__main__':
    main(sys.argv[1])
