# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image bytes read once: hashed, inspected by oslo.utils' format inspector, and streamed.

The same chunks that go to Glance feed sha256 and the inspectors, so memory stays at a
few chunks whatever the image size, and the facts describe exactly the bytes sent.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import threading
import traceback
from collections.abc import Iterator
from typing import Any

try:
    from oslo_utils.imageutils import format_inspector
except ImportError:
    format_inspector = None
    FORMAT_INSPECTOR_IMPORT_ERROR = traceback.format_exc()
else:
    FORMAT_INSPECTOR_IMPORT_ERROR = None

from ._errors import ImagegovError
from ._redact import redact_url
from ._sniff import BOOT_FILE_HEAD, boot_file

CHUNK_SIZE = 4 * 1024 * 1024
UNKNOWN_LENGTH_CHUNK_SIZE = 512 * 1024
# Glance's own hash of stored data (`os_hash_algo`), unless an image says otherwise.
GLANCE_HASH = 'sha512'
# Glance's disk_format for each format the inspector names; `gpt` (a partitioned disk) is
# raw to Glance. A detected format missing here has no Glance disk_format at all.
GLANCE_DISK_FORMATS = {
    'raw': 'raw',
    'gpt': 'raw',
    'qcow2': 'qcow2',
    'vmdk': 'vmdk',
    'vhd': 'vhd',
    'vhdx': 'vhdx',
    'vdi': 'vdi',
    'iso': 'iso',
    'ploop': 'ploop',
}
UNSUPPORTED_FORMAT_HINTS = {
    'qed': 'convert it first (qemu-img convert -f qed -O qcow2 SOURCE TARGET.qcow2)',
    'luks': (
        'Glance has no disk_format for a LUKS container: upload the encrypted volume as '
        'raw with disk_format raw, or the plain disk it holds'
    ),
}
_CONTENT_RANGE_TOTAL = re.compile(r'^bytes \d+-\d+/(\d+)$')
# Failed safety checks are reported in the result; without a handler the inspector's own
# warnings would also land on stderr through logging's last-resort handler.
logging.getLogger('oslo_utils.imageutils.format_inspector').addHandler(logging.NullHandler())


class SourceError(ImagegovError):
    """The image source cannot be read; the message says which and why."""


class Source:
    """A local file or a URL the client reads and streams itself."""

    def __init__(self, filename: str | None = None, url: str | None = None, timeout: float | None = None) -> None:
        self.filename = filename
        self.url = url
        self.timeout = timeout
        self.label = f'filename {filename!r}' if filename else f'url {redact_url(url)!r}'

    def check(self) -> None:
        """Fail early, before any image record exists, when the source is unusable."""
        if self.filename:
            if not os.path.isfile(self.filename):
                raise SourceError(
                    f'{self.label}: no such file. Check the path (it is read on the host the task runs on).'
                )
            if not os.access(self.filename, os.R_OK):
                raise SourceError(f'{self.label}: the file is not readable by this user.')
        else:
            with self._open_url(1):
                pass

    def _open_url(self, first_bytes: int | None = None) -> Any:
        import requests

        # A header read asks for the header only: a plan never downloads a whole image.
        headers = {'Range': f'bytes=0-{first_bytes - 1}'} if first_bytes else {}
        try:
            response = requests.get(self.url, stream=True, timeout=self.timeout or 60, headers=headers)
        except requests.RequestException as exc:
            raise SourceError(f'{self.label}: cannot be fetched: {_without_url(exc)}') from exc
        if response.status_code not in ((200, 206) if first_bytes else (200,)):
            response.close()
            raise SourceError(
                f'{self.label}: the server answered HTTP {response.status_code} {response.reason}; expected 200.'
            )
        return response

    def stream(self, first_bytes: int | None = None) -> tuple[int | None, Iterator[bytes]]:
        """The source's whole length when known beforehand, and its bytes in chunks; with
        ``first_bytes``, only that many bytes from the start."""
        if self.filename:
            return os.path.getsize(self.filename), self._file_chunks(first_bytes)
        response = self._open_url(first_bytes)
        if response.status_code == 206:
            total = _CONTENT_RANGE_TOTAL.match(response.headers.get('Content-Range', ''))
            return (int(total.group(1)) if total else None), self._url_chunks(response, True, first_bytes)
        length = response.headers.get('Content-Length') or ''
        known = length.isdigit() and not response.headers.get('Content-Encoding')
        return (int(length) if known else None), self._url_chunks(response, known, first_bytes)

    def _file_chunks(self, limit: int | None) -> Iterator[bytes]:
        with open(self.filename, 'rb') as stream:
            left = limit
            while left is None or left > 0:
                chunk = stream.read(CHUNK_SIZE if left is None else min(CHUNK_SIZE, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def _url_chunks(self, response: Any, length_known: bool, limit: int | None) -> Iterator[bytes]:
        import requests

        # Without a length the upload goes out chunk-encoded, and WSGI servers cap one
        # encoded chunk (uwsgi: 1 MiB), so keep those pieces small.
        size = CHUNK_SIZE if length_known else UNKNOWN_LENGTH_CHUNK_SIZE
        read = 0
        with response:
            try:
                for chunk in response.iter_content(size):
                    if limit is not None and read + len(chunk) >= limit:
                        yield chunk[: limit - read]
                        return  # closing the response stops a server that ignored Range
                    read += len(chunk)
                    yield chunk
            except requests.RequestException as exc:
                raise SourceError(f'{self.label}: the download broke off: {_without_url(exc)}') from exc


class StoredData:
    """The data Glance stores for an image, read back through Glance's own download."""

    def __init__(self, glance: Any, image_id: str) -> None:
        self.glance = glance
        self.image_id = image_id
        self.label = f'the data Glance stored for image {image_id}'
        self.filename = self.url = None

    def check(self) -> None:
        pass

    def stream(self, first_bytes: int | None = None) -> tuple[int | None, Iterator[bytes]]:
        return self.glance.download(self.image_id, first_bytes)


def glance_disk_format(detected: str | None) -> str | None:
    """Glance's disk_format for a detected format, or None when Glance has none."""
    return GLANCE_DISK_FORMATS.get(detected or 'raw')


def unsupported_format_message(detected: str, label: str) -> str:
    hint = UNSUPPORTED_FORMAT_HINTS.get(detected, 'convert it to qcow2 or raw first')
    return (
        f'{label} is {detected}, which Glance has no disk_format for '
        f'({", ".join(sorted(set(GLANCE_DISK_FORMATS.values())))}): {hint}.'
    )


def _without_url(exc: BaseException) -> str:
    """An HTTP library's error text without the URL it quotes (a query may be a signature)."""
    return re.sub(r'(https?://|url: )\S+', r'\1<url>', str(exc))


class StreamBody:
    """A request body of known length that hands out whole chunks, whatever size is asked.

    With a length, requests sends Content-Length instead of chunked encoding, which every
    WSGI server in front of Glance accepts; http.client sends whatever each read returns.
    """

    def __init__(self, chunks: Iterator[bytes], length: int) -> None:
        self._chunks = chunks
        self._length = length

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b'')


PRESCAN_BYTES = 8 * 1024 * 1024


def prescan(source: Any) -> dict[str, Any]:
    """Facts from the header and the announced length only: enough to refuse an image that is
    too large or unsafe before a single byte goes to Glance (a 26 GiB sparse file: ~1 s)."""
    scanner = ContentScanner(source, first_bytes=PRESCAN_BYTES).consume()
    facts = header_facts(scanner)
    facts.pop('sha256')
    facts['complete'] = scanner.size == scanner.length
    return facts


def header_facts(scanner: ContentScanner) -> dict[str, Any]:
    """The facts of a scanner that read only the start of its source, sized as the whole
    source when its length is known."""
    facts = scanner.facts()
    total = scanner.length
    if total is not None and scanner.size < total:
        facts['size'] = total
        # Formats without a header size (raw, a partition table) are as large as the data.
        if facts['virtual_size'] in (None, scanner.size):
            facts['virtual_size'] = total
    return facts


class ContentScanner:
    """Iterates over a source's chunks while hashing and inspecting them.

    ``glance_hash`` names a second hashlib algorithm (Glance's ``os_hash_algo``): what Glance
    computes of the same bytes must equal it, which proves Glance stored what was read.
    ``first_bytes`` reads only the start of the source. A subclass without ``with_sha256``
    skips the sha256 (``facts()['sha256']`` is then None): a copy between Glances is proven
    by Glance's own algorithm alone.
    """

    with_sha256 = True

    def __init__(self, source: Any, glance_hash: str | None = None, first_bytes: int | None = None) -> None:
        if format_inspector is None:
            raise SourceError(
                'oslo.utils is required for format inspection: pip install oslo.utils (see requirements.txt).'
            )
        self.source = source
        self.sha256 = hashlib.sha256() if self.with_sha256 else None
        self.glance_hash = _ThreadedHash(glance_hash) if glance_hash else None
        self.size = 0
        self.head = b''
        self.error: Exception | None = None
        self.finished = False
        self.length, chunks = source.stream(first_bytes)
        self._wrapper = format_inspector.InspectWrapper(self._counted(chunks))

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                if self.sha256 is not None:
                    self.sha256.update(chunk)
                if self.glance_hash is not None:
                    self.glance_hash.update(chunk)
                if len(self.head) < BOOT_FILE_HEAD:
                    self.head += chunk[: BOOT_FILE_HEAD - len(self.head)]
                self.size += len(chunk)
                yield chunk
        except BaseException as exc:
            self.error = exc
            if self.glance_hash is not None:
                self.glance_hash.close()
            raise
        self.finished = True

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._wrapper)

    def body(self) -> Any:
        """What to hand to the HTTP client: sized when the length is known."""
        return self if self.length is None else StreamBody(iter(self), self.length)

    def consume(self, limit: int | None = None) -> ContentScanner:
        """Read without sending anywhere: everything, or only the first ``limit`` bytes.

        A partial read still decides the format of header-described images (qcow2, vmdk,
        iso...); inspectors that needed more bytes count as not matching.
        """
        for _chunk in self:
            if limit is not None and self.size >= limit:
                self._wrapper.close()
                break
        return self

    def inspector(self) -> Any:
        """The format inspector that matched the bytes read, or None (see facts() for why)."""
        try:
            return _single_format(self._wrapper)
        except format_inspector.ImageFormatError:
            return None

    def facts(self) -> dict[str, Any]:
        """Detected format, sizes, sha256 and failed safety checks of the bytes read, and
        ``boot_file``: ``kernel`` or ``ramdisk`` when their header proves one (see _sniff)."""
        facts: dict[str, Any] = {
            'size': self.size,
            'sha256': self.sha256.hexdigest() if self.sha256 is not None else None,
            'detected_format': None,
            'virtual_size': None,
            'safety_failures': [],
            'boot_file': boot_file(self.head),
        }
        if self.glance_hash is not None:
            facts['glance_hash'] = {'algo': self.glance_hash.name, 'value': self.glance_hash.hexdigest()}
        try:
            inspector = _single_format(self._wrapper)
        except format_inspector.ImageFormatError as exc:
            facts['safety_failures'].append({'check': 'format', 'message': str(exc)})
            return facts
        if inspector is None:  # the read stopped before the inspectors could decide
            return facts
        facts['detected_format'] = str(inspector)
        facts['virtual_size'] = inspector.virtual_size or self.size
        try:
            inspector.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            facts['safety_failures'].extend(
                {'check': name, 'message': str(error)} for name, error in sorted(exc.failures.items())
            )
        except format_inspector.ImageFormatError as exc:
            facts['safety_failures'].append({'check': 'format', 'message': str(exc)})
        return facts


class _ThreadedHash:
    """A digest computed in a thread of its own: hashlib releases the GIL on large updates,
    so a second digest of the stream costs CPU on a spare core, not time on this one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._hash = hashlib.new(name)
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._digest: str | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        if self._digest is None:
            self.close()
            self._digest = self._hash.hexdigest()
        return self._digest


def _single_format(wrapper: Any) -> Any:
    # A bootable ISO legitimately carries a partition table as well: Glance and Nova treat
    # iso + gpt as iso, so do the same instead of failing on "multiple formats".
    matches = wrapper.formats or []
    names = {str(match) for match in matches}
    if len(matches) > 1 and 'iso' in names and names <= {'iso', 'gpt'}:
        return next(match for match in matches if str(match) == 'iso')
    return wrapper.format


def prescan_head(chunks: Iterator[bytes], total: int | None) -> dict[str, Any]:
    """prescan() of the first bytes of data read elsewhere (a Range request for the data
    Glance stores), ``total`` being the size of the whole data: the same facts, as if the
    source had been read up to PRESCAN_BYTES."""
    from types import SimpleNamespace

    # Any first_bytes the scanner asks for: the chunks are already only the head.
    return prescan(SimpleNamespace(stream=lambda *_first_bytes: (total, chunks)))
