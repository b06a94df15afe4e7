#!/usr/bin/env bash
# Source images in every format conversion takes, all made here from one raw disk, and the
# unsafe ones that must be refused before qemu-img opens them. Usage: make_sources.sh DIR
set -euo pipefail
cd "$1"
qemu-img create -q -f raw base.raw 64M
printf 'imagegov conversion test' | dd of=base.raw bs=1 seek=1048576 conv=notrunc status=none
head -c 1048576 /dev/urandom | dd of=base.raw bs=1M seek=10 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 base.raw src.qcow2
qemu-img convert -q -f raw -O vmdk base.raw src-sparse.vmdk
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized base.raw src-stream.vmdk
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat base.raw src-flat.vmdk
qemu-img convert -q -f raw -O vdi base.raw src.vdi
# force_size: the footer keeps the exact size, not one rounded to a disk geometry.
qemu-img convert -q -f raw -O vpc -o force_size=on base.raw src.vhd
qemu-img convert -q -f raw -O vhdx base.raw src.vhdx
cp base.raw src.raw
gzip -c base.raw >src.raw.gz
xz -T1 -c base.raw >src.raw.xz
zstd -q -c base.raw -o src.raw.zst
xz -T1 -c src.qcow2 >src.qcow2.xz
if command -v xorriso >/dev/null; then
  mkdir -p iso-root && echo imagegov >iso-root/README
  xorriso -as mkisofs -quiet -o src.iso iso-root 2>/dev/null
fi
# Unsafe: qemu-img itself would read another file into the output.
qemu-img create -q -f qcow2 -b "$PWD/base.raw" -F raw unsafe-backing.qcow2
qemu-img create -q -f qcow2 -o data_file=unsafe-data.bin unsafe-datafile.qcow2 64M
cat >unsafe-extent.vmdk <<'VMDK'
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

RW 8 FLAT "/etc/hostname" 0
VMDK
cat >unsafe-relative.vmdk <<'VMDK'
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

RW 2048 FLAT "../base.raw" 0
VMDK
# A 30 GiB virtual disk (a few hundred KiB on disk): over the default 25 GB limit.
qemu-img create -q -f qcow2 huge.qcow2 30G
