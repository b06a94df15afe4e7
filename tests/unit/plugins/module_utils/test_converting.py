"""The source a module uploads when it converts: judged before qemu-img (the policy's
'create' question, then the unsafe refusal), converted once, judged again on its output
('upload'), remembered so an unchanged source is never converted again, and removed."""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import string
import subprocess
import tarfile

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._content import Source
from ansible_collections.imagegov.openstack.plugins.module_utils._convert import ConversionError
from ansible_collections.imagegov.openstack.plugins.module_utils._converting import (
    OVA_SHA256_PROPERTY,
    SOURCE_FORMAT_PROPERTY,
    SOURCE_SHA256_PROPERTY,
    ConvertingSource,
    Package,
    compression_of,
    conversion_target,
    is_package,
    source_sha256,
    stored_header,
)
from ansible_collections.imagegov.openstack.plugins.module_utils._identity import DigestCache

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img')
MIB = 1024**2


class Runner:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args, started):
        self.calls.append(list(args))
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started(child)
        out, err = child.communicate()
        return child.returncode, out.decode(), err.decode()

    def converts(self) -> int:
        return sum(1 for call in self.calls if call[1] == 'convert')


@pytest.fixture
def disk(tmp_path):
    raw = tmp_path / 'disk.raw'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'raw', str(raw), str(8 * MIB)], check=True)
    with open(raw, 'r+b') as stream:
        stream.seek(MIB)
        stream.write(b'imagegov' * 512)
    return raw


def _made(tmp_path, disk, fmt, *options):
    out = tmp_path / f'source.{fmt}'
    subprocess.run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', fmt, *options, str(disk), str(out)], check=True)
    return out


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(source):
    _length, chunks = source.stream()
    return b''.join(chunks)


@pytest.fixture
def scratch(tmp_path):
    path = tmp_path / 'scratch'
    path.mkdir()
    return path


def test_a_vdi_is_judged_converted_judged_again_and_remembered(tmp_path, disk, scratch):
    vdi, run, digests, asked = _made(tmp_path, disk, 'vdi'), Runner(), DigestCache(str(tmp_path / 'cache')), []
    source = ConvertingSource(Source(str(vdi)), 'qcow2', str(scratch), run, digests)
    source.judge = lambda action, facts: asked.append((action, facts['detected_format'], facts['virtual_size']))
    assert source.known_output_sha256() is None
    data = _read(source)
    assert data[:4] == b'QFI\xfb'
    assert asked == [('create', 'qcow2', 8 * MIB), ('upload', 'qcow2', 8 * MIB)]
    assert source.describe() == {
        'sha256': _sha256(vdi),
        'format': 'vdi',
        'virtual_size': 8 * MIB,
        'size': vdi.stat().st_size,
        'converted_to': 'qcow2',
        'converted': True,
    }
    assert source.properties() == {SOURCE_SHA256_PROPERTY: _sha256(vdi), SOURCE_FORMAT_PROPERTY: 'vdi'}
    source.remember_output({'sha256': hashlib.sha256(data).hexdigest()})
    _read(source)
    assert run.converts() == 1, 'converted once per run'
    source.close()
    assert list(scratch.iterdir()) == []
    again = ConvertingSource(Source(str(vdi)), 'qcow2', str(scratch), Runner(), digests)
    assert again.known_output_sha256() == hashlib.sha256(data).hexdigest()
    again.close()


def test_a_source_already_in_the_target_format_is_sent_as_it_is(tmp_path, disk, scratch):
    run = Runner()
    source = ConvertingSource(Source(str(disk)), 'raw', str(scratch), run, DigestCache(str(tmp_path / 'c')))
    assert _read(source) == disk.read_bytes()
    assert run.converts() == 0 and not source.describe()['converted']
    source.close()
    assert disk.exists() and list(scratch.iterdir()) == []


def test_a_compressed_source_is_recorded_with_its_compression(tmp_path, disk, scratch):
    packed = tmp_path / 'disk.raw.xz'
    subprocess.run(['xz', '-T1', '-k', '-c', str(disk)], check=True, stdout=packed.open('wb'))
    assert compression_of(Source(str(packed))) == 'xz'
    source = ConvertingSource(Source(str(packed)), 'qcow2', str(scratch), Runner(), DigestCache(str(tmp_path / 'c')))
    assert source.properties()[SOURCE_FORMAT_PROPERTY] == 'raw+xz'
    assert source.describe()['sha256'] == _sha256(packed)
    source.close()
    assert list(scratch.iterdir()) == []


def test_an_unsafe_source_never_reaches_qemu_img_convert(tmp_path, disk, scratch):
    backed = tmp_path / 'backed.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', str(disk), '-F', 'raw', str(backed)], check=True)
    run, asked = Runner(), []
    source = ConvertingSource(Source(str(backed)), 'raw', str(scratch), run, DigestCache(str(tmp_path / 'c')))
    source.judge = lambda action, facts: asked.append(action)
    with pytest.raises(ConversionError, match='backing_file'):
        source.prepare()
    assert asked == ['create'], 'the policy saw the safety failure first'
    assert run.calls == [] and list(scratch.iterdir()) == []


def test_a_wrong_checksum_discards_the_output_before_anything_is_sent(tmp_path, disk, scratch):
    vdi, run = _made(tmp_path, disk, 'vdi'), Runner()
    source = ConvertingSource(
        Source(str(vdi)), 'qcow2', str(scratch), run, DigestCache(str(tmp_path / 'c')), expected_sha256='0' * 64
    )
    with pytest.raises(ConversionError, match='expects 0{64}'):
        source.prepare()  # hashed while qemu-img converted: the output is discarded
    source.close()
    assert list(scratch.iterdir()) == []


def test_an_output_the_policy_refuses_is_removed(tmp_path, disk, scratch):
    vdi = _made(tmp_path, disk, 'vdi')

    def refuse_upload(action, facts):
        if action == 'upload':
            raise ConversionError('refused')

    source = ConvertingSource(
        Source(str(vdi)), 'qcow2', str(scratch), Runner(), DigestCache(str(tmp_path / 'c')), judge=refuse_upload
    )
    with pytest.raises(ConversionError, match='refused'):
        source.prepare()
    source.close()
    assert list(scratch.iterdir()) == []


def test_a_missing_scratch_directory_is_named(tmp_path, disk):
    source = ConvertingSource(Source(str(disk)), 'qcow2', str(tmp_path / 'nope'), Runner(), DigestCache())
    with pytest.raises(Exception, match='scratch_dir'):
        source.check()
    with pytest.raises(ConversionError, match='not a target'):
        ConvertingSource(Source(str(disk)), 'vdi', None, Runner(), DigestCache())


def test_what_is_converted_to_what():
    def no_remedy(disk_format):
        return None

    def to_qcow2(disk_format):
        return 'qcow2' if disk_format == 'vdi' else None

    assert conversion_target(None, {'detected_format': 'iso'}, None, to_qcow2)[0] is None
    assert 'never converted' in conversion_target('raw', {'detected_format': 'iso'}, None, to_qcow2)[1]
    assert conversion_target('raw', {'detected_format': 'vdi'}, None, no_remedy) == ('raw', None)
    assert conversion_target(None, {'detected_format': 'vdi'}, None, to_qcow2) == ('qcow2', None)
    assert conversion_target(None, {'detected_format': 'vdi'}, 'gzip', to_qcow2) == (None, None)
    assert conversion_target(None, {'detected_format': 'qcow2'}, None, to_qcow2) == (None, None)
    assert stored_header({'virtual_size': 5, 'detected_format': 'vdi'}, 'raw') == {
        'detected_format': 'raw',
        'virtual_size': 5,
        'size': None,
        'safety_failures': [],
    }
    assert source_sha256({'sha256': 'a' * 64}) == 'a' * 64
    with pytest.raises(ConversionError, match='sha256 of the source'):
        source_sha256({'sha512': 'a' * 128})


def test_an_ova_gives_its_disk_and_splits_its_properties(tmp_path, disk, scratch):
    vmdk = _made(tmp_path, disk, 'vmdk', '-o', 'subformat=streamOptimized')
    template = (pathlib.Path(__file__).parent / 'fixtures' / 'ovf' / 'vmware-ubuntu.ovf').read_text()
    ovf = string.Template(template).substitute(disk_file='disk1.vmdk', disk_size=vmdk.stat().st_size, capacity=8)
    (tmp_path / 'appliance.ovf').write_text(ovf)
    ova = tmp_path / 'appliance.ova'
    with tarfile.open(ova, 'w', format=tarfile.USTAR_FORMAT) as tar:
        tar.add(tmp_path / 'appliance.ovf', arcname='appliance.ovf')
        tar.add(vmdk, arcname='disk1.vmdk')
    given = Source(str(ova))
    assert is_package(given, None) and not is_package(given, 'ova') and not is_package(Source(str(vmdk)), None)
    package = Package(given, str(scratch), None)
    try:
        properties = package.properties({'os_distro': 'mine'})
        assert properties['os_distro'] == 'mine' and properties['hw_firmware_type'] == 'uefi'
        assert not any(key.startswith('imagegov_') for key in properties)
        assert package.bookkeeping()[OVA_SHA256_PROPERTY] == _sha256(ova)
        assert package.min_ram == 4096
        assert package.facts(8 * MIB)['size_check']['virtual_size'] == 8 * MIB
        assert _sha256(pathlib.Path(package.source.filename)) == _sha256(vmdk)
    finally:
        package.close()
    assert list(scratch.iterdir()) == []


def test_a_source_written_to_after_it_was_judged_is_not_converted(tmp_path, disk, scratch):
    vdi, run = _made(tmp_path, disk, 'vdi'), Runner()
    source = ConvertingSource(Source(str(vdi)), 'qcow2', str(scratch), run, DigestCache(str(tmp_path / 'c')))
    source.inspect()
    with open(vdi, 'ab') as stream:
        stream.write(b'\0' * 512)
    with pytest.raises(ConversionError, match='replaced or written to'):
        source.prepare()
    source.close()
    assert list(scratch.iterdir()) == []
