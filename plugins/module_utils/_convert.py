# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe image conversion with qemu-img: the source is judged before qemu-img opens it.

    with inspect_source(path, scratch_dir, run) as source:     # decompresses gz / xz / zst
        decision = policy(stored_facts(source, 'qcow2'))        # before any work
        with convert(source, 'qcow2', scratch_dir, run) as converted:
            upload(converted.path)                              # removed when the block ends

qemu-img on a qcow2 with a backing file or a vmdk whose extents name host files reads those
files into the output: opening an unsafe image *is* the attack. So the bytes are first
judged by oslo.utils' format inspector (and this module's own vmdk descriptor rules), and
qemu-img runs only on what passed, always with an explicit ``-f`` and ``--force-share``.

``run`` runs a command the way AnsibleModule.run_command does and hands the child process
to ``started`` before waiting for it (run_command's ``before_communicate_callback``), so an
interruption can kill it: modules pass
``lambda args, started: module.run_command(args, before_communicate_callback=started)``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeAlias

from ._content import PRESCAN_BYTES, ContentScanner, Source, glance_disk_format, header_facts, prescan
from ._errors import ImagegovError
from .catalog.constants import CONVERSION_TARGETS

Runner: TypeAlias = Callable[[list[str], Callable[[Any], None]], tuple[int, str, str]]

# qemu-img's driver for each format the inspector names; a format missing here is never
# handed to qemu-img (iso is a file system, not a disk; qed, luks, ploop are not converted).
QEMU_DRIVERS = {
    'raw': 'raw',
    'gpt': 'raw',
    'qcow2': 'qcow2',
    'vmdk': 'vmdk',
    'vhd': 'vpc',
    'vhdx': 'vhdx',
    'vdi': 'vdi',
}
# VMware's Glance driver and OVAs carry streamOptimized: compressed grains, one file.
TARGET_OPTIONS = {'vmdk': ['-o', 'subformat=streamOptimized']}
SPARSE_SIZE = '4k'
COMPRESSION_MAGIC = {
    b'\x1f\x8b': 'gzip',
    b'\xfd7zXZ\x00': 'xz',
    b'(\xb5/\xfd': 'zstd',
}
CHUNK_SIZE = 4 * 1024 * 1024
INSPECT_CHUNK_SIZE = 64 * 1024
# Zero blocks of this size are skipped (a hole) when a decompressed disk is written.
HOLE_SIZE = 64 * 1024
_ZEROS = bytes(HOLE_SIZE)
# xz -9 needs 65 MiB to decompress; a crafted header asking for more is refused.
XZ_MEMORY_LIMIT = 128 * 1024 * 1024
# qemu reads a descriptor of up to 1 MiB; the inspector captures as much.
VMDK_DESCRIPTOR_MAX = (1 << 20) - 1
FLAT_CREATE_TYPES = ('monolithicflat', 'twogbmaxextentflat')
_EXTENT = re.compile(r'^(RW|RDONLY) ([0-9]+) FLAT "([^"/\\\x00]+)"(?: ([0-9]+))?$')
_HEADER = re.compile(r'^([A-Za-z]+)=(.*)$')
_DDB = re.compile(r'^ddb\.[A-Za-z0-9_.]+ = "[^"]*"$')
_FLAT_HEADER_FIELDS = {'version', 'cid', 'parentcid', 'createtype', 'encoding'}
NO_PARENT_CID = 'ffffffff'


class ConversionError(ImagegovError):
    """A source that cannot be converted, or a conversion that failed; the message says why."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a conversion: raised like Ctrl-C so the same cleanup runs."""


class SourceImage:
    """A source file judged for conversion: its facts, and the file qemu-img may read.

    For a compressed source, ``path`` is its decompressed copy in scratch space, removed by
    close() (or the end of a ``with`` block).
    """

    def __init__(self, given: str, path: str, facts: dict[str, Any], workdir: str | None = None) -> None:
        self.given = given
        self.path = path
        self.facts = facts
        self._workdir = workdir
        # The file as it was judged: qemu-img must read the same one, unchanged.
        self.identity = file_identity(path)

    @property
    def format(self) -> str | None:
        return self.facts['detected_format']

    @property
    def safe(self) -> bool:
        return not self.facts['safety_failures']

    def sha256(self) -> str:
        """The given file's sha256 (read now when the inspection left it for later)."""
        if self.facts['sha256'] is None:
            self.facts['sha256'] = _file_sha256(self.path)
        return self.facts['sha256']

    def close(self) -> None:
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> SourceImage:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class ConvertedImage:
    """The converted file in scratch space and the facts of its bytes; removed by close()."""

    def __init__(self, path: str, target_format: str, facts: dict[str, Any], workdir: str | None) -> None:
        self.path = path
        self.format = target_format
        self.facts = facts
        self._workdir = workdir

    @property
    def sha256(self) -> str:
        return self.facts['sha256']

    @property
    def source_sha256(self) -> str:
        return self.facts['source_sha256']

    def close(self) -> None:
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> ConvertedImage:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


# --- inspection -------------------------------------------------------------------------


def inspect_source(
    path: str,
    scratch_dir: str,
    run: Runner,
    max_decompressed: int | None = None,
    local_extents: bool = True,
    whole: bool = True,
) -> SourceImage:
    """Judge ``path`` before qemu-img opens it; failures are listed in its facts, not raised.

    A gzip / xz / zstd file is decompressed into scratch space (at most ``max_decompressed``
    bytes) and its content judged. ``local_extents=False`` refuses flat vmdk descriptors,
    whose extent files only mean something for a file the user placed (not a download).
    ``whole=False`` judges an uncompressed file on its first PRESCAN_BYTES (where every
    format keeps what qemu-img would follow: backing and data files, descriptors, extents)
    and leaves its sha256 for later: convert() hashes it while qemu-img converts, so the
    source is not read twice over before the conversion starts.
    """
    path = os.path.abspath(path)
    compression = _compression(path)
    if compression is None:
        before = file_identity(path)
        scanned = _scan(path) if whole else _scan_header(path)
        source = SourceImage(path, path, _judge(path, scanned, run, local_extents))
        if source.identity != before:
            raise ConversionError(f'{path} changed while it was judged: run again once nothing writes it')
        return source
    workdir = _workdir(scratch_dir)
    try:
        source = _decompressed(path, compression, workdir, max_decompressed, run)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    source._workdir = workdir
    return source


def file_identity(path: str) -> tuple[int, ...]:
    """Which file ``path`` is and when it last changed: a file swapped for another (a rename)
    or written to between inspection and conversion no longer matches."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _compression(path: str) -> str | None:
    with open(path, 'rb') as stream:
        return compression_in(stream.read(8))


def compression_in(head: bytes) -> str | None:
    """gzip / xz / zstd when ``head`` (a file's first bytes) starts like one."""
    return next((name for magic, name in COMPRESSION_MAGIC.items() if head.startswith(magic)), None)


def _scan_header(path: str) -> tuple[dict[str, Any], Any]:
    """The facts of the first PRESCAN_BYTES, with the whole file's size; no sha256 yet."""
    scanner = ContentScanner(_InspectedFile(filename=path)).consume(limit=PRESCAN_BYTES)
    return dict(header_facts(scanner), sha256=None), scanner.inspector()


def _scan(path: str) -> tuple[dict[str, Any], Any]:
    """One full read: sha256, format, virtual size and the inspector's safety checks."""
    scanner = ContentScanner(_InspectedFile(filename=path)).consume()
    return scanner.facts(), scanner.inspector()


class _InspectedFile(Source):
    """A local file in 64 KiB chunks, as Glance reads it: oslo's vhdx inspector finds the
    metadata region only when the region table was read before the stream passed it, which
    4 MiB chunks do not allow (it then reports "Incomplete file")."""

    def stream(self, first_bytes: int | None = None) -> tuple[int | None, Iterator[bytes]]:
        return os.path.getsize(self.filename), self._small_chunks()

    def _small_chunks(self) -> Iterator[bytes]:
        with open(self.filename, 'rb') as stream:
            yield from iter(lambda: stream.read(INSPECT_CHUNK_SIZE), b'')


def _judge(path: str, scanned: tuple[dict[str, Any], Any], run: Runner, local_extents: bool) -> dict[str, Any]:
    facts, inspector = scanned
    if facts['detected_format'] == 'raw' and _looks_like_descriptor(path, facts['size']):
        # oslo reads a descriptor padded with NULs (as qemu-img convert writes it) as raw;
        # qemu reads it as a vmdk, so judge it as one.
        facts['detected_format'] = 'vmdk'
        _judge_flat_vmdk(path, facts, local_extents)
    elif facts['detected_format'] == 'vmdk':
        _judge_vmdk(path, facts, inspector, local_extents)
    failures = facts['safety_failures']
    if facts['detected_format'] not in QEMU_DRIVERS and not failures:
        failures.append(_not_convertible(facts['detected_format']))
    if not failures:
        # A second opinion from qemu itself, only on what the inspector already passed.
        failures.extend(_qemu_info_failures(path, facts, run))
    return facts


def _looks_like_descriptor(path: str, size: int) -> bool:
    """qemu's own vmdk probe: comment and blank lines, then ``version=``."""
    if size > VMDK_DESCRIPTOR_MAX:
        return False
    with open(path, 'rb') as stream:
        lines = stream.read(4096).split(b'\0', 1)[0].splitlines()
    first = next((line.strip() for line in lines if line.strip() and not line.startswith(b'#')), b'')
    return first.startswith(b'version=')


def _not_convertible(detected: str | None) -> dict[str, str]:
    if detected == 'iso':
        why = 'an ISO is a file system for a CD-ROM drive, not a disk: it is uploaded as iso, never converted'
    else:
        why = f'{detected or "an unrecognised format"} is not converted (sources: {", ".join(sorted(QEMU_DRIVERS))})'
    return {'check': 'convertible', 'message': why}


def _judge_vmdk(path: str, facts: dict[str, Any], inspector: Any, local_extents: bool) -> None:
    descriptor = getattr(inspector, 'desc_text', None) or ''
    if getattr(inspector, 'vmdktype', None) in FLAT_CREATE_TYPES:
        # The inspector refuses every flat descriptor; one naming only plain files next to it
        # is safe, so this module judges it itself, stricter, with the original case.
        facts['safety_failures'] = [failure for failure in facts['safety_failures'] if failure['check'] != 'descriptor']
        _judge_flat_vmdk(path, facts, local_extents)
    elif _has_parent(descriptor):
        # A delta disk: qemu opens parentFileNameHint as its backing file, any path at all.
        facts['safety_failures'].append({'check': 'backing_file', 'message': 'the vmdk names a parent disk'})


def _has_parent(descriptor: str) -> bool:
    fields = {}
    for line in descriptor.splitlines():
        match = _HEADER.match(line.strip())
        if match:
            fields[match.group(1).lower()] = match.group(2).strip().strip('"').lower()
    return 'parentfilenamehint' in fields or fields.get('parentcid', NO_PARENT_CID) != NO_PARENT_CID


def _judge_flat_vmdk(path: str, facts: dict[str, Any], local_extents: bool) -> None:
    try:
        if not local_extents:
            raise ConversionError('a flat vmdk descriptor names extent files; only a local file may have them')
        extents = _flat_extents(path)
    except ConversionError as exc:
        facts['safety_failures'].append({'check': 'descriptor', 'message': str(exc)})
        return
    facts['virtual_size'] = sum(extent['sectors'] for extent in extents) * 512
    facts['extents'] = [{key: extent[key] for key in ('name', 'size', 'sha256')} for extent in extents]


def _flat_extents(path: str) -> list[dict[str, Any]]:
    text = _descriptor_text(path)
    extents = []
    for line in (line.strip() for line in text.splitlines()):
        if not line or line.startswith('#') or _DDB.match(line):
            continue
        header, extent = _HEADER.match(line), _EXTENT.match(line)
        if header:
            _check_flat_header(*header.groups())
        elif extent:
            extents.append(_flat_extent(path, *extent.groups()))
        elif line.split(' ', 1)[0] in ('RW', 'RDONLY', 'NOACCESS'):
            raise ConversionError(
                f'the vmdk extent {line[:80]!r} is refused: only FLAT extents that name a file '
                "in the descriptor's own directory (no slash) are accepted"
            )
        else:
            raise ConversionError(f'a vmdk descriptor line is not understood: {line[:80]!r}')
    if not extents:
        raise ConversionError('the vmdk descriptor names no extent')
    return extents


def _descriptor_text(path: str) -> str:
    if os.path.getsize(path) > VMDK_DESCRIPTOR_MAX:
        raise ConversionError('the vmdk descriptor is larger than qemu reads')
    with open(path, 'rb') as stream:
        try:
            # qemu reads the descriptor as a C string: it ends at the first NUL.
            return stream.read().split(b'\0', 1)[0].decode('ascii')
        except UnicodeDecodeError as exc:
            raise ConversionError('the vmdk descriptor is not ASCII text') from exc


def _check_flat_header(key: str, value: str) -> None:
    key, value = key.lower(), value.strip().strip('"').lower()
    if key not in _FLAT_HEADER_FIELDS:
        raise ConversionError(f'the vmdk descriptor has a field that is not accepted: {key}')
    if key == 'parentcid' and value != NO_PARENT_CID:
        raise ConversionError('the vmdk names a parent disk')
    if key == 'createtype' and value not in FLAT_CREATE_TYPES:
        raise ConversionError(f'a vmdk descriptor of type {value[:40]!r} is not accepted')


def _flat_extent(path: str, access: str, sectors: str, name: str, offset: str | None) -> dict[str, Any]:
    # qemu resolves a relative extent name against the descriptor's directory; a plain name
    # (no slash, not . or ..) of a regular file, not a symlink, stays there.
    if name in ('.', '..') or name.startswith('-'):
        raise ConversionError(f'the vmdk extent {name!r} is not a plain file name')
    extent_path = os.path.join(os.path.dirname(path), name)
    try:
        info = os.lstat(extent_path)
    except OSError as exc:
        raise ConversionError(f'the vmdk extent {name!r} cannot be read: {exc.strerror}') from exc
    if not stat.S_ISREG(info.st_mode):
        raise ConversionError(f"the vmdk extent {name!r} is not a regular file in the descriptor's directory")
    end = (int(sectors) + int(offset or 0)) * 512
    if end > info.st_size:
        raise ConversionError(f'the vmdk extent {name!r} is shorter than the descriptor says')
    digest = _file_sha256(extent_path)
    return {'name': name, 'sectors': int(sectors), 'size': info.st_size, 'sha256': digest, 'path': extent_path}


class _BackgroundHash:
    """A file's sha256 computed in a thread (hashlib and file reads release the GIL), so it
    costs a spare core while qemu-img converts, not time."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._digest = _file_sha256(self._path)
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise ConversionError(f'{self._path} could not be read: {self._error}') from self._error
        return self._digest or ''


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _qemu_info_failures(path: str, facts: dict[str, Any], run: Runner) -> list[dict[str, str]]:
    info = qemu_img_info(path, QEMU_DRIVERS[facts['detected_format']], run)
    problems = []
    if info.get('virtual-size') != facts['virtual_size']:
        problems.append(
            f'qemu-img reads a virtual size of {info.get("virtual-size")}, the inspector {facts["virtual_size"]}'
        )
    if info.get('backing-filename') or info.get('full-backing-filename'):
        problems.append('qemu-img reports a backing file')
    specific = (info.get('format-specific') or {}).get('data') or {}
    if specific.get('data-file'):
        problems.append('qemu-img reports an external data file')
    directory = os.path.dirname(path)
    for extent in specific.get('extents') or []:
        if os.path.dirname(os.path.abspath(extent.get('filename', ''))) != directory:
            problems.append("qemu-img reports an extent outside the descriptor's directory")
    return [{'check': 'qemu_img_info', 'message': problem} for problem in problems]


def qemu_img_info(path: str, driver: str, run: Runner) -> dict[str, Any]:
    """qemu-img's own view, read with the format given (never probed) and without locking."""
    rc, out, err = _run_killable(run, ['qemu-img', 'info', '--force-share', '-f', driver, '--output=json', path])
    if rc != 0:
        raise ConversionError(f'qemu-img info failed ({rc}): {err.strip()[:500]}')
    return json.loads(out)


# --- compressed sources -----------------------------------------------------------------


def _decompressed(path: str, compression: str, workdir: str, limit: int | None, run: Runner) -> SourceImage:
    target = os.path.join(workdir, 'decompressed')
    given = _HashingReader(path)
    with given:
        _write_sparse(_decompressed_chunks(compression, given), target, limit)
        given.read_rest()  # what a decompressor leaves unread still belongs to the source
    facts, inspector = _scan(target)
    if _compression(target):
        facts['safety_failures'].append({'check': 'compression', 'message': 'compressed twice over: not unpacked'})
    else:
        # A decompressed flat descriptor's extents would be looked up in scratch space: refused.
        _judge(target, (facts, inspector), run, local_extents=False)
    facts['decompressed'] = {'compression': compression, 'sha256': facts['sha256'], 'size': facts['size']}
    facts['sha256'], facts['size'] = given.hexdigest(), given.size
    return SourceImage(path, target, facts)


class _HashingReader:
    """The compressed file as the decompressor reads it, hashed on the way (one read)."""

    def __init__(self, path: str) -> None:
        self._stream = open(path, 'rb')  # noqa: SIM115 - closed by __exit__
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._digest.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def read_rest(self) -> None:
        while self.read(CHUNK_SIZE):
            pass

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def __enter__(self) -> _HashingReader:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stream.close()


def _decompressed_chunks(compression: str, given: _HashingReader) -> Iterator[bytes]:
    if compression == 'xz':
        return _xz_chunks(given)
    reader = gzip.GzipFile(fileobj=given, mode='rb') if compression == 'gzip' else _zstd_reader(given)
    return _reader_chunks(reader)


def _reader_chunks(reader: BinaryIO) -> Iterator[bytes]:
    with reader:
        yield from iter(lambda: reader.read(CHUNK_SIZE), b'')


def _xz_chunks(given: _HashingReader) -> Iterator[bytes]:
    # lzma.LZMAFile takes no memory limit, so streams are decoded here, one after another
    # (xz writes one; pxz and cat write several).
    decompressor = _xz_decompressor()
    while True:
        # pylint reads the decompressor's state flags as constants: they are not.
        if decompressor.eof:  # pylint: disable=using-constant-test
            data = decompressor.unused_data or given.read(CHUNK_SIZE)
            if not data:
                return
            decompressor = _xz_decompressor()
        elif decompressor.needs_input:  # pylint: disable=using-constant-test
            data = given.read(CHUNK_SIZE)
            if not data:
                raise ConversionError('the xz data ends before its stream does')
        else:
            data = b''
        try:
            yield decompressor.decompress(data, max_length=CHUNK_SIZE)
        except lzma.LZMAError as exc:
            raise ConversionError(f'the xz data cannot be decompressed: {exc}') from exc


def _xz_decompressor() -> lzma.LZMADecompressor:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT)


def _zstd_reader(given: _HashingReader) -> BinaryIO:
    with contextlib.suppress(ImportError):
        from compression import zstd  # Python 3.14

        return zstd.ZstdFile(given)
    try:
        import zstandard
    except ImportError:
        raise ConversionError(
            'the source is zstd-compressed and this host has no zstd module for Python '
            '(Python 3.14, or pip install zstandard): decompress it first (zstd -d)'
        ) from None
    return zstandard.ZstdDecompressor().stream_reader(given, closefd=False)


def _write_sparse(chunks: Iterator[bytes], target: str, limit: int | None) -> None:
    """Copy the decompressed bytes, leaving zero blocks as holes: a mostly empty disk
    takes its data's space in scratch, not its size."""
    written = 0
    with open(target, 'wb') as out:
        for chunk in chunks:
            written += len(chunk)
            if limit is not None and written > limit:
                raise ConversionError(f'the source decompresses to more than {limit} bytes')
            for start in range(0, len(chunk), HOLE_SIZE):
                block = chunk[start : start + HOLE_SIZE]
                if block == _ZEROS[: len(block)]:
                    out.seek(len(block), os.SEEK_CUR)
                else:
                    out.write(block)
        out.truncate(written)


# --- the policy's question --------------------------------------------------------------


def stored_facts(source: SourceImage, target_format: str) -> dict[str, Any]:
    """The content facts of what converting ``source`` would store, known before any work:
    format and virtual size; the stored size is unknown (None) until converted. The source's
    safety failures stay, so a policy refuses what convert() would refuse."""
    return {
        'detected_format': glance_disk_format(target_format),
        'virtual_size': source.facts['virtual_size'],
        'size': None,
        'safety_failures': list(source.facts['safety_failures']),
    }


# --- conversion -------------------------------------------------------------------------


def convert(
    source: SourceImage,
    target_format: str,
    scratch_dir: str,
    run: Runner,
    sparse_size: str = SPARSE_SIZE,
    whole_output: bool = True,
) -> ConvertedImage:
    """Convert a judged source with qemu-img into a private directory under ``scratch_dir``.

    Raises ConversionError, before qemu-img runs, for a source that failed a check. The
    output is judged again and must keep the source's virtual size. The scratch copy is
    removed when the conversion fails or is interrupted, and by the result's close().
    ``whole_output=False`` judges the output on its header (the format, virtual size and
    safety checks are all there) and leaves its sha256 to the caller, who reads it anyway
    to upload it: one read of the output instead of two.
    """
    _refuse_unconvertible(source, target_format)
    workdir = _workdir(scratch_dir)
    try:
        output = os.path.join(workdir, f'converted.{target_format}')
        hashing = _BackgroundHash(source.path) if source.facts['sha256'] is None else None
        try:
            _qemu_img_convert(source, target_format, output, run, sparse_size)
        finally:
            if hashing is not None:
                source.facts['sha256'] = hashing.result()
        if file_identity(source.path) != source.identity:
            raise ConversionError(
                f'{source.given} was replaced or written to while it was judged or converted: '
                'the output is discarded. Keep sources where only this run writes them.'
            )
        facts = _judge_output(source, target_format, output, whole_output)
        return ConvertedImage(output, target_format, facts, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _refuse_unconvertible(source: SourceImage, target_format: str) -> None:
    if target_format not in CONVERSION_TARGETS:
        raise ConversionError(f'cannot convert to {target_format!r}: the targets are {", ".join(CONVERSION_TARGETS)}')
    if not source.safe:
        reasons = '; '.join(f'{failure["check"]}: {failure["message"]}' for failure in source.facts['safety_failures'])
        raise ConversionError(f'{source.given} is not converted: {reasons}')


def _workdir(scratch_dir: str) -> str:
    # A private directory (0700, unique name) so no other user can swap the file qemu-img
    # writes or read it, whatever the scratch directory's own permissions.
    return tempfile.mkdtemp(prefix='imagegov-convert-', dir=scratch_dir)


def _qemu_img_convert(source: SourceImage, target_format: str, output: str, run: Runner, sparse_size: str) -> None:
    # Absolute paths only: qemu reads "json:{...}" or "nbd:..." in a relative name as a
    # protocol, which would open something other than the judged file.
    args = ['qemu-img', 'convert', '-q', '--force-share', '-f', QEMU_DRIVERS[source.format], '-O', target_format]
    args += ['-S', sparse_size, *TARGET_OPTIONS.get(target_format, []), source.path, output]
    rc, _out, err = _run_killable(run, args)
    if rc != 0:
        raise ConversionError(f'qemu-img convert failed ({rc}): {err.strip()[:500]}')


def _judge_output(source: SourceImage, target_format: str, output: str, whole: bool) -> dict[str, Any]:
    facts = _scan(output)[0] if whole else dict(prescan(Source(output)), sha256=None)
    if glance_disk_format(facts['detected_format']) != glance_disk_format(target_format):
        raise ConversionError(f'qemu-img wrote {facts["detected_format"]}, not {target_format}')
    if facts['safety_failures']:
        raise ConversionError(f'the converted image fails safety checks: {facts["safety_failures"]}')
    if facts['virtual_size'] != source.facts['virtual_size']:
        raise ConversionError(
            f'the converted image has a virtual size of {facts["virtual_size"]} bytes, '
            f'the source {source.facts["virtual_size"]}'
        )
    facts['source_sha256'] = source.facts['sha256']
    facts['allocated'] = os.stat(output).st_blocks * 512
    return facts


# --- running qemu-img -------------------------------------------------------------------


def _run_killable(run: Runner, args: list[str]) -> tuple[int, str, str]:
    """``run(args)``, killing the child when this process is interrupted (Ctrl-C, SIGTERM)."""
    children: list[Any] = []
    try:
        with _sigterm_raises():
            return run(args, children.append)
    except BaseException:
        for child in children:
            _kill(child)
        raise


def _kill(child: Any) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    # Python's default SIGTERM ends the process at once, skipping every cleanup: the child
    # would go on writing a file nobody removes. Handlers can only be set in the main thread.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated('SIGTERM')
