# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source a module uploads when the cloud wants another format than the user brings.

A ConvertingSource stands where a plain Source would: the reconciler reads it, hashes it
and uploads it without knowing a conversion happened. It converts once, on the first read
or at ``prepare()`` (the reconciler calls that before it creates an image record, so a
conversion that fails or is refused leaves nothing in Glance).

Identity: the image records the stored bytes' sha256 (as every upload does) and the
source's (``imagegov_source_sha256``). An unchanged source is recognised without converting
when this host converted it before: the digest cache maps (source sha256, target) to the
output's sha256, whose sha512 Glance's own ``os_hash_value`` must equal. Elsewhere the
source is converted again and the output compared: qemu-img writes the same bytes for the
same input.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from ._content import Source, SourceError, glance_disk_format
from ._convert import (
    ConversionError,
    ConvertedImage,
    Runner,
    SourceImage,
    compression_in,
    convert,
    inspect_source,
    stored_facts,
)
from ._identity import DigestCache
from ._ova import nova_properties, read_ova, read_ovf, size_facts
from ._state import BOOKKEEPING_PREFIX
from .catalog.constants import CONVERSION_TARGETS

SOURCE_SHA256_PROPERTY = 'imagegov_source_sha256'
SOURCE_FORMAT_PROPERTY = 'imagegov_source_format'
DOWNLOAD_CHUNK = 4 * 1024 * 1024


@dataclasses.dataclass
class ConversionSettings:
    """Where a module's conversions run: its scratch directory, the qemu-img runner, and the
    cloud name a catalog's per-cloud convert_to is looked up by."""

    cloud: str | None = None
    scratch_dir: str | None = None
    run: Runner | None = None


class ConvertingSource:
    """``given`` converted to ``target`` in private scratch space under ``scratch_dir``.

    ``judge(action, facts)`` is asked ('create') about what converting the whole source would
    store before qemu-img runs, and ('upload') about the output before a byte of it is sent;
    ``run`` runs qemu-img (see _convert).
    """

    def __init__(
        self,
        given: Source,
        target: str,
        scratch_dir: str | None,
        run: Runner,
        digests: DigestCache,
        judge: Callable[[str, dict[str, Any]], Any] | None = None,
        expected_sha256: str | None = None,
    ) -> None:
        if target not in CONVERSION_TARGETS:
            raise ConversionError(f'Option convert_to: {target!r} is not a target; use one of {CONVERSION_TARGETS}')
        self.given = given
        self.target = target
        self.scratch_dir = os.path.abspath(os.path.expanduser(scratch_dir or tempfile.gettempdir()))
        self.label = f'{given.label} converted to {target}'
        self.filename, self.url, self.timeout = given.filename, given.url, given.timeout
        self._run = run
        self._digests = digests
        self.judge = judge
        self._download_dir: str | None = None
        self._source: SourceImage | None = None
        self._converted: ConvertedImage | None = None
        self._expected_sha256 = expected_sha256
        self._judged_source = False
        self.conversions = 0

    # -- the source, judged ------------------------------------------------------------
    def check(self) -> None:
        self.given.check()
        if not os.path.isdir(self.scratch_dir):
            raise SourceError(f'Option scratch_dir: {self.scratch_dir!r} is not a directory; create it.')

    def inspect(self) -> SourceImage:
        """The source judged (format, virtual size, safety) before qemu-img opens it; its
        sha256 is taken now for a compressed source, else when first needed or while
        qemu-img converts."""
        if self._source is None:
            path, local = self.given.filename, True
            if path is None:
                path, local = self._download(), False
            self._source = inspect_source(path, self.scratch_dir, self._run, local_extents=local, whole=False)
            if self._source.facts['sha256'] is not None:
                self._check_expected()
        return self._source

    def source_sha256(self) -> str:
        return self.inspect().sha256()

    def _check_expected(self) -> None:
        found = self.inspect().facts['sha256']
        if self._expected_sha256 and found != self._expected_sha256:
            raise ConversionError(
                f'{self.given.label} has sha256 {found}, but the checksum given expects '
                f'{self._expected_sha256}. Nothing was converted or sent to the cloud.'
            )

    @property
    def source_facts(self) -> dict[str, Any]:
        return self.inspect().facts

    def planned_facts(self) -> dict[str, Any]:
        """What would be stored, known before converting: for the policy's first question."""
        facts = stored_facts(self.inspect(), self.target)
        return dict(facts, conversion=self.describe())

    def judge_source(self) -> dict[str, Any]:
        """Ask ``judge`` about what converting the whole source would store (once), and
        refuse an unsafe source: nothing reaches qemu-img or the cloud."""
        planned = self.planned_facts()
        if not self._judged_source:
            if self.judge is not None:
                self.judge('create', planned)
            self._judged_source = True
        if not self.inspect().safe:
            reasons = '; '.join(f'{fail["check"]}: {fail["message"]}' for fail in planned['safety_failures'])
            raise ConversionError(
                f'{self.given.label} is not converted, and nothing was sent to the cloud: {reasons}. '
                'Give an image without references to other files.'
            )
        return planned

    def describe(self) -> dict[str, Any]:
        facts = self.source_facts
        described = {
            'sha256': facts['sha256'],
            'format': facts['detected_format'],
            'virtual_size': facts['virtual_size'],
            'size': facts['size'],
            'converted_to': self.target,
            'converted': self.conversions > 0,
        }
        if facts.get('decompressed'):
            described['compression'] = facts['decompressed']['compression']
        return described

    def known_output_sha256(self) -> str | None:
        """The sha256 this host's qemu-img wrote for this source and target before."""
        return self._digests.converted(self.source_sha256(), self.target)

    def properties(self) -> dict[str, str]:
        """What the image records of its source: the sha256 of the file given, and its format
        (``raw+xz`` for an xz-compressed raw disk)."""
        described = self.describe()
        source_format = str(described['format'])
        if described.get('compression'):
            source_format += '+' + described['compression']
        return {SOURCE_SHA256_PROPERTY: self.source_sha256(), SOURCE_FORMAT_PROPERTY: source_format}

    # -- the output --------------------------------------------------------------------
    def prepare(self) -> ConvertedImage:
        """Convert now (once per run) and let ``judge`` see the output's facts."""
        if self._converted is None:
            self.judge_source()
            source = self.inspect()
            if self._already_target(source):
                source.sha256()
                converted = ConvertedImage(source.path, self.target, _as_stored(source.facts), None)
            else:
                converted = convert(source, self.target, self.scratch_dir, self._run, whole_output=False)
                self.conversions += 1
            try:
                self._check_expected()
                if self.judge is not None:
                    self.judge('upload', dict(converted.facts, conversion=self.describe()))
            except BaseException:
                converted.close()
                raise
            self._converted = converted
        return self._converted

    def _already_target(self, source: SourceImage) -> bool:
        # A flat vmdk descriptor reads as raw text, but qemu reads it as a disk: converted.
        return source.safe and glance_disk_format(source.format) == self.target and not source.facts.get('extents')

    def stream(self, first_bytes: int | None = None) -> tuple[int | None, Iterator[bytes]]:
        return Source(self.prepare().path).stream(first_bytes)

    def remember_output(self, facts: dict[str, Any]) -> None:
        """The facts of the output as the caller read it whole (to upload or compare): from
        now on this host knows what converting the source gives (the digest cache)."""
        if facts.get('sha256') and self._converted is not None:
            self._digests.remember_conversion(self.source_sha256(), self.target, facts['sha256'])

    def close(self) -> None:
        if self._converted is not None:
            self._converted.close()
            self._converted = None
        if self._source is not None:
            self._source.close()
        if self._download_dir:
            shutil.rmtree(self._download_dir, ignore_errors=True)
            self._download_dir = None

    # -- a URL source ------------------------------------------------------------------
    def _download(self) -> str:
        """qemu-img never reads a URL itself (its curl driver follows the URL's own rules):
        the bytes are fetched into private scratch space and judged like a local file."""
        self._download_dir = tempfile.mkdtemp(prefix='imagegov-download-', dir=self.scratch_dir)
        path = os.path.join(self._download_dir, 'source')
        _length, chunks = self.given.stream()
        with open(path, 'wb') as out:
            for chunk in chunks:
                out.write(chunk)
        return path


def compression_of(source: Source) -> str | None:
    """gzip / xz / zstd when the source starts like one (its first bytes only)."""
    _length, chunks = source.stream(8)
    return compression_in(b''.join(chunks))


def conversion_target(
    requested: str | None, header: dict[str, Any] | None, compression: str | None, remedy: Callable[[str], Any]
) -> tuple[str | None, str | None]:
    """(format to convert to or None, why not converted): what the task asks (``requested``),
    else what the policy's ``remedy`` offers for an off-list format, else nothing."""
    detected = glance_disk_format((header or {}).get('detected_format'))
    if detected == 'iso' and not compression:
        return None, 'an ISO is a file system for a CD-ROM drive, not a disk: uploaded as iso, never converted'
    if requested is None:
        requested = remedy(detected) if detected and not compression else None
    return requested, None


def stored_header(header: dict[str, Any] | None, target: str) -> dict[str, Any]:
    """The facts of what conversion would store that the source's header already tells: its
    virtual size (a lower bound for a compressed source, whose header is the compressor's)."""
    return {
        'detected_format': glance_disk_format(target),
        'virtual_size': (header or {}).get('virtual_size'),
        'size': None,
        'safety_failures': [],
    }


def source_sha256(expected: dict[str, str]) -> str | None:
    """Option checksum names the bytes the user has: the source, not the converted output."""
    if 'sha512' in expected:
        raise ConversionError(
            'Option checksum: with convert_to, give the sha256 of the source (sha256sum); '
            'a sha512 names the bytes Glance stores, which conversion produces.'
        )
    return expected.get('sha256')


def _as_stored(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts of a source sent as it is (decompressed, if it was compressed)."""
    stored = dict(facts, source_sha256=facts['sha256'])
    if facts.get('decompressed'):
        stored.update(sha256=facts['decompressed']['sha256'], size=facts['decompressed']['size'])
    return stored


OVA_SHA256_PROPERTY = 'imagegov_ova_sha256'
# An OVA's disk is usually a streamOptimized vmdk, which KVM clouds do not boot from.
DEFAULT_PACKAGE_TARGET = 'qcow2'
PACKAGE_SUFFIXES = ('.ova', '.ovf')


def is_package(source: Source, container_format: str | None) -> bool:
    """An .ova or .ovf file is unpacked, unless the task stores it as it is (container ova)."""
    return bool(source.filename) and source.filename.lower().endswith(PACKAGE_SUFFIXES) and container_format != 'ova'


class Package:
    """The disk of an OVA / OVF, and what the descriptor says about the VM, as the image
    module uses them: the disk is the source to convert, the OVF's facts become properties
    (the task's own properties win)."""

    def __init__(self, source: Source, scratch_dir: str | None, disk: str | None) -> None:
        scratch = os.path.abspath(os.path.expanduser(scratch_dir or tempfile.gettempdir()))
        path = source.filename or ''
        self.bundle = read_ovf(path, disk) if path.lower().endswith('.ovf') else read_ova(path, scratch, disk=disk)
        self.source = Source(self.bundle.disk_path)
        self.source.label = f'{source.label} (disk {self.bundle.disk.file!r})'
        self.nova = nova_properties(self.bundle)

    def properties(self, wanted: dict[str, Any] | None) -> dict[str, Any]:
        """The OVF's Nova properties under the task's own."""
        found = {k: v for k, v in self.nova['properties'].items() if not k.startswith(BOOKKEEPING_PREFIX)}
        return dict(found, **(wanted or {}))

    def bookkeeping(self) -> dict[str, str]:
        """What the image records of the package itself (not the task's to set)."""
        found = {k: v for k, v in self.nova['properties'].items() if k.startswith(BOOKKEEPING_PREFIX)}
        return dict(found, **{OVA_SHA256_PROPERTY: self.bundle.sha256})

    @property
    def min_ram(self) -> int | None:
        return self.nova['min_ram']

    def facts(self, virtual_size: int | None) -> dict[str, Any]:
        facts = dict(self.bundle.facts(), notes=list(self.nova['notes']))
        if virtual_size:
            facts['size_check'] = size_facts(self.bundle, virtual_size)
        return facts

    def close(self) -> None:
        self.bundle.close()
