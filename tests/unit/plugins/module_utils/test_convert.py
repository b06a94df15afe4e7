"""Safe conversion: every source format made here with qemu-img converts to qcow2 and raw with
its virtual size kept; unsafe sources are refused before qemu-img runs; scratch space is
left empty after success, failure and interruption."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import sys

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import _convert
from ansible_collections.imagegov.openstack.plugins.module_utils._convert import (
    ConversionError,
    Terminated,
    convert,
    inspect_source,
    stored_facts,
)

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img')

MIB = 1024**2
DISK = 16 * MIB
ISO_TOOL = shutil.which('genisoimage') or shutil.which('xorriso')


class Runner:
    """run_command's contract on subprocess, recording every command (as a module's would)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.children: list[subprocess.Popen] = []

    def __call__(self, args, started):
        self.calls.append(list(args))
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.children.append(child)
        started(child)
        self.after_start(args, child)
        out, err = child.communicate()
        return child.returncode, out.decode(), err.decode()

    def after_start(self, args, child):
        pass

    def qemu_img_calls(self):
        return [call for call in self.calls if call[0] == 'qemu-img']


@pytest.fixture
def run():
    return Runner()


@pytest.fixture
def scratch(tmp_path):
    path = tmp_path / 'scratch'
    path.mkdir()
    return path


def _qemu_img(*args):
    subprocess.run(['qemu-img', *map(str, args)], check=True, capture_output=True)


def _virtual_size(path, driver):
    out = subprocess.run(
        ['qemu-img', 'info', '-U', '-f', driver, '--output=json', str(path)], check=True, capture_output=True
    ).stdout
    return json.loads(out)['virtual-size']


def _sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


@pytest.fixture
def base(tmp_path):
    """A raw disk with data at its start, middle and end, and holes between."""
    path = tmp_path / 'src' / 'base.raw'
    path.parent.mkdir()
    with open(path, 'wb') as disk:
        for offset in (0, DISK // 2, DISK - 4096):
            disk.seek(offset)
            disk.write(os.urandom(4096))
        disk.truncate(DISK)
    return path


def _made(base, name, fmt, *options):
    target = base.parent / name
    _qemu_img('convert', '-f', 'raw', '-O', fmt, *options, base, target)
    return target


def _flat_vmdk(base, extent_line=None, padded=False, extra=()):
    """A flat descriptor: qemu-img convert pads it with NULs to 512 bytes, which oslo reads as
    raw (``padded``); without the padding oslo reads it as a vmdk it refuses."""
    descriptor = _made(base, 'flat.vmdk', 'vmdk', '-o', 'subformat=monolithicFlat')
    text = descriptor.read_bytes().split(b'\0', 1)[0].decode()
    lines = [extent_line if extent_line and line.startswith('RW ') else line for line in text.splitlines()]
    data = ('\n'.join([*lines, *extra]) + '\n').encode()
    descriptor.write_bytes(data.ljust(512, b'\0') if padded else data)
    return descriptor


def _compressed(path, opener, suffix):
    target = path.parent / (path.name + suffix)
    with open(path, 'rb') as data, opener(target, 'wb') as out:
        shutil.copyfileobj(data, out)
    return target


SAFE_SOURCES = {
    'raw': lambda base: base,
    'qcow2': lambda base: _made(base, 'disk.qcow2', 'qcow2'),
    'vmdk-monolithicSparse': lambda base: _made(base, 'disk.vmdk', 'vmdk'),
    'vmdk-streamOptimized': lambda base: _made(base, 'so.vmdk', 'vmdk', '-o', 'subformat=streamOptimized'),
    'vmdk-flat-descriptor': _flat_vmdk,
    'vmdk-flat-descriptor-padded': lambda base: _flat_vmdk(base, padded=True),
    'vdi': lambda base: _made(base, 'disk.vdi', 'vdi'),
    'vhd': lambda base: _made(base, 'disk.vhd', 'vpc'),
    'vhdx': lambda base: _made(base, 'disk.vhdx', 'vhdx'),
    'qcow2.gz': lambda base: _compressed(_made(base, 'disk.qcow2', 'qcow2'), gzip.open, '.gz'),
    'qcow2.xz': lambda base: _compressed(_made(base, 'disk.qcow2', 'qcow2'), lzma.open, '.xz'),
}
SOURCE_DRIVERS = {'vhd': 'vpc', 'qcow2.gz': 'qcow2', 'qcow2.xz': 'qcow2'}


@pytest.mark.parametrize('target', ['qcow2', 'raw'])
@pytest.mark.parametrize('kind', sorted(SAFE_SOURCES))
def test_a_safe_source_converts_with_its_virtual_size(kind, target, base, scratch, run):
    given = SAFE_SOURCES[kind](base)
    plain = base.parent / 'disk.qcow2' if kind.startswith('qcow2.') else given
    expected_size = _virtual_size(plain, SOURCE_DRIVERS.get(kind, kind.split('-')[0]))
    with inspect_source(str(given), str(scratch), run) as source:
        assert source.safe, source.facts['safety_failures']
        assert source.facts['virtual_size'] == expected_size
        assert source.facts['sha256'] == _sha256(given)
        with convert(source, target, str(scratch), run) as converted:
            assert converted.facts['detected_format'] == target
            assert converted.facts['virtual_size'] == expected_size
            assert converted.sha256 == _sha256(converted.path)
            assert converted.source_sha256 == _sha256(given)
            assert os.path.dirname(os.path.dirname(converted.path)) == str(scratch)
            if target == 'raw':
                _assert_same_disk(converted.path, base)
    assert list(scratch.iterdir()) == []
    convert_call = next(call for call in run.calls if call[:2] == ['qemu-img', 'convert'])
    assert convert_call[convert_call.index('-f') + 1] == _convert.QEMU_DRIVERS[source.format]
    assert '--force-share' in convert_call and convert_call[convert_call.index('-O') + 1] == target
    assert all('--force-share' in call and '-f' in call for call in run.qemu_img_calls())


def _assert_same_disk(converted, base):
    # A vhd's size is rounded up to whole CHS cylinders: the tail beyond the data is zeros.
    data, original = (pathlib.Path(path).read_bytes() for path in (converted, base))
    assert data[: len(original)] == original and not data[len(original) :].strip(b'\0')


def test_raw_output_is_sparse(base, scratch, run):
    with inspect_source(str(base), str(scratch), run) as source, convert(source, 'raw', str(scratch), run) as out:
        assert '-S' in run.calls[-1] and run.calls[-1][run.calls[-1].index('-S') + 1] == '4k'
        assert out.facts['allocated'] < DISK // 2


def test_vmdk_target_is_stream_optimized(base, scratch, run):
    qcow2 = _made(base, 'disk.qcow2', 'qcow2')
    with inspect_source(str(qcow2), str(scratch), run) as source, convert(source, 'vmdk', str(scratch), run) as out:
        assert out.facts['detected_format'] == 'vmdk' and out.facts['virtual_size'] == DISK
        info = json.loads(
            subprocess.run(['qemu-img', 'info', '--output=json', out.path], capture_output=True, check=True).stdout
        )
        assert info['format-specific']['data']['create-type'] == 'streamOptimized'


def test_a_flat_descriptor_counts_its_extents_in_the_identity(base, scratch, run):
    descriptor = _made(base, 'flat.vmdk', 'vmdk', '-o', 'subformat=monolithicFlat')
    with inspect_source(str(descriptor), str(scratch), run) as source:
        assert source.facts['extents'] == [
            {'name': 'flat-flat.vmdk', 'size': DISK, 'sha256': _sha256(base.parent / 'flat-flat.vmdk')}
        ]


# --- unsafe sources: refused before qemu-img ever runs -----------------------------------


def _backing_file(base):
    backing = _made(base, 'backing.qcow2', 'qcow2')
    _qemu_img('create', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', base.parent / 'child.qcow2')
    return base.parent / 'child.qcow2'


def _data_file(base):
    _qemu_img(
        'create', '-f', 'qcow2', '-o', f'data_file={base.parent / "external.data"}', base.parent / 'df.qcow2', '16M'
    )
    return base.parent / 'df.qcow2'


def _vmdk_parent(base):
    parent = _made(base, 'parent.vmdk', 'vmdk')
    _qemu_img('create', '-f', 'vmdk', '-b', parent, '-F', 'vmdk', base.parent / 'child.vmdk')
    return base.parent / 'child.vmdk'


def _symlinked_extent(base):
    os.symlink('/etc/passwd', base.parent / 'passwd-link')
    return _flat_vmdk(base, 'RW 8 FLAT "passwd-link" 0')


def _gzip_of_gzip(base):
    return _compressed(_compressed(_made(base, 'disk.qcow2', 'qcow2'), gzip.open, '.gz'), gzip.open, '.gz')


def _gzip_of_backing_file(base):
    return _compressed(_backing_file(base), gzip.open, '.gz')


def _gzip_of_flat_descriptor(base):
    return _compressed(_made(base, 'flat.vmdk', 'vmdk', '-o', 'subformat=monolithicFlat'), gzip.open, '.gz')


UNSAFE_SOURCES = {
    'qcow2-backing-file': (_backing_file, 'backing_file'),
    'qcow2-data-file': (_data_file, 'data_file'),
    'vmdk-parent-disk': (_vmdk_parent, 'backing_file'),
    'vmdk-extent-/etc/passwd': (lambda base: _flat_vmdk(base, 'RW 8 FLAT "/etc/passwd" 0'), 'descriptor'),
    'vmdk-extent-/etc/passwd-padded': (
        lambda base: _flat_vmdk(base, 'RW 8 FLAT "/etc/passwd" 0', padded=True),
        'descriptor',
    ),
    'vmdk-flat-parent': (lambda base: _flat_vmdk(base, extra=['parentFileNameHint="/etc/passwd"']), 'descriptor'),
    'vmdk-extent-../': (lambda base: _flat_vmdk(base, 'RW 8 FLAT "../base.raw" 0'), 'descriptor'),
    'vmdk-extent-symlink': (_symlinked_extent, 'descriptor'),
    'vmdk-extent-device': (lambda base: _flat_vmdk(base, 'RW 8 VMFS "/dev/sda" 0'), 'descriptor'),
    'vmdk-extent-too-short': (lambda base: _flat_vmdk(base, 'RW 99999999 FLAT "flat-flat.vmdk" 0'), 'descriptor'),
    'qcow2-backing-file.gz': (_gzip_of_backing_file, 'backing_file'),
    'vmdk-flat-descriptor.gz': (_gzip_of_flat_descriptor, 'descriptor'),
    'gzip-of-gzip': (_gzip_of_gzip, 'compression'),
}


@pytest.mark.parametrize('kind', sorted(UNSAFE_SOURCES))
def test_an_unsafe_source_is_refused_before_qemu_img_runs(kind, base, scratch, run):
    make, check = UNSAFE_SOURCES[kind]
    given = make(base)
    with inspect_source(str(given), str(scratch), run) as source:
        assert check in [failure['check'] for failure in source.facts['safety_failures']]
        assert stored_facts(source, 'qcow2')['safety_failures'] == source.facts['safety_failures']
        with pytest.raises(ConversionError, match='is not converted'):
            convert(source, 'qcow2', str(scratch), run)
    assert run.qemu_img_calls() == []
    assert list(scratch.iterdir()) == []


def _iso_bytes(blocks=64):
    """An ISO 9660 primary volume descriptor, as the format inspector reads it."""
    descriptor = bytearray(2048)
    descriptor[0:7] = b'\x01CD001\x01'
    descriptor[80:88] = struct.pack('<L', blocks) + struct.pack('>L', blocks)
    descriptor[128:132] = struct.pack('<H', 2048) + struct.pack('>H', 2048)
    return bytes(32 * 1024) + bytes(descriptor) + bytes((blocks - 17) * 2048)


def test_an_iso_is_never_converted(tmp_path, scratch, run):
    iso = tmp_path / 'cd.iso'
    iso.write_bytes(_iso_bytes())
    _assert_iso_refused(iso, scratch, run)


@pytest.mark.skipif(ISO_TOOL is None, reason='neither genisoimage nor xorriso is installed (apt-get install xorriso)')
def test_an_iso_made_by_a_tool_is_never_converted(tmp_path, scratch, run):
    (tmp_path / 'content').mkdir()
    (tmp_path / 'content' / 'README').write_text('hello\n')
    iso = tmp_path / 'cd.iso'
    prefix = [ISO_TOOL, '-as', 'mkisofs'] if ISO_TOOL.endswith('xorriso') else [ISO_TOOL]
    subprocess.run([*prefix, '-quiet', '-o', str(iso), str(tmp_path / 'content')], check=True, capture_output=True)
    _assert_iso_refused(iso, scratch, run)


def _assert_iso_refused(iso, scratch, run):
    with inspect_source(str(iso), str(scratch), run) as source:
        assert source.format == 'iso'
        assert [failure['check'] for failure in source.facts['safety_failures']] == ['convertible']
        with pytest.raises(ConversionError, match='never converted'):
            convert(source, 'raw', str(scratch), run)
    assert run.qemu_img_calls() == [] and list(scratch.iterdir()) == []


# --- compressed sources ------------------------------------------------------------------


def test_a_compressed_source_records_both_digests_and_leaves_no_copy(base, scratch, run):
    qcow2 = _made(base, 'disk.qcow2', 'qcow2')
    given = _compressed(qcow2, lzma.open, '.xz')
    with inspect_source(str(given), str(scratch), run) as source:
        assert source.facts['sha256'] == _sha256(given) and source.facts['size'] == os.path.getsize(given)
        assert source.facts['decompressed'] == {
            'compression': 'xz',
            'sha256': _sha256(qcow2),
            'size': os.path.getsize(qcow2),
        }
        assert len(list(scratch.iterdir())) == 1
    assert list(scratch.iterdir()) == []


def test_a_decompressed_disk_keeps_its_holes(base, scratch, run):
    given = _compressed(base, gzip.open, '.gz')
    with inspect_source(str(given), str(scratch), run) as source:
        assert os.stat(source.path).st_blocks * 512 < DISK // 2
        assert _sha256(source.path) == _sha256(base)


def test_decompression_stops_at_the_limit(base, scratch, run):
    given = _compressed(base, gzip.open, '.gz')
    with pytest.raises(ConversionError, match='decompresses to more than'):
        inspect_source(str(given), str(scratch), run, max_decompressed=DISK // 2)
    assert list(scratch.iterdir()) == [] and run.calls == []


def _zstd_module():
    for name in ('compression.zstd', 'zstandard'):
        try:
            __import__(name)
        except ImportError:
            continue
        return name
    return None


def test_zstd_without_a_module_is_a_clear_error(tmp_path, scratch, run, monkeypatch):
    for name in ('compression', 'compression.zstd', 'zstandard'):
        monkeypatch.setitem(sys.modules, name, None)  # an import of it raises ImportError
    given = tmp_path / 'disk.qcow2.zst'
    given.write_bytes(b'(\xb5/\xfd' + bytes(64))
    with pytest.raises(ConversionError, match=r'zstd-compressed .* pip install zstandard'):
        inspect_source(str(given), str(scratch), run)
    assert list(scratch.iterdir()) == [] and run.calls == []


@pytest.mark.skipif(_zstd_module() is None or shutil.which('zstd') is None, reason='needs a zstd module and zstd')
def test_zstd_converts_with_a_module(base, scratch, run):
    qcow2 = _made(base, 'disk.qcow2', 'qcow2')
    subprocess.run(['zstd', '-q', str(qcow2)], check=True)
    with inspect_source(f'{qcow2}.zst', str(scratch), run) as source, convert(source, 'raw', str(scratch), run) as out:
        assert out.facts['virtual_size'] == DISK


# --- the policy's question before any work ------------------------------------------------


def test_stored_facts_tell_the_virtual_size_before_any_work(tmp_path, scratch, run):
    big = tmp_path / 'big.vdi'
    _qemu_img('create', '-f', 'vdi', big, '30G')
    with inspect_source(str(big), str(scratch), run) as source:
        calls = len(run.calls)
        assert stored_facts(source, 'raw') == {
            'detected_format': 'raw',
            'virtual_size': 30 * 1024**3,
            'size': None,
            'safety_failures': [],
        }
        assert len(run.calls) == calls  # no qemu-img convert was needed to know it
    assert not any(call[:2] == ['qemu-img', 'convert'] for call in run.calls)


def test_the_default_policy_refuses_a_30_gib_disk_before_any_conversion(tmp_path, scratch, run):
    from ansible_collections.imagegov.openstack.plugins.module_utils.policy.engine import evaluate
    from ansible_collections.imagegov.openstack.plugins.module_utils.policy.loader import load_policy
    from ansible_collections.imagegov.openstack.plugins.module_utils.policy.request import build_request

    big = tmp_path / 'big.vdi'
    _qemu_img('create', '-f', 'vdi', big, '30G')
    with inspect_source(str(big), str(scratch), run) as source:
        image = {'name': 'big', 'disk_format': 'qcow2', 'container_format': 'bare'}
        request = build_request('create', image=image, content=stored_facts(source, 'qcow2'))
        decision = evaluate(load_policy(), request)
    assert not decision.allowed
    assert [violation.path for violation in decision.violations] == ['content.virtual_size']
    assert not any(call[:2] == ['qemu-img', 'convert'] for call in run.calls)


# --- failure and interruption leave no scratch file ---------------------------------------


def test_a_failed_conversion_leaves_no_scratch_file(base, scratch, run):
    with inspect_source(str(base), str(scratch), run) as source:
        failing = Runner()
        failing.after_start = lambda args, child: child.kill()
        with pytest.raises(ConversionError, match='qemu-img convert failed'):
            convert(source, 'qcow2', str(scratch), failing)
    assert list(scratch.iterdir()) == []


def test_ctrl_c_during_qemu_img_kills_it_and_removes_the_scratch_file(base, scratch, run):
    def interrupt(args, child):
        assert os.listdir(scratch)  # the private scratch directory exists while qemu-img runs
        raise KeyboardInterrupt

    with inspect_source(str(base), str(scratch), run) as source:
        run.after_start = interrupt
        with pytest.raises(KeyboardInterrupt):
            convert(source, 'qcow2', str(scratch), run)
    child = run.children[-1]
    assert child.args[:2] == ['qemu-img', 'convert'] and child.poll() is not None
    assert list(scratch.iterdir()) == []


def test_sigterm_during_qemu_img_kills_it_and_removes_the_scratch_file(base, scratch, run):
    handler = signal.getsignal(signal.SIGTERM)
    with inspect_source(str(base), str(scratch), run) as source:
        run.after_start = lambda args, child: os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(Terminated):
            convert(source, 'raw', str(scratch), run)
    assert run.children[-1].poll() is not None
    assert list(scratch.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is handler


def test_an_interruption_while_reading_the_output_removes_it(base, scratch, run, monkeypatch):
    with inspect_source(str(base), str(scratch), run) as source:
        scan = _convert._scan

        def interrupted(path):
            assert os.path.exists(path)  # qemu-img has written it
            raise KeyboardInterrupt

        monkeypatch.setattr(_convert, '_scan', interrupted)
        with pytest.raises(KeyboardInterrupt):
            convert(source, 'qcow2', str(scratch), run)
        monkeypatch.setattr(_convert, '_scan', scan)
    assert list(scratch.iterdir()) == []


def test_an_interruption_while_decompressing_removes_the_copy(base, scratch, run, monkeypatch):
    given = _compressed(base, gzip.open, '.gz')
    write = _convert._write_sparse

    def interrupted(chunks, target, limit):
        write(chunks, target, limit)
        raise KeyboardInterrupt

    monkeypatch.setattr(_convert, '_write_sparse', interrupted)
    with pytest.raises(KeyboardInterrupt):
        inspect_source(str(given), str(scratch), run)
    assert list(scratch.iterdir()) == []


# --- qemu-img reads only the judged file ---------------------------------------------------


def test_a_name_qemu_would_read_as_a_protocol_is_the_file_itself(base, scratch, run, monkeypatch):
    monkeypatch.chdir(base.parent)
    # Read as a protocol, this would be an empty 1 MiB disk of qemu's null driver.
    name = 'json:{"driver":"null-co","size":1048576}'
    os.rename(base, base.parent / name)
    with inspect_source(name, str(scratch), run) as source, convert(source, 'raw', str(scratch), run) as out:
        assert all(call[-2 if call[1] == 'convert' else -1].startswith('/') for call in run.qemu_img_calls())
        assert out.facts['virtual_size'] == DISK


def test_unknown_target_is_refused(base, scratch, run):
    with inspect_source(str(base), str(scratch), run) as source, pytest.raises(ConversionError, match='targets are'):
        convert(source, 'vdi', str(scratch), run)
    assert not any(call[:2] == ['qemu-img', 'convert'] for call in run.calls)
