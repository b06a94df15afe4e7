# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the example catalog's image files: small, empty disks, the same bytes every time.

Real image files come from an image build pipeline (see README.md beside this file). These
stand-ins let the example catalog load and apply as it is: their sha256s are the ones the
catalog lists. The qcow2 files are what ``qemu-img create -f qcow2 -o cluster_size=512 FILE
SIZE`` writes (qcow2 version 3, 512-byte clusters, no data), built here without qemu-img so
the bytes do not depend on its version.

    python3 images/make_example_images.py [DIRECTORY]    # default: this file's directory
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

MIB = 1024 * 1024
CLUSTER_BITS = 9
CLUSTER = 1 << CLUSTER_BITS

# file name: (disk format, virtual size in bytes)
IMAGES = {
    'acme-rescue.raw': ('raw', 1 * MIB),
    'debian-12-base.qcow2': ('qcow2', 16 * MIB),
    'noble-20261015.qcow2': ('qcow2', 20 * MIB),
    'noble-20261101.qcow2': ('qcow2', 24 * MIB),
}


def qcow2(virtual_size: int) -> bytes:
    """An empty qcow2 v3 image: header, refcount table, one refcount block, the L1 table."""
    l2_entries = CLUSTER // 8
    l1_size = -(-virtual_size // (CLUSTER * l2_entries))
    l1_clusters = -(-l1_size * 8 // CLUSTER)
    clusters = 3 + l1_clusters
    header = struct.pack(
        '>4sIQIIQIIQQIIQQQQII',
        b'QFI\xfb',
        3,  # magic, version
        0,
        0,  # backing file offset and size
        CLUSTER_BITS,
        virtual_size,
        0,  # no encryption
        l1_size,
        3 * CLUSTER,  # L1 table: entries, offset
        1 * CLUSTER,
        1,  # refcount table: offset, clusters
        0,
        0,  # snapshots: count, offset
        0,
        0,
        0,  # incompatible, compatible, autoclear features
        4,
        112,  # refcount order (16 bits), header length
    ) + bytes(8)  # compression type zlib, padding
    image = bytearray(clusters * CLUSTER)
    image[: len(header)] = header
    image[CLUSTER : CLUSTER + 8] = struct.pack('>Q', 2 * CLUSTER)  # refcount table -> block
    image[2 * CLUSTER : 2 * CLUSTER + 2 * clusters] = struct.pack(f'>{clusters}H', *[1] * clusters)
    return bytes(image[: 3 * CLUSTER + l1_size * 8])


def image_bytes(disk_format: str, virtual_size: int) -> bytes:
    return qcow2(virtual_size) if disk_format == 'qcow2' else bytes(virtual_size)


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    target.mkdir(parents=True, exist_ok=True)
    for name, (disk_format, size) in IMAGES.items():
        data = image_bytes(disk_format, size)
        (target / name).write_bytes(data)
        print(f'{hashlib.sha256(data).hexdigest()}  {target / name}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
