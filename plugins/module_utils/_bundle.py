# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bundles of several files (an OVA, a UEC tarball) read without trusting the archive.

    with TarStream(path, 'appliance.ova') as tar:
        for member in tar:                      # checked before it is offered
            if member.name == wanted:
                extracted = member.extract(workdir, budget)

A tar is a list of instructions to whoever unpacks it: symlinks and hardlinks that lead out
of the target, device nodes, ``../`` and absolute names, two members of one name (which one
wins depends on the tool). tarfile.extractall follows them. Here nothing is unpacked on the
archive's say: every member must be a regular file with a plain name seen once (else the
whole archive is refused), and the caller picks, by exact name or by content, which members
to write - under the checked name, into a private directory, within a byte budget, zero
blocks left as holes.

The tar may be gzip-, xz- or zstd-compressed (decompressed as _convert decompresses a
source, xz with a memory limit) and is read front to back once, hashing the file as given.
tarfile holds each header whole in memory, so how far a header may reach is bounded before
it is read: a pax header cannot make this process hold gigabytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from typing import Any

from ._convert import CHUNK_SIZE, _compression, _decompressed_chunks, _HashingReader, _write_sparse
from ._errors import ImagegovError

MAX_MEMBERS = 1000
# A header with its pax or GNU long-name extensions: real ones take a few hundred bytes.
MAX_HEADER_BYTES = 1024 * 1024
# How much tarfile reads at a time; it may read this far beyond what it needs.
READ_SIZE = 256 * 1024
# What a caller sees of a member before deciding to keep it (content sniffing).
HEAD_SIZE = 128 * 1024
# NAME_MAX: the file system takes no longer name.
MAX_NAME_BYTES = 255
BLOCK = tarfile.BLOCKSIZE
# The digests OVF manifests use; sha256 is always computed (the identity of what is read).
DIGEST_ALGORITHMS = ('sha1', 'sha256', 'sha512')
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


class BundleError(ImagegovError):
    """A bundle that is refused or cannot be read; the message names the file, the member and
    what to change."""


# --- names ------------------------------------------------------------------------------


def plain_name(name: str, what: str) -> str:
    """``name`` if it is a plain file name: no directory part, not . or .., no control
    character, at most 255 bytes. ``what`` says where it comes from, for the message."""
    problem = _name_problem(name)
    if problem:
        raise BundleError(
            f'{what} {name[:80]!r} is refused: {problem}. Only plain file names (no slash, '
            'no .., no absolute path) are accepted: repack the files side by side.'
        )
    return name


def _name_problem(name: str) -> str | None:
    if not name:
        return 'it is empty'
    if name in ('.', '..'):
        return 'it is . or ..'
    if '/' in name or '\\' in name:
        return 'it has a directory part or is absolute'
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return 'it has a control character (NUL, newline...)'
    if len(name.encode('utf-8', 'surrogateescape')) > MAX_NAME_BYTES:
        return f'it is longer than {MAX_NAME_BYTES} bytes'
    return None


def _member_name(info: tarfile.TarInfo) -> str | None:
    """The checked name of a member, or None for the ``./`` entry ``tar -C dir -cf x .``
    writes first. That tar also prefixes every name with ``./``, which is dropped (so
    ``./disk.img`` and ``disk.img`` are one name twice)."""
    name = info.name
    if info.isdir() and name in ('.', './'):
        return None
    if name.startswith('./'):
        name = name[2:]
    return plain_name(name, 'member')


def _kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f'a symlink to {info.linkname[:80]!r}'
    if info.islnk():
        return f'a hardlink to {info.linkname[:80]!r}'
    if info.isdir():
        return 'a directory'
    if info.ischr() or info.isblk():
        return 'a device file'
    if info.isfifo():
        return 'a FIFO'
    return f'of tar type {info.type!r}'


# --- scratch space and its budget -------------------------------------------------------


def private_workdir(scratch_dir: str, kind: str) -> str:
    """A directory only this user can enter (mkdtemp: 0700, unique name), whatever the
    scratch directory's own permissions: nobody can swap or read what is written there."""
    return tempfile.mkdtemp(prefix=f'imagegov-{kind}-', dir=scratch_dir)


def remove_workdir(workdir: str | None) -> None:
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


class ByteBudget:
    """The bytes members may take once extracted (``None``: no limit), checked against each
    member's size before anything of it is written."""

    def __init__(self, limit: int | None, label: str) -> None:
        self.limit = limit
        self.label = label
        self.used = 0

    def take(self, name: str, size: int) -> None:
        if self.limit is not None and self.used + size > self.limit:
            raise BundleError(
                f'{self.label}: member {name!r} has {size} bytes, which would take what is extracted to '
                f'{self.used + size} bytes, more than the limit of {self.limit} (max_bytes): '
                'raise the limit if the bundle is trusted'
            )
        self.used += size


# --- reading a tar ----------------------------------------------------------------------


class Extracted:
    """A member written to scratch space: its name, path, size and digests."""

    def __init__(self, name: str, path: str, size: int, digests: dict[str, str]) -> None:
        self.name = name
        self.path = path
        self.size = size
        self.digests = digests

    @property
    def sha256(self) -> str:
        return self.digests['sha256']


class TarStream:
    """A tar (plain or compressed) read once, front to back; iterate to get its members.

    Iteration raises BundleError for an archive with a member that is not a regular file
    with a plain name, a name seen twice, more than MAX_MEMBERS members, an oversized header
    or damaged data. ``sha256`` is the digest of the whole file once iteration ended.
    """

    def __init__(self, path: str, label: str) -> None:
        self.label = label
        self.compression = _compression(path)
        self._given = _HashingReader(path)
        if self.compression:
            self._chunks = _decompressed_chunks(self.compression, self._given)
        else:
            self._chunks = iter(lambda: self._given.read(CHUNK_SIZE), b'')
        self._stream = _BoundedStream(self._chunks, label)
        self.names: list[str] = []
        self.sha256: str | None = None

    def __iter__(self) -> Iterator[TarMember]:
        with self.reading():
            with tarfile.open(fileobj=self._stream, mode='r|', bufsize=READ_SIZE) as tar:
                yield from self._members(tar)
            self._given.read_rest()  # what follows the tar's end still belongs to the file
        self.sha256 = self._given.hexdigest()

    def _members(self, tar: tarfile.TarFile) -> Iterator[TarMember]:
        while True:
            info = tar.next()
            if info is None:
                return
            # tarfile reads the next header from the end of this member's data: bound it.
            self._stream.limit = info.offset_data + _blocks(info.size) + MAX_HEADER_BYTES + READ_SIZE
            name = self._checked(info)
            if name is not None:
                yield TarMember(tar, info, name, self)
            tar.members.clear()  # a stream needs no index of what passed

    def _checked(self, info: tarfile.TarInfo) -> str | None:
        name = _member_name(info)
        if name is None:
            return None
        if not info.isreg():
            raise BundleError(f'{self.label}: member {name!r} is {_kind(info)}; a bundle may hold only regular files')
        if name in self.names:
            raise BundleError(
                f'{self.label}: two members are named {name!r}; tools disagree on which one counts, so '
                'the bundle is refused: repack it with one file of each name'
            )
        self.names.append(name)
        if len(self.names) > MAX_MEMBERS:
            raise BundleError(f'{self.label}: more than {MAX_MEMBERS} members; this is no image bundle')
        return name

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        try:
            yield
        except _READ_ERRORS as exc:
            raise BundleError(f'{self.label} cannot be read as a tar archive: {exc}') from exc

    def close(self) -> None:
        closer = getattr(self._chunks, 'close', None)
        if closer:
            closer()
        self._given.__exit__(None, None, None)

    def __enter__(self) -> TarStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


class _BoundedStream:
    """The decompressed tar as tarfile reads it, never beyond ``limit``: tarfile reads a
    header whole into memory, so a header may reach only MAX_HEADER_BYTES past the data
    before it."""

    def __init__(self, chunks: Iterator[bytes], label: str) -> None:
        self._chunks = chunks
        self._chunk = b''
        self._offset = 0
        self.label = label
        self.position = 0
        self.limit = MAX_HEADER_BYTES + READ_SIZE

    def read(self, size: int = -1) -> bytes:
        pieces = []
        wanted = size
        while wanted != 0:
            if self._offset >= len(self._chunk):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._chunk, self._offset = chunk, 0
                continue
            end = len(self._chunk) if wanted < 0 else min(len(self._chunk), self._offset + wanted)
            pieces.append(self._chunk[self._offset : end])
            wanted = wanted if wanted < 0 else wanted - (end - self._offset)
            self._offset = end
        data = b''.join(pieces)
        self.position += len(data)
        if self.position > self.limit:
            raise BundleError(
                f'{self.label}: a tar header (with its pax or long-name extensions) is larger than '
                f'{MAX_HEADER_BYTES} bytes; this is no image bundle'
            )
        return data


class TarMember:
    """The member a TarStream is at: usable only until the loop moves on."""

    def __init__(self, tar: tarfile.TarFile, info: tarfile.TarInfo, name: str, stream: TarStream) -> None:
        self.name = name
        self.size = info.size
        self._tar = tar
        self._info = info
        self._stream = stream
        self._file: Any = None
        self._head = b''

    def _reader(self) -> Any:
        if self._file is None:
            self._file = self._tar.extractfile(self._info)
        return self._file

    def head(self, size: int = HEAD_SIZE) -> bytes:
        """The first ``size`` bytes (fewer for a smaller member), kept for read and extract."""
        with self._stream.reading():
            while len(self._head) < min(size, self.size):
                data = self._reader().read(min(size, self.size) - len(self._head))
                if not data:
                    break
                self._head += data
        return self._head[:size]

    def read(self, limit: int, what: str) -> bytes:
        """The whole member in memory, refused before reading when larger than ``limit``."""
        if self.size > limit:
            raise BundleError(
                f'{self._stream.label}: {what} {self.name!r} has {self.size} bytes, more than the {limit} accepted'
            )
        return b''.join(self._chunks())

    def _chunks(self) -> Iterator[bytes]:
        head, self._head = self._head, b''
        if head:
            yield head
        with self._stream.reading():
            yield from iter(lambda: self._reader().read(CHUNK_SIZE), b'')

    def extract(self, directory: str, budget: ByteBudget, algorithms: tuple[str, ...] = ()) -> Extracted:
        """Write the member to ``directory`` under its checked name, holes for zero blocks,
        computing sha256 and ``algorithms`` on the way."""
        budget.take(self.name, self.size)
        digests = {algorithm: hashlib.new(algorithm) for algorithm in {'sha256', *algorithms}}
        path = os.path.join(directory, self.name)
        try:
            _write_sparse(_hashed(self._chunks(), digests.values()), path, None)
        except OSError as exc:  # reading errors arrive as BundleError: this is the writing
            raise BundleError(
                f'{self._stream.label}: member {self.name!r} cannot be written to scratch space: {exc}'
            ) from exc
        return Extracted(self.name, path, self.size, {name: digest.hexdigest() for name, digest in digests.items()})


def _hashed(chunks: Iterator[bytes], digests: Any) -> Iterator[bytes]:
    for chunk in chunks:
        for digest in digests:
            digest.update(chunk)
        yield chunk


# --- files given side by side -----------------------------------------------------------


def sibling_file(directory: str, name: str, what: str) -> str:
    """The path of ``name`` in ``directory`` when ``name`` is a plain name of a regular file
    there, not a symlink: a name read from a document (an OVF's href) must not lead out."""
    path = os.path.join(directory, plain_name(name, what))
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise BundleError(f'{what} {name!r} cannot be read next to the descriptor: {exc.strerror}') from exc
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{what} {name!r} is not a regular file in the descriptor's directory (a symlink?)")
    return path


def file_digests(path: str, algorithms: tuple[str, ...] = (), follow_symlinks: bool = False) -> dict[str, str]:
    """sha256 and ``algorithms`` of a regular file, read once. Without ``follow_symlinks`` the
    file is opened with O_NOFOLLOW, so a symlink swapped in after a check is not read."""
    flags = os.O_RDONLY | (0 if follow_symlinks else getattr(os, 'O_NOFOLLOW', 0))
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise BundleError(f'{path} cannot be read: {exc.strerror}') from exc
    with open(descriptor, 'rb') as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise BundleError(f'{path} is not a regular file')
        digests = {algorithm: hashlib.new(algorithm) for algorithm in {'sha256', *algorithms}}
        for chunk in iter(lambda: stream.read(CHUNK_SIZE), b''):
            for digest in digests.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}


def read_head(path: str, size: int = HEAD_SIZE) -> bytes:
    with open(path, 'rb') as stream:
        return stream.read(size)
