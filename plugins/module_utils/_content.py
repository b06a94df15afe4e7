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
import traceback
from typing import Any, Iterator

try:
    from oslo_utils.imageutils import format_inspector
except ImportError:
    format_inspector = None
    FORMAT_INSPECTOR_IMPORT_ERROR = traceback.format_exc()
else:
    FORMAT_INSPECTOR_IMPORT_ERROR = None

from ._errors import ImagegovError

CHUNK_SIZE = 4 * 1024 * 1024
UNKNOWN_LENGTH_CHUNK_SIZE = 512 * 1024
# Failed safety checks are reported in the result; without a handler the inspector's own
# warnings would also land on stderr through logging's last-resort handler.
logging.getLogger('oslo_utils.imageutils.format_inspector').addHandler(logging.NullHandler())


class SourceError(ImagegovError):
    """The image source cannot be read; the message says which and why."""


class Source:
    """A local file or a URL the client reads and streams itself."""

    def __init__(self, filename: str | None = None, url: str | None = None,
                 timeout: float | None = None) -> None:
        self.filename = filename
        self.url = url
        self.timeout = timeout
        self.label = f'filename {filename!r}' if filename else f'url {url!r}'

    def check(self) -> None:
        """Fail early, before any image record exists, when the source is unusable."""
        if self.filename:
            if not os.path.isfile(self.filename):
                raise SourceError(f'{self.label}: no such file. Check the path (it is read '
                                  'on the host the task runs on).')
            if not os.access(self.filename, os.R_OK):
                raise SourceError(f'{self.label}: the file is not readable by this user.')
        else:
            with self._open_url():
                pass

    def _open_url(self) -> Any:
        import requests
        try:
            response = requests.get(self.url, stream=True, timeout=self.timeout or 60)
        except requests.RequestException as exc:
            raise SourceError(f'{self.label}: cannot be fetched: {exc}') from exc
        if response.status_code != 200:
            response.close()
            raise SourceError(f'{self.label}: the server answered HTTP {response.status_code} '
                              f'{response.reason}; expected 200.')
        return response

    def stream(self) -> tuple[int | None, Iterator[bytes]]:
        """The number of bytes when known beforehand, and the bytes in chunks."""
        if self.filename:
            return os.path.getsize(self.filename), self._file_chunks()
        response = self._open_url()
        length = response.headers.get('Content-Length')
        known = length.isdigit() and not response.headers.get('Content-Encoding')
        return (int(length) if known else None), self._url_chunks(response, known)

    def _file_chunks(self) -> Iterator[bytes]:
        with open(self.filename, 'rb') as stream:
            while True:
                chunk = stream.read(CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk

    def _url_chunks(self, response: Any, length_known: bool) -> Iterator[bytes]:
        import requests
        # Without a length the upload goes out chunk-encoded, and WSGI servers cap one
        # encoded chunk (uwsgi: 1 MiB), so keep those pieces small.
        size = CHUNK_SIZE if length_known else UNKNOWN_LENGTH_CHUNK_SIZE
        with response:
            try:
                yield from response.iter_content(size)
            except requests.RequestException as exc:
                raise SourceError(f'{self.label}: the download broke off: {exc}') from exc


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


def prescan(source: 'Source') -> dict[str, Any]:
    """Facts from the header and the announced length only: enough to refuse an image that is
    too large or unsafe before a single byte goes to Glance (a 26 GiB sparse file: ~1 s)."""
    scanner = ContentScanner(source).consume(limit=PRESCAN_BYTES)
    facts = scanner.facts()
    facts.pop('sha256')
    total = scanner.length if scanner.length is not None else None
    if total is not None and scanner.size < total:
        facts['size'] = total
        # Formats without a header size (raw, a partition table) are as large as the data.
        if facts['virtual_size'] in (None, scanner.size):
            facts['virtual_size'] = total
    facts['complete'] = scanner.size == total
    return facts


class ContentScanner:
    """Iterates over a source's chunks while hashing and inspecting them.

    ``extra_hash`` names a second hashlib algorithm (Glance's ``os_hash_algo``) so an image
    uploaded by another tool can be recognised by the hash Glance recorded.
    """

    def __init__(self, source: Source, extra_hash: str | None = None) -> None:
        if format_inspector is None:
            raise SourceError('oslo.utils is required for format inspection: '
                              'pip install oslo.utils (see requirements.txt).')
        self.source = source
        self.sha256 = hashlib.sha256()
        self.extra_hash = hashlib.new(extra_hash) if extra_hash else None
        self.size = 0
        self.error: Exception | None = None
        self.finished = False
        self.length, chunks = source.stream()
        self._wrapper = format_inspector.InspectWrapper(self._counted(chunks))

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                self.sha256.update(chunk)
                if self.extra_hash is not None:
                    self.extra_hash.update(chunk)
                self.size += len(chunk)
                yield chunk
        except Exception as exc:
            self.error = exc
            raise
        self.finished = True

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._wrapper)

    def body(self) -> Any:
        """What to hand to the HTTP client: sized when the length is known."""
        return self if self.length is None else StreamBody(iter(self), self.length)

    def consume(self, limit: int | None = None) -> 'ContentScanner':
        """Read without sending anywhere: everything, or only the first ``limit`` bytes.

        A partial read still decides the format of header-described images (qcow2, vmdk,
        iso...); inspectors that needed more bytes count as not matching.
        """
        for _chunk in self:
            if limit is not None and self.size >= limit:
                self._wrapper.close()
                break
        return self

    def facts(self) -> dict[str, Any]:
        """Detected format, sizes, sha256 and failed safety checks of the bytes read."""
        facts: dict[str, Any] = {'size': self.size, 'sha256': self.sha256.hexdigest(),
                                 'detected_format': None, 'virtual_size': None,
                                 'safety_failures': []}
        if self.extra_hash is not None:
            facts['extra_hash'] = {'algo': self.extra_hash.name,
                                   'value': self.extra_hash.hexdigest()}
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
                {'check': name, 'message': str(error)} for name, error in sorted(exc.failures.items()))
        except format_inspector.ImageFormatError as exc:
            facts['safety_failures'].append({'check': 'format', 'message': str(exc)})
        return facts


def _single_format(wrapper: Any) -> Any:
    # A bootable ISO legitimately carries a partition table as well: Glance and Nova treat
    # iso + gpt as iso, so do the same instead of failing on "multiple formats".
    matches = wrapper.formats or []
    names = {str(match) for match in matches}
    if len(matches) > 1 and 'iso' in names and names <= {'iso', 'gpt'}:
        return next(match for match in matches if str(match) == 'iso')
    return wrapper.format
