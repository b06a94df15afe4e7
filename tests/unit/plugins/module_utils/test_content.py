from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._content import (
    PRESCAN_BYTES,
    ContentScanner,
    Source,
    SourceError,
    StoredData,
    glance_disk_format,
    prescan,
    unsupported_format_message,
)

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


class _Server:
    """A local HTTP server: Range requests honoured or not, broken or missing files."""

    def __init__(self, data: bytes, ranges: bool = True, broken: bool = False):
        import http.server
        import threading

        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.endswith('/missing'):
                    self.send_error(404)
                    return
                wanted = self.headers.get('Range') if ranges else None
                start, end = 0, len(data) - 1
                if wanted:
                    end = min(int(wanted.split('-')[1]), end)
                    self.send_response(206)
                    self.send_header('Content-Range', f'bytes {start}-{end}/{len(data)}')
                else:
                    self.send_response(200)
                self.send_header('Content-Length', str(end - start + 1))
                self.end_headers()
                body = data[start : end + 1]
                try:
                    self.wfile.write(body[: len(body) // 2] if broken else body)
                    served.sent += len(body) // 2 if broken else len(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.sent = 0
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}/image'

    def close(self):
        self.server.shutdown()


@pytest.fixture
def served():
    servers = []

    def serve(data, **options):
        server = _Server(data, **options)
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.close()


@needs_qemu_img
def test_a_url_header_read_asks_for_the_header_only_and_knows_the_whole_size(tmp_path, served):
    _qemu_img('create', '-f', 'qcow2', '-o', 'preallocation=full', str(tmp_path / 'big.qcow2'), '24M')
    data = (tmp_path / 'big.qcow2').read_bytes()
    server = served(data)
    facts = prescan(Source(url=server.url))
    assert facts['detected_format'] == 'qcow2' and facts['size'] == len(data)
    assert facts['virtual_size'] == 24 * 1024**2 and not facts['complete']
    assert server.sent == PRESCAN_BYTES


def test_a_server_without_ranges_is_left_after_the_header(served):
    data = b'\0' * (64 * 1024 * 1024)
    server = served(data, ranges=False)
    facts = prescan(Source(url=server.url))
    assert facts['size'] == len(data) and facts['detected_format'] == 'raw'


def test_a_download_that_breaks_off_is_an_error_that_hides_the_query(served):
    server = served(b'x' * (1024 * 1024), broken=True)
    scanner = ContentScanner(Source(url=server.url + '?signature=secret'))
    with pytest.raises(SourceError, match='broke off') as raised:
        scanner.consume()
    assert 'secret' not in str(raised.value)


def test_a_missing_url_says_what_the_server_answered(served):
    server = served(b'x')
    with pytest.raises(SourceError, match='HTTP 404'):
        Source(url=server.url.replace('/image', '/missing')).check()


def test_an_unreachable_url_is_an_error_without_the_url():
    with pytest.raises(SourceError, match='cannot be fetched') as raised:
        Source(url='http://127.0.0.1:1/a.img?sig=secret', timeout=2).check()
    assert 'sig=secret' not in str(raised.value)


def test_stored_data_is_read_back_through_glance():
    from glance_double import GlanceDouble

    glance = GlanceDouble()
    image = glance.add('img', b'y' * 1000)
    facts = ContentScanner(StoredData(glance, image['id']), 'sha512').consume().facts()
    assert facts['size'] == 1000 and facts['glance_hash']['value'] == image['os_hash_value']


def test_formats_glance_has_no_name_for():
    assert glance_disk_format('gpt') == 'raw' and glance_disk_format(None) == 'raw'
    assert glance_disk_format('qed') is None
    assert 'qemu-img convert -f qed' in unsupported_format_message('qed', 'file x')
    assert 'LUKS' in unsupported_format_message('luks', 'file x')
