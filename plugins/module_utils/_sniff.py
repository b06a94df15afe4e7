# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a file's first bytes say it is: a Linux kernel, an initrd, a disk, compressed data.

oslo's format inspector knows disk formats only, and a kernel is not a disk: an x86 bzImage
starts with a legacy boot sector ending in the MBR signature, so the inspector reads it as
an MBR disk whose partition table (boot code) fails its safety check. UEC bundles tell their
members apart with content_of(); every read of image bytes (_content.ContentScanner) reports
boot_file(), the role the header proves, so the policy can judge an ``aki`` kernel as one.
"""

from __future__ import annotations

import struct

# The roles boot_file() reports: what Nova hands to the hypervisor beside a machine disk.
BOOT_FILE_ROLES = ('kernel', 'ramdisk')
# How much of the start of a file proves a kernel or an initrd (the x86 header ends at 0x238).
BOOT_FILE_HEAD = 4096
# x86 boot protocol: xloadflags at 0x236, bit 0: the kernel has a 64-bit entry point.
_X86_XLOADFLAGS = 0x236
# (offset, magic, what it is, the role it proves). Kernels come first: a bzImage also ends
# its boot sector with the MBR signature.
_SIGNATURES = (
    (0x202, b'HdrS', 'an x86 Linux kernel (bzImage)', 'kernel'),
    (0x38, b'ARM\x64', 'an arm64 Linux kernel (Image)', 'kernel'),
    (0x38, b'RSC\x05', 'a RISC-V Linux kernel (Image)', 'kernel'),
    (0, b'\x7fELF', 'an ELF kernel (vmlinux)', 'kernel'),
    (0, b'070701', 'a cpio archive (initramfs)', 'ramdisk'),
    (0, b'070702', 'a cpio archive (initramfs)', 'ramdisk'),
    (0, b'070707', 'a cpio archive (initrd)', 'ramdisk'),
    (0, b'QFI\xfb', 'a qcow2 disk', 'disk'),
    (0, b'KDMV', 'a vmdk disk', 'disk'),
    (0, b'vhdxfile', 'a vhdx disk', 'disk'),
    (0, b'conectix', 'a vhd disk', 'disk'),
    (0x40, b'\x7f\x10\xda\xbe', 'a vdi disk', 'disk'),
    (512, b'EFI PART', 'a GPT-partitioned disk', 'disk'),
    (1080, b'\x53\xef', 'an ext2/3/4 file system', 'disk'),
    (0, b'XFSB', 'an XFS file system', 'disk'),
    (0x10040, b'_BHRfS_M', 'a btrfs file system', 'disk'),
    (510, b'\x55\xaa', 'an MBR-partitioned disk', 'disk'),
)
# Compressed data: an initrd, or an arm64 kernel (vmlinuz is a gzipped Image there).
_COMPRESSED = (
    (b'\x1f\x8b', 'gzip data'),
    (b'\xfd7zXZ\x00', 'xz data'),
    (b'(\xb5/\xfd', 'zstd data'),
    (b'\x02\x21\x4c\x18', 'lz4 data'),
    (b'\x04\x22\x4d\x18', 'lz4 data'),
    (b'BZh', 'bzip2 data'),
    (b'\x89LZO', 'lzo data'),
)
# What no role can be, whatever its name.
UNUSABLE = ('text', 'empty')


def content_of(head: bytes) -> tuple[str, str | None]:
    """(what the bytes are, the role they prove or None) from a file's first bytes."""
    if not head:
        return 'empty', None
    for offset, magic, what, role in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return what, role
    if head[:2] == b'MZ' and head[4:8] == b'zimg':
        return 'an EFI zboot Linux kernel', 'kernel'
    for magic, what in _COMPRESSED:
        if head.startswith(magic):
            return what, None
    if b'\0' not in head and _is_text(head):
        return 'text', None
    return 'data of no known kind', None


def _is_text(head: bytes) -> bool:
    try:
        head.decode('utf-8')
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the head
    return True


def architecture_of(head: bytes, content: str) -> str | None:
    """The Glance ``architecture`` a kernel's header proves, or None."""
    if content.startswith('an x86'):
        flags = head[_X86_XLOADFLAGS : _X86_XLOADFLAGS + 2]
        return 'x86_64' if len(flags) == 2 and struct.unpack('<H', flags)[0] & 1 else None
    return {'an arm64 Linux kernel (Image)': 'aarch64', 'a RISC-V Linux kernel (Image)': 'riscv64'}.get(content)


def boot_file(head: bytes) -> str | None:
    """``kernel`` or ``ramdisk`` when the first bytes prove one (a kernel's boot header, an
    uncompressed cpio), else None: compressed data proves nothing by itself."""
    role = content_of(head)[1]
    return role if role in BOOT_FILE_ROLES else None
