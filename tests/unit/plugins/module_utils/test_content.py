from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._content import ContentScanner, Source, SourceError

needs_qemu_img = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img')


def _qemu_img(*args):
    subprocess.run(['qemu-img', *args], check=True, capture_output=True)


def test_raw_bytes_are_hashed_and_counted(tmp_path):
    data = b'x' * (5 * 1024 * 1024 + 7)
    path = tmp_path / 'disk.raw'
    path.write_bytes(data)
    scanner = ContentScanner(Source(filename=str(path)))
    assert b''.join(scanner) == data
    facts = scanner.facts()
    assert facts['sha256'] == hashlib.sha256(data).hexdigest()
    assert facts['size'] == len(data) and facts['detected_format'] == 'raw'
    assert facts['virtual_size'] == len(data) and facts['safety_failures'] == []


@needs_qemu_img
def test_qcow2_virtual_size_comes_from_its_header(tmp_path):
    path = tmp_path / 'big.qcow2'
    _qemu_img('create', '-f', 'qcow2', str(path), '30G')
    facts = ContentScanner(Source(filename=str(path))).consume().facts()
    assert facts['detected_format'] == 'qcow2'
    assert facts['virtual_size'] == 30 * 1024**3
    assert facts['size'] < 1024 * 1024


@needs_qemu_img
def test_backing_file_fails_a_safety_check(tmp_path):
    _qemu_img('create', '-f', 'qcow2', str(tmp_path / 'base.qcow2'), '1G')
    _qemu_img('create', '-f', 'qcow2', '-b', str(tmp_path / 'base.qcow2'), '-F', 'qcow2', str(tmp_path / 'child.qcow2'))
    facts = ContentScanner(Source(filename=str(tmp_path / 'child.qcow2'))).consume().facts()
    assert [f['check'] for f in facts['safety_failures']] == ['backing_file']


@needs_qemu_img
def test_a_header_read_is_enough_to_know_the_format(tmp_path):
    path = tmp_path / 'img.qcow2'
    _qemu_img('create', '-f', 'qcow2', '-o', 'preallocation=full', str(path), '16M')
    scanner = ContentScanner(Source(filename=str(path))).consume(limit=1)
    assert scanner.size < path.stat().st_size
    assert scanner.facts()['detected_format'] == 'qcow2'


def test_glance_hash_matches_glance_recorded_algorithm(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(b'abc')
    facts = ContentScanner(Source(filename=str(path)), 'sha512').consume().facts()
    assert facts['glance_hash'] == {'algo': 'sha512', 'value': hashlib.sha512(b'abc').hexdigest()}


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SourceError, match=r"filename '.*nope.qcow2': no such file"):
        Source(filename=str(tmp_path / 'nope.qcow2')).check()
