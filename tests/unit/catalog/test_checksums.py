"""Checksum values and checksum files: every listing format, both algorithms, and fetching over HTTP
from a real local server."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils._errors import ImagegovError
from ansible_collections.imagegov.openstack.plugins.module_utils.catalog.checksums import (
    ChecksumFileError,
    ChecksumResolver,
    fetch_checksum,
    fetch_text,
    find_digest,
    parse_checksum,
)

A256 = hashlib.sha256(b'a').hexdigest()
B256 = hashlib.sha256(b'b').hexdigest()
C256 = hashlib.sha256(b'c').hexdigest()
A512 = hashlib.sha512(b'a').hexdigest()
URL = 'https://mirror.example/releases/SHA256SUMS'
IMG = 'noble-server-cloudimg-amd64.img'


def error_of(text, wanted=IMG, label=URL):
    with pytest.raises(ChecksumFileError) as raised:
        find_digest(text, wanted, label)
    return str(raised.value)


# --- parse_checksum ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        (f'sha256:{A256}', ('sha256', A256)),
        (f'sha256:{A256.upper()}', ('sha256', A256)),
        (f'sha512:{A512}', ('sha512', A512)),
        (f'sha512:{A512.upper()}', ('sha512', A512)),
    ],
)
def test_parse_checksum_accepts_prefixed_digests(text, expected):
    assert parse_checksum(text) == expected


@pytest.mark.parametrize(
    'text',
    [
        A256,  # no prefix
        f'sha256:{A512}',  # length of the other algorithm
        f'sha512:{A256}',
        f'sha256:{A256[:-1]}',
        f'sha256:{A256}0',
        f'sha256:{A256[:-1]}g',
        f'md5:{hashlib.md5(b"a").hexdigest()}',
        f'SHA256:{A256}',
        f' sha256:{A256}',
        f'sha256:{A256}\n',
        f'sha256: {A256}',
        '',
        None,
        42,
    ],
)
def test_parse_checksum_rejects_everything_else(text):
    assert parse_checksum(text) is None


# --- find_digest: formats ---------------------------------------------------------------------


def test_gnu_text_mode_lines():
    text = f'{B256}  other.img\n{A256}  {IMG}\n{C256}  third.img\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_gnu_binary_mode_lines():
    text = f'{B256} *other.img\n{A256} *{IMG}\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_gnu_sha512_and_upper_case_hex():
    text = f'{hashlib.sha512(b"b").hexdigest()}  other.img\n{A512.upper()}  {IMG}\n'
    assert find_digest(text, IMG, URL) == ('sha512', A512)


@pytest.mark.parametrize('name', [f'./{IMG}', f'images/amd64/{IMG}', f'*./{IMG}', f'/srv/{IMG}'])
def test_names_are_matched_by_basename(name):
    text = f'{B256}  ./other.img\n{A256}  {name}\n' if not name.startswith('*') else f'{A256} {name}\n{B256} *x\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_wanted_is_reduced_to_its_basename():
    assert find_digest(f'{A256}  {IMG}\n{B256}  b.img\n', f'dir/{IMG}', URL) == ('sha256', A256)


def test_names_with_spaces():
    text = f'{A256}  my image.img\n{B256}  other.img\n'
    assert find_digest(text, 'my image.img', URL) == ('sha256', A256)


def test_bsd_lines_both_algorithms():
    text = f'SHA256 (other.img) = {B256}\nSHA256 ({IMG}) = {A256}\nSHA512 (big.img) = {A512}\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)
    assert find_digest(text, 'big.img', URL) == ('sha512', A512)


def test_bsd_lines_without_spaces_and_lower_case_tag():
    text = f'sha256 (other.img) = {B256}\nSHA256({IMG})={A256.upper()}\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_comments_blank_lines_and_crlf_are_ignored():
    text = f'\r\n# {IMG} was built today\r\n\r\n   \r\n{A256}  {IMG}\r\n# {B256}  {IMG}\r\n{B256}  b.img\r\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_mixed_gnu_and_bsd_lines_agreeing_are_one_digest():
    text = f'{A256}  ./{IMG}\nSHA256 ({IMG}) = {A256}\n{A256} *{IMG}\n{B256}  b.img\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_fedora_style_clear_signed_file():
    text = (
        '-----BEGIN PGP SIGNED MESSAGE-----\n'
        'Hash: SHA256\n'
        '\n'
        f'# {IMG}: 123456 bytes\n'
        f'SHA256 ({IMG}) = {A256}\n'
        f'SHA256 (other.img) = {B256}\n'
        '- -this line was dash-escaped\n'
        '-----BEGIN PGP SIGNATURE-----\n'
        '\n'
        'iQIzBAEBCAAdFiEE0123456789abcdefabcdef0123456789abcdefAAoJEC0f\n'
        f'{C256}  {IMG}\n'  # not signed: never read
        '=abcd\n'
        '-----END PGP SIGNATURE-----\n'
    )
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_clear_signed_gnu_lines_without_armor_headers_and_leading_blank_lines():
    text = (
        f'\n\n-----BEGIN PGP SIGNED MESSAGE-----\n\n{A512}  {IMG}\n{B256}  b.img\n'
        f'-----BEGIN PGP SIGNATURE-----\nxyz\n{C256}  c.img\n-----END PGP SIGNATURE-----\n'
    )
    assert find_digest(text, IMG, URL) == ('sha512', A512)
    assert 'no line for' in error_of(text, 'c.img')


def test_clear_signed_signature_lines_are_not_entries():
    # a signature line made only of hex-looking characters would otherwise be a digest
    text = f'-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n{A256}\n-----BEGIN PGP SIGNATURE-----\n\nabcdef\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


def test_byte_order_mark_is_ignored():
    assert find_digest(f'\ufeff{A256}  {IMG}\n{B256}  b.img\n', IMG, URL) == ('sha256', A256)


# --- find_digest: single-digest files ---------------------------------------------------------


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        (f'{A256}\n', ('sha256', A256)),
        (A256, ('sha256', A256)),
        (f'  {A512.upper()}  \n', ('sha512', A512)),
        (f'{A256}  {IMG}\n', ('sha256', A256)),
        (f'{A256} *./{IMG}\n', ('sha256', A256)),
        (f'# generated\n\n{A512}\n', ('sha512', A512)),
        (f'SHA512 ({IMG}) = {A512}\n', ('sha512', A512)),
    ],
)
def test_single_digest_files(text, expected):
    assert find_digest(text, IMG, URL) == expected


def test_single_digest_file_naming_another_file_is_an_error_naming_both():
    message = error_of(f'{A256}  jammy-server-cloudimg-amd64.img\n')
    assert message == (f"the only line in {URL} is for 'jammy-server-cloudimg-amd64.img', not '{IMG}'")


# --- find_digest: errors ----------------------------------------------------------------------


def test_missing_entry_names_url_file_and_what_is_listed():
    names = [f'file{i}.img' for i in range(14)]
    text = ''.join(f'{B256}  {name}\n' for name in names)
    assert error_of(text) == (
        f"no line for '{IMG}' in {URL} (it lists 14 files, e.g. 'file0.img', 'file1.img', 'file2.img')"
    )


def test_missing_entry_with_one_listed_name_and_a_bare_digest():
    assert error_of(f'{B256}  b.img\n{C256}\n') == f"no line for '{IMG}' in {URL} (it lists 1 file, e.g. 'b.img')"


def test_two_different_digests_for_one_name_is_an_error():
    text = f'{A256}  {IMG}\n{B256}  b.img\n{C256}  ./{IMG}\n'
    message = error_of(text)
    assert message.startswith(f"2 different digests for '{IMG}' in {URL}: ")
    assert A256[:10] in message and C256[:10] in message


def test_same_digest_twice_is_fine():
    assert find_digest(f'{A256}  {IMG}\n{A256}  ./{IMG}\n', IMG, URL) == ('sha256', A256)


@pytest.mark.parametrize('digest', [hashlib.md5(b'a').hexdigest(), hashlib.sha1(b'a').hexdigest(), A256 + 'ab'])
def test_bad_length_is_an_error(digest):
    message = error_of(f'{digest}  {IMG}\n{B256}  b.img\n')
    assert message == (
        f"the digest for '{IMG}' in {URL} has {len(digest)} hex digits; a sha256 digest has 64, a sha512 digest 128"
    )


def test_bad_length_of_a_single_bare_digest():
    assert 'has 32 hex digits' in error_of(hashlib.md5(b'a').hexdigest())


def test_bsd_line_whose_length_contradicts_its_algorithm():
    message = error_of(f'SHA512 ({IMG}) = {A256}\n')
    assert message == (
        f"the digest for '{IMG}' in {URL} has 64 hex digits on a SHA512 line; a sha256 digest has 64, a sha512 digest 128"
    )


def test_other_files_with_odd_lengths_do_not_matter():
    text = f'{hashlib.md5(b"a").hexdigest()}  a.img\n{A256}  {IMG}\n'
    assert find_digest(text, IMG, URL) == ('sha256', A256)


@pytest.mark.parametrize('text', ['', '\n\n', '# only a comment\n', '<html><body>Not here</body></html>\n'])
def test_no_checksum_lines(text):
    assert error_of(text) == f"no checksum lines in {URL} (looking for '{IMG}')"


def test_error_names_the_url_without_credentials():
    message = error_of(
        f'{B256}  b.img\n{C256}  c.img\n', label='https://bob:hunter22@mirror.example/SUMS?token=abcdefgh'
    )
    assert 'https://***@mirror.example/SUMS?***' in message
    assert 'hunter22' not in message and 'abcdefgh' not in message


def test_error_is_an_imagegov_error():
    assert issubclass(ChecksumFileError, ImagegovError)


# --- fetching from a real local server --------------------------------------------------------

SUMS = f'{B256}  b.img\n{A256}  {IMG}\n'.encode()
ROUTES = {
    '/SHA256SUMS': (200, SUMS),
    '/single.sha512': (200, f'{A512}\n'.encode()),
    '/big': (200, b'#' * 5000),
    '/latin1': (200, f'{A256}  caf\xe9.img\n'.encode('latin-1')),
    '/slow': (200, SUMS),
}


class Handler(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, str | None, str | None]] = []

    def do_GET(self):
        self.requests.append((self.path, self.headers.get('User-Agent'), self.headers.get('Authorization')))
        path = self.path.partition('?')[0]
        if path == '/slow':
            time.sleep(1)
        status, body = ROUTES.get(path, (404, b'not found'))
        try:
            self.send_response(status)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def clear_requests():
    Handler.requests.clear()


def fetch_error(url, **kwargs):
    with pytest.raises(ChecksumFileError) as raised:
        fetch_checksum(url, IMG, **kwargs)
    return str(raised.value)


def test_fetch_200(server):
    assert fetch_checksum(f'{server}/SHA256SUMS', IMG) == ('sha256', A256)
    assert fetch_checksum(f'{server}/single.sha512', IMG) == ('sha512', A512)
    assert Handler.requests[0] == ('/SHA256SUMS', 'imagegov.openstack', None)


def test_fetch_404_names_url_and_status(server):
    assert fetch_error(f'{server}/missing') == f'checksum URL {server}/missing: the server answered HTTP 404 Not Found'


def test_fetch_404_with_credentials_and_query_hides_them(server):
    host = server.partition('://')[2]
    message = fetch_error(f'http://bob:hunter22@{host}/missing?sig=abcdefghij')
    assert message == f'checksum URL http://***@{host}/missing?***: the server answered HTTP 404 Not Found'
    # the credentials went out as HTTP basic authentication, not in the request line
    path, _agent, authorization = Handler.requests[0]
    assert path == '/missing?sig=abcdefghij'
    assert authorization == 'Basic Ym9iOmh1bnRlcjIy'


def test_fetch_missing_entry_names_the_url(server):
    with pytest.raises(ChecksumFileError) as raised:
        fetch_checksum(f'{server}/SHA256SUMS', 'other.img')
    assert (
        str(raised.value) == f"no line for 'other.img' in {server}/SHA256SUMS (it lists 2 files, e.g. 'b.img', '{IMG}')"
    )


def test_fetch_oversize_is_an_error_not_a_truncation(server):
    assert fetch_error(f'{server}/big', limit=4096) == (
        f'checksum URL {server}/big: larger than 4096 bytes; is it a checksum file?'
    )
    assert fetch_text(f'{server}/big', limit=5000) == '#' * 5000


def test_fetch_non_utf8(server):
    assert (
        fetch_error(f'{server}/latin1')
        == f'checksum URL {server}/latin1: not UTF-8 text (invalid byte at offset 69); is it a checksum file?'
    )


def test_fetch_timeout(server):
    started = time.monotonic()
    message = fetch_error(f'{server}/slow', timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert message.startswith(f'checksum URL {server}/slow: cannot be fetched: ')
    assert 'timed out' in message


def test_fetch_connection_refused():
    with http.server.HTTPServer(('127.0.0.1', 0), Handler) as unused:
        port = unused.server_address[1]
    assert fetch_error(f'http://127.0.0.1:{port}/SHA256SUMS', timeout=5).startswith(
        f'checksum URL http://127.0.0.1:{port}/SHA256SUMS: cannot be fetched: '
    )


@pytest.mark.parametrize(
    'url', ['file:///etc/passwd', 'ftp://mirror.example/SHA256SUMS', 'SHA256SUMS', 'https://', 'http://[::1/x']
)
def test_fetch_only_http_and_https(url):
    assert fetch_error(url).endswith(': only http:// and https:// URLs can be fetched')


# --- the resolver -----------------------------------------------------------------------------


def test_resolver_fetches_each_url_once(server):
    resolver = ChecksumResolver(timeout=5)
    assert resolver.resolve(f'{server}/SHA256SUMS', IMG) == ('sha256', A256)
    assert resolver.resolve(f'{server}/SHA256SUMS', 'b.img') == ('sha256', B256)
    assert resolver.resolve(f'{server}/SHA256SUMS', IMG) == ('sha256', A256)
    assert resolver.fetches == 1
    assert resolver.resolve(f'{server}/single.sha512', IMG) == ('sha512', A512)
    assert resolver.fetches == 2
    assert [path for path, _agent, _auth in Handler.requests] == ['/SHA256SUMS', '/single.sha512']


def test_resolver_remembers_fetch_errors_and_lookup_errors_are_per_file(server):
    resolver = ChecksumResolver()
    for _attempt in range(2):
        with pytest.raises(ChecksumFileError, match='HTTP 404'):
            resolver.resolve(f'{server}/missing', IMG)
    with pytest.raises(ChecksumFileError, match="no line for 'c.img'"):
        resolver.resolve(f'{server}/SHA256SUMS', 'c.img')
    assert resolver.resolve(f'{server}/SHA256SUMS', 'b.img') == ('sha256', B256)
    assert resolver.fetches == 2
    assert len(Handler.requests) == 2


def test_resolver_passes_its_limit(server):
    with pytest.raises(ChecksumFileError, match='larger than 100 bytes'):
        ChecksumResolver(limit=100).resolve(f'{server}/big', IMG)
