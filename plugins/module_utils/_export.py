# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Glance image's data as a local file: verified, resumable, sparse, recorded.

    exporter = Exporter(glance, image, spec, run_qemu_img)
    plan = exporter.plan()        # read only: what is there and what would be done
    outcome = exporter.apply()    # under a lock; plans again, then does it

Beside ``path`` (0600, owned by the user the module runs as):

- the part file ``.<name>.<image id>.<hash prefix>.imagegov-part``: the image's bytes as
  far as they were downloaded, zero blocks left as holes. Its name binds it to the image's
  id and ``os_hash_value``: a changed image (or another image) never resumes onto it, and
  the part files of other bindings are removed when a download starts. A run finds it, hashes
  what it holds and asks Glance for the rest (HTTP Range). It is removed once the export is
  published, or when the whole proves wrong (a hash or size mismatch: resuming onto it
  could only fail again).
- the record ``.<name>.imagegov-export``: which image (id, os_hash_value) and which options
  made the file at ``path``, and that file's identity (device, inode, size, mtime, ctime)
  and digest. A file whose identity still matches is current without being read; without a
  record, a file exported as it is stored is hashed again (it must equal os_hash_value),
  one converted or packed is made again and compared. The record's file is also the lock
  that makes concurrent exports to one path take turns.

The output appears at ``path`` by a rename, only once verified: never a partial file there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from ._content import glance_disk_format
from ._convert import (
    CHUNK_SIZE,
    HOLE_SIZE,
    ConvertedImage,
    Runner,
    SourceImage,
    convert,
    file_identity,
    inspect_source,
)
from ._errors import ImagegovError
from ._ova_pack import pack_ova
from ._redact import redact_urls_in

try:
    import fcntl
except ImportError:  # not POSIX: no lock, concurrent exports to one path are the caller's to avoid
    fcntl = None

PART_SUFFIX = '.imagegov-part'
RECORD_SUFFIX = '.imagegov-export'
BINDING_HEX = 32  # of os_hash_value in the part file's name: 128 bits
RETRIES = 2  # Range requests after a download broke off, in one run
RECORD_VERSION = 1
_ZEROS = bytes(HOLE_SIZE)
# Formats an OVA's disk may have; the standard's is a streamOptimized vmdk.
OVA_DISK_FORMATS = ('vmdk', 'qcow2', 'raw')
DEFAULT_OVA_DISK = 'vmdk'


class ExportError(ImagegovError):
    """An export that cannot be done; the message names the image and what to do."""


@dataclasses.dataclass
class ExportSpec:
    path: str
    container_format: str = 'bare'  # bare: the disk; ova: packed with an OVF descriptor
    convert_to: str | None = None
    scratch_dir: str | None = None
    force: bool = False
    mode: int | None = None

    @property
    def disk_format(self) -> str | None:
        """The disk format asked for, None for the image's own."""
        if self.container_format == 'ova':
            return self.convert_to or DEFAULT_OVA_DISK
        return self.convert_to

    def options(self) -> dict[str, Any]:
        return {'container_format': self.container_format, 'disk_format': self.disk_format}


def parse_mode(value: Any) -> int | None:
    """An octal file mode (``'0644'``, ``'644'`` or the int 0o644)."""
    if value is None:
        return None
    if isinstance(value, bool):
        mode = -1
    elif isinstance(value, int):
        mode = value
    else:
        try:
            mode = int(str(value).strip(), 8)
        except ValueError:
            mode = -1
    if not 0 <= mode <= 0o7777:
        raise ExportError(f'Option mode: {value!r} is not an octal file mode such as "0644"')
    return mode


def expected_digest(image: dict[str, Any]) -> tuple[str, str]:
    """(algorithm, hex digest) the image's data must have: Glance's os_hash_value, or for an
    image stored before Glance computed one, its MD5 ``checksum``. Raises ExportError for
    an image that has no data to export."""
    label = f'image {image.get("name")!r} ({image["id"]})'
    status = image.get('status')
    if status != 'active':
        why = {
            'queued': 'has no data yet: upload its data first',
            'saving': 'is still receiving its data: run again once it is active',
            'uploading': 'is still receiving its data: run again once it is active',
            'importing': 'is still being imported: run again once it is active',
            'deactivated': 'is deactivated, and Glance serves no data of a deactivated image: '
            'reactivate it first (imagegov.openstack.image with state present)',
        }.get(status or '', 'cannot be downloaded: only an active image can')
        raise ExportError(f'{label} is {status}: it {why}. Nothing was written.')
    if image.get('size') is None:
        raise ExportError(f'{label} has no data (size unset): nothing to export. Nothing was written.')
    if image.get('os_hash_algo') and image.get('os_hash_value'):
        return image['os_hash_algo'], image['os_hash_value']
    if image.get('checksum'):
        return 'md5', image['checksum']
    raise ExportError(
        f'{label} has neither os_hash_value nor checksum: its download could not be verified, so it is not '
        'exported. Nothing was written.'
    )


class SparseWriter:
    """Writes a stream into an open file from ``offset`` on, leaving zero blocks as holes.

    Blocks are aligned to the file's own offsets (HOLE_SIZE), so holes fall on file system
    blocks whatever a chunk's size or where a resumed download starts. ``finish()`` extends
    the file over a trailing hole; until then its length is where data was last written,
    which is always a true prefix of the stream (a killed run resumes from there).
    """

    def __init__(self, fd: int, offset: int) -> None:
        self.fd = fd
        self.position = offset
        self.skipped = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        start = 0
        while start < len(view):
            end = min(len(view), start + HOLE_SIZE - self.position % HOLE_SIZE)
            block = view[start:end]
            if block == _ZEROS[: len(block)]:
                self.skipped += len(block)
            else:
                _pwrite_all(self.fd, block, self.position)
            self.position += len(block)
            start = end

    def finish(self) -> None:
        if os.fstat(self.fd).st_size < self.position:
            os.ftruncate(self.fd, self.position)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def sibling(path: str, suffix: str, *parts: str) -> str:
    """A hidden file beside ``path``: ``.<name>[.<parts>]<suffix>``."""
    directory, name = os.path.split(path)
    return os.path.join(directory, '.' + '.'.join((name, *parts)) + suffix)


def part_path(path: str, image: dict[str, Any], digest: str) -> str:
    """The part file bound to this image's id and data (see the module docstring)."""
    return sibling(path, PART_SUFFIX, image['id'], digest[:BINDING_HEX])


def stale_parts(path: str, keep: str) -> list[str]:
    """Part files of ``path`` bound to other images or data."""
    directory, name = os.path.split(path)
    prefix = f'.{name}.'
    try:
        names = os.listdir(directory or '.')
    except OSError:
        return []
    # <id>.<hex> only: ".disk." also begins the part files of an export to "disk.raw",
    # which are not this export's to remove (an image id and a digest have no dot); and
    # this user's only: another user's export in a shared directory is not ours to undo.
    return [
        os.path.join(directory, entry)
        for entry in names
        if entry.startswith(prefix)
        and entry.endswith(PART_SUFFIX)
        and entry[len(prefix) : -len(PART_SUFFIX)].count('.') == 1
        and os.path.join(directory, entry) != keep
        and _owner(os.path.join(directory, entry)) == os.geteuid()
    ]


def _owner(path: str) -> int | None:
    try:
        return os.lstat(path).st_uid
    except OSError:
        return None


def open_private(path: str) -> int:
    """Open (or create) a file only this user may read, refusing a symlink or anything but
    a regular file of this user: another user of a shared directory cannot plant one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o600)
    try:
        info = os.fstat(fd)
        if not _own_regular_file(info):
            raise ExportError(f'{path} is not a regular file of this user with one link: remove it, then run again')
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _own_regular_file(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and info.st_nlink == 1


class Record:
    """The record beside the output (see the module docstring), and the lock."""

    def __init__(self, path: str) -> None:
        self.path = sibling(path, RECORD_SUFFIX)
        self._fd: int | None = None

    def read(self) -> dict[str, Any] | None:
        """The record; None for none, a torn one, or a file not proven ours (a link, another
        user's: anyone may plant one in a shared directory)."""
        try:
            if self._fd is not None:
                data = os.pread(self._fd, 1 << 20, 0)
            else:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
                try:
                    if not _own_regular_file(os.fstat(fd)):
                        return None
                    data = os.pread(fd, 1 << 20, 0)
                finally:
                    os.close(fd)
            record = json.loads(data)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get('version') == RECORD_VERSION else None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self._fd = open_private(self.path)
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(self._fd)
            self._fd = None

    def write(self, record: dict[str, Any]) -> None:
        """Rewritten in place (the file is the lock); a torn record reads as none."""
        data = json.dumps(dict(record, version=RECORD_VERSION), sort_keys=True).encode()
        os.ftruncate(self._fd, 0)
        _pwrite_all(self._fd, memoryview(data), 0)
        os.fsync(self._fd)


@dataclasses.dataclass
class Plan:
    action: str  # none | record | download | resume | finish (the part is whole: verify and publish)
    reason: str
    part: str
    part_size: int = 0
    current: dict[str, Any] | None = None  # what is at path, as the record proves it
    chmod: bool = False  # the file is current but option mode differs from its mode

    @property
    def changed(self) -> bool:
        return self.action not in ('none', 'record') or self.chmod


class Exporter:
    def __init__(self, glance: Any, image: dict[str, Any], spec: ExportSpec, run: Runner) -> None:
        self.glance = glance
        self.image = image
        self.spec = spec
        self.run = run
        self.path = os.path.abspath(spec.path)
        self.algo, self.digest = expected_digest(image)
        self.label = f'image {image.get("name")!r} ({image["id"]})'
        self.record = Record(self.path)
        self.part = part_path(self.path, image, self.digest)
        self.facts: dict[str, Any] = {'resumed_from': 0, 'downloaded': 0, 'retries': 0, 'hashed': 0}
        self.rehashed_seconds: float | None = None

    # -- what is there -----------------------------------------------------------------
    def check_destination(self) -> None:
        directory = os.path.dirname(self.path)
        if os.path.islink(self.path):
            # Followed, it would prove (and chmod) a file elsewhere; replaced, a link the
            # user made would silently become a file. Neither is asked for.
            raise ExportError(
                f'Option path: {self.path} is a symbolic link: {self.label} was not exported. Give the path it '
                'points to, or remove the link.'
            )
        if os.path.isdir(self.path):
            raise ExportError(
                f'Option path: {self.path} is a directory; give the path of the file to write: {self.label} was not '
                'exported.'
            )
        if not os.path.isdir(directory):
            raise ExportError(
                f'Option path: the directory {directory} does not exist; create it first: {self.label} was not '
                'exported.'
            )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ExportError(
                f'Option path: the directory {directory} is not writable by this user (uid {os.geteuid()}): '
                f'{self.label} was not exported. Choose another path or fix the permissions.'
            )
        _refuse_shared(directory, 'path', self.label)
        if self.spec.scratch_dir and not self.as_stored():
            _refuse_shared(self.scratch_directory, 'scratch_dir', self.label)

    @property
    def scratch_directory(self) -> str:
        """Where a conversion works: scratch_dir, else the output's directory."""
        return os.path.abspath(os.path.expanduser(self.spec.scratch_dir or os.path.dirname(self.path)))

    def wanted(self) -> dict[str, Any]:
        return {
            'image': {
                'id': self.image['id'],
                'os_hash_algo': self.algo,
                'os_hash_value': self.digest,
                'size': self.image['size'],
            },
            'options': self.spec.options(),
        }

    def plan(self) -> Plan:
        plan = self._content_plan()
        if plan.action in ('none', 'record') and self.spec.mode is not None:
            plan.chmod = stat.S_IMODE(os.stat(self.path).st_mode) != self.spec.mode
        return plan

    def _content_plan(self) -> Plan:
        part_size = _size(self.part)
        if self.spec.force:
            return self._fetch_plan('force: exported again', part_size)
        record = self.record.read()
        exists = os.path.isfile(self.path)
        if exists and not self._ours():
            return self._fetch_plan("the file at path is another user's: exported afresh", part_size)
        if exists and record and {k: record.get(k) for k in ('image', 'options')} == self.wanted():
            output = record.get('output') or {}
            if output.get('identity') == list(file_identity(self.path)):
                return Plan('none', 'the file is the recorded export of this image', self.part, part_size, output)
            digest = output.get('digest') or {}
            if self._holds(output.get('size'), digest.get('algo'), digest.get('value')):
                reason = 'the file was touched but holds the recorded export (hashed again)'
                return Plan('record', reason, self.part, part_size, output)
        elif self.as_stored() and self._holds(self.image['size'], self.algo, self.digest):
            # Exported as stored: the file itself proves what it is (one read).
            stored = {'format': self.image.get('disk_format'), 'digest': {'algo': self.algo, 'value': self.digest}}
            reason = 'the file holds the image (hashed again: no record)'
            return Plan('record', reason, self.part, part_size, stored)
        reason = 'no file at path' if not exists else 'the file at path is not (proven to be) this export'
        return self._fetch_plan(reason, part_size)

    def _ours(self) -> bool:
        """Only a regular file of this user proves anything: another user's (planted in a
        shared directory) could change after it was hashed."""
        info = os.lstat(self.path)
        return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()

    def _holds(self, size: Any, algo: Any, value: Any) -> bool:
        """Whether the file at path has this size and digest (read only when the size fits)."""
        if algo not in hashlib.algorithms_available or not os.path.isfile(self.path):
            return False
        if os.path.getsize(self.path) != size:
            return False
        started, digest = time.monotonic(), hashlib.new(algo)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            read = _hash_into(digest, fd)
        finally:
            os.close(fd)
        self.rehashed_seconds = round(time.monotonic() - started, 3)
        return read == size and digest.hexdigest() == value

    def _fetch_plan(self, reason: str, part_size: int) -> Plan:
        if part_size >= self.image['size']:
            return Plan('finish', reason + '; the part file holds every byte', self.part, part_size)
        if part_size:
            return Plan('resume', reason + f"; resumed from the part file's {part_size} bytes", self.part, part_size)
        return Plan('download', reason, self.part, 0)

    def as_stored(self) -> bool:
        return self.spec.container_format == 'bare' and self.spec.convert_to in (None, self.image.get('disk_format'))

    # -- doing it ----------------------------------------------------------------------
    def apply(self) -> tuple[Plan, dict[str, Any]]:
        """(the plan made under the lock, the output's facts). Changed unless plan.action is
        none or record (and the mode already right)."""
        self.check_destination()
        with self.record.locked():
            plan = self.plan()  # again: a concurrent run may have finished while this one waited
            if plan.action in ('none', 'record'):
                if plan.chmod:
                    with _own_file(self.path, self.label) as fd:
                        os.fchmod(fd, self.spec.mode)
                output = self._output(plan.current.get('format'), plan.current.get('digest'))
                if plan.action == 'record' or plan.chmod:
                    self.record.write(dict(self.wanted(), output=output))
                return plan, output
            for stale in stale_parts(self.path, self.part):
                os.unlink(stale)
            part = self._download()
            try:
                output = self._publish(plan, part)
            finally:
                os.close(part)
            self.record.write(dict(self.wanted(), output=output))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.part)
            return plan, output

    def _download(self) -> int:
        """The part file made whole and verified, still open: what is published is this very
        file (see _install). Raises ExportError (removing the part) when it is not the image's data."""
        size = self.image['size']
        fd = open_private(self.part)
        try:
            have = os.fstat(fd).st_size
            if have > size:
                os.ftruncate(fd, 0)
                have = 0
            digest = hashlib.new(self.algo)
            if have:
                self.facts['hashed'] = _hash_into(digest, fd, have)
            self.facts['resumed_from'] = have
            have = self._fetch(fd, have, digest)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        found = digest.hexdigest()
        if have == size and found == self.digest:
            return fd
        os.close(fd)
        os.unlink(self.part)
        raise ExportError(
            f'{self.label}: the data read has {have} bytes with {self.algo} {found}, but Glance records '
            f'{size} bytes with {self.algo} {self.digest}. Nothing was written to {self.path}, and the part '
            'file was removed. Run again to download it afresh; if this repeats, the data Glance stores is '
            'damaged: tell the cloud operators, or upload the image again.'
        )

    def _fetch(self, fd: int, have: int, digest: Any) -> int:
        import requests

        size = self.image['size']
        attempts = 0
        while have < size:
            try:
                total, chunks = self.glance.download(self.image['id'], offset=have)
                if total is not None and total != size:
                    raise ExportError(
                        f'{self.label}: Glance serves {total} bytes, but its record says {size}: not exported'
                    )
                writer = SparseWriter(fd, have)
                try:
                    for chunk in chunks:
                        if writer.position + len(chunk) > size:
                            raise ExportError(f'{self.label}: Glance sends more than the {size} bytes it records')
                        digest.update(chunk)
                        writer.write(chunk)
                finally:
                    writer.finish()
                    self.facts['downloaded'] += writer.position - have
                    self.facts['skipped'] = self.facts.get('skipped', 0) + writer.skipped
                    have = writer.position
                if have < size:
                    raise requests.ConnectionError('the data ended early')
            except (requests.RequestException, ConnectionError) as exc:
                attempts += 1
                if attempts > RETRIES:
                    why = redact_urls_in(str(exc))
                    raise ExportError(
                        f'{self.label}: the download broke off after {have} of {size} bytes ({why}), '
                        f'{RETRIES} times resumed. The part file {self.part} keeps them: run again to resume.'
                    ) from exc
                self.facts['retries'] = attempts
        return have

    def _publish(self, plan: Plan, part: int) -> dict[str, Any]:
        """The verified part file (open as ``part``) made into the output at path (by a rename)."""
        if self.as_stored():
            self._install(self.part, part)
            return self._output(self.image.get('disk_format'), {'algo': self.algo, 'value': self.digest})
        scratch = self.scratch_directory
        target = self.spec.disk_format
        # The inspection and qemu-img read the part file by its name: it must still be the
        # verified one, before and after (a file swapped in meanwhile is refused).
        self._still_verified(part)
        source = inspect_source(self.part, scratch, self.run, local_extents=False, whole=False)
        converted: ConvertedImage | None = None
        try:
            self.facts['source'] = _source_facts(source)
            if not source.safe:
                reasons = '; '.join(f'{f["check"]}: {f["message"]}' for f in source.facts['safety_failures'])
                raise ExportError(
                    f'{self.label} is {source.format or "of no known format"} and fails the checks made before '
                    f'qemu-img may open it ({reasons}): it is not converted or packed. Export it as stored '
                    '(no convert_to, container_format bare) to get its bytes.'
                )
            if _is_format(source, target) and target != 'vmdk':
                disk, facts = self.part, dict(source.facts, sha256=source.sha256())
            else:
                converted = convert(source, target, scratch, self.run, whole_output=True)
                disk, facts = converted.path, converted.facts
                self.facts['converted'] = {'from': source.format, 'to': target}
            self._still_verified(part)
            if self.spec.container_format == 'ova':
                return self._pack(disk, target, facts)
            if disk == self.part:
                self._install(disk, part)
            else:
                with _own_file(disk, self.label) as fd:
                    self._install(disk, fd)
            return self._output(target, {'algo': 'sha256', 'value': facts['sha256']})
        finally:
            if converted is not None:
                converted.close()
            source.close()

    def _pack(self, disk: str, disk_format: str, facts: dict[str, Any]) -> dict[str, Any]:
        directory, name = os.path.split(self.path)
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.imagegov-ova', dir=directory)
        try:
            with os.fdopen(fd, 'wb') as out:
                packed = pack_ova(out, self.image, disk, disk_format, facts)
                out.flush()
                os.fsync(out.fileno())
                self._install(tmp, out.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.facts['package'] = packed
        return self._output('ova', {'algo': 'sha256', 'value': packed['sha256']})

    def _still_verified(self, part: int) -> None:
        try:
            named = _identity(os.lstat(self.part))
        except FileNotFoundError:
            named = None
        if named != _identity(os.fstat(part)):
            raise ExportError(_swapped(self.part, self.label))

    def _install(self, source: str, fd: int) -> None:
        """The verified file, open as ``fd`` and named ``source``, given its mode and made the
        output at path. The mode goes through the open file, and what the rename put at path
        is proven to be that file (it stays open, so no other file can take its identity): in a
        directory other users may write to, a file or link swapped in by name after the check
        would otherwise be published, or have its target's mode changed."""
        os.fchmod(fd, self.spec.mode if self.spec.mode is not None else 0o666 & ~_umask())
        placed = _move(source, self.path, fd)
        if _identity(os.lstat(self.path)) != placed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            raise ExportError(_swapped(self.path, self.label))

    def _output(self, disk_format: str | None, digest: dict[str, Any] | None) -> dict[str, Any]:
        info = os.stat(self.path)
        return {
            'path': self.path,
            'format': disk_format,
            'container_format': self.spec.container_format,
            'size': info.st_size,
            'allocated': info.st_blocks * 512,
            'mode': f'{stat.S_IMODE(info.st_mode):04o}',
            'digest': digest,
            'identity': list(file_identity(self.path)),
        }


def _hash_into(digest: Any, fd: int, length: int | None = None) -> int:
    """Feed ``digest`` the file's first ``length`` bytes (all of them by default); the
    number read."""
    read = 0
    while length is None or read < length:
        data = os.pread(fd, CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - read), read)
        if not data:
            break
        digest.update(data)
        read += len(data)
    return read


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _is_format(source: SourceImage, target: str | None) -> bool:
    return source.format is not None and glance_disk_format(source.format) == target and not source.facts.get('extents')


def _source_facts(source: SourceImage) -> dict[str, Any]:
    return {key: source.facts.get(key) for key in ('detected_format', 'virtual_size', 'size', 'safety_failures')}


def _refuse_shared(directory: str, option: str, label: str) -> None:
    """A directory in which another user may rename entries - one of theirs, or a world-writable
    one without the sticky bit, itself or any above it - lets them swap the verified file, the
    conversion's scratch or the record for their own between a check and its use: refused."""
    current = os.path.realpath(directory)
    while True:
        info = os.stat(current)
        foreign = info.st_uid not in (0, os.geteuid())
        shared = info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX
        if foreign or shared:
            why = f'it belongs to uid {info.st_uid}' if foreign else 'anyone may write to it and it has no sticky bit'
            raise ExportError(
                f'Option {option}: {directory} lies in {current}, where another user may replace files ({why}): '
                f'they could swap the verified export for their own before it is published. {label} was not '
                'exported. Use a directory that only you (and root) can change, or set the sticky bit (chmod +t).'
            )
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _swapped(path: str, label: str) -> str:
    return (
        f'{path} was replaced by another file or a link while {label} was being exported: it was not '
        'exported. Another user can write to that directory: export into one only you can write to.'
    )


@contextlib.contextmanager
def _own_file(path: str, label: str) -> Iterator[int]:
    """This user's regular file at path, open (without following a link) for the block."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError as exc:
        raise ExportError(_swapped(path, label)) from exc
    try:
        if not _own_regular_file(os.fstat(fd)):
            raise ExportError(_swapped(path, label))
        yield fd
    finally:
        os.close(fd)


def _move(source: str, path: str, fd: int) -> tuple[int, int]:
    """Rename into place; across file systems (a scratch_dir elsewhere), copy the open file
    ``fd`` beside the target first, holes kept, then rename. The placed file's identity."""
    try:
        os.replace(source, path)
        return _identity(os.fstat(fd))
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    directory, name = os.path.split(path)
    out, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.imagegov-copy', dir=directory)
    try:
        writer = SparseWriter(out, 0)
        while chunk := os.pread(fd, CHUNK_SIZE, writer.position):
            writer.write(chunk)
        writer.finish()
        os.fchmod(out, stat.S_IMODE(os.fstat(fd).st_mode))
        os.fsync(out)
        placed = _identity(os.fstat(out))
        os.replace(tmp, path)
        return placed
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        os.close(out)


def describe(record_like: dict[str, Any] | None, path: str, exists: bool) -> dict[str, Any]:
    """The diff's view of what is (or will be) at path."""
    record_like = record_like or {}
    image = record_like.get('image') or {}
    return {
        'path': path,
        'exists': exists,
        'image_id': image.get('id'),
        'os_hash_value': image.get('os_hash_value'),
        **(record_like.get('options') or {'container_format': None, 'disk_format': None}),
    }
