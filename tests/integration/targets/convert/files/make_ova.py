"""An OVA as VMware exports it, made here: descriptor first, manifest, streamOptimized disk.
Usage: make_ova.py DIR (DIR holds base.raw, made by make_sources.sh)."""

import hashlib
import pathlib
import string
import subprocess
import sys
import tarfile

work = pathlib.Path(sys.argv[1])
here = pathlib.Path(__file__).resolve().parent
disk = work / 'disk1.vmdk'
subprocess.run(
    ['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', str(work / 'base.raw'),
     str(disk)],
    check=True,
)  # fmt: skip
capacity_mib = (work / 'base.raw').stat().st_size // (1024 * 1024)
ovf = string.Template((here / 'appliance.ovf.template').read_text()).substitute(
    disk_file='disk1.vmdk', disk_size=disk.stat().st_size, capacity=capacity_mib
)
(work / 'appliance.ovf').write_text(ovf)
digests = {name: hashlib.sha256((work / name).read_bytes()).hexdigest() for name in ('appliance.ovf', 'disk1.vmdk')}
(work / 'appliance.mf').write_text(''.join(f'SHA256({name})= {digest}\n' for name, digest in digests.items()))
with tarfile.open(work / 'appliance.ova', 'w', format=tarfile.USTAR_FORMAT) as tar:
    for name in ('appliance.ovf', 'appliance.mf', 'disk1.vmdk'):
        tar.add(work / name, arcname=name)
# The same package with its disk changed after the manifest was written: refused.
with tarfile.open(work / 'tampered.ova', 'w', format=tarfile.USTAR_FORMAT) as tar:
    tar.add(work / 'appliance.ovf', arcname='appliance.ovf')
    tar.add(work / 'appliance.mf', arcname='appliance.mf')
    tampered = bytearray(disk.read_bytes())
    tampered[-600] ^= 0xFF
    (work / 'tampered.vmdk').write_bytes(tampered)
    tar.add(work / 'tampered.vmdk', arcname='disk1.vmdk')
