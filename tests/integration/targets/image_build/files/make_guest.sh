#!/bin/sh
# A small Debian-looking guest disk that virt-inspector recognises, made without libguestfs
# and without downloads: the host's busybox and the libraries it needs, /etc/os-release,
# /etc/debian_version, fstab, passwd and shadow, on ext4 in a partition at 1 MiB of a 64 MiB
# disk, written as qcow2 to $1. Prints the properties the guest declares, as JSON.
#   make_guest.sh OUT.qcow2
set -eu
PATH=$PATH:/usr/sbin:/sbin
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root" && cd "$root"
mkdir -p bin sbin boot dev etc/systemd/system home lib64 proc root run sys tmp usr/bin usr/sbin var/lib/dpkg var/log var/tmp
: >var/lib/dpkg/status
cp /bin/busybox bin/busybox
for lib in $(ldd /bin/busybox | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
    mkdir -p ".$(dirname "$lib")" && cp -L "$lib" ".$lib"
done
for applet in sh ls cat echo rm mkdir cp mv ln chmod chown touch grep sed mount umount; do
    ln -s busybox "bin/$applet"
done
ln -s ../bin/busybox sbin/init
cat >etc/os-release <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
OS
echo 12.7 >etc/debian_version
echo image-build-fixture >etc/hostname
echo 5f0c6e2a9d8b4c3e8a1f7b6d5c4e3f2a >etc/machine-id
echo 'LABEL=root / ext4 defaults 0 1' >etc/fstab
echo 'root:x:0:0:root:/root:/bin/sh' >etc/passwd
echo 'root:x:0:' >etc/group
echo 'root:*:19000:0:99999:7:::' >etc/shadow
chmod 0640 etc/shadow
truncate -s 64M "$work/disk.raw"
echo 'start=2048, type=83' | sfdisk -q "$work/disk.raw"
mkfs.ext4 -q -F -L root -E offset=1048576 -d "$root" "$work/disk.raw" 63M
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$out"
printf '{"os_type": "linux", "os_distro": "debian", "os_version": "12.7", "architecture": "%s"}\n' "$(uname -m)"
