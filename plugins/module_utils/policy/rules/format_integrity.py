# PRIVATE to the collection: not a public API.
"""format_integrity: the declared disk_format must be what the bytes are, and safe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..request import Request
from .base import Finding, Rule, register

# Declared disk_format -> formats oslo.utils' inspector may report for honest content.
# 'gpt' is oslo's name for any MBR/GPT-partitioned disk, which is a raw disk.
# 'raw' is what the inspector reports when *no* other format matched, so it only
# fits formats that have no header of their own (raw, and AMI/AKI/ARI payloads).
# Declared 'raw' with detected 'iso' is refused: ISO 9660/UDF media is booted as a
# CD-ROM only when declared 'iso'; add 'iso' to raw's list to accept it.
DEFAULT_COMPATIBLE: dict[str, tuple[str, ...]] = {
    'raw': ('raw', 'gpt'),
    'ami': ('raw', 'gpt'),
    'aki': ('raw',),
    'ari': ('raw',),
    'iso': ('iso',),
    'qcow2': ('qcow2',),
    'vmdk': ('vmdk',),
    'vhd': ('vhd',),
    'vhdx': ('vhdx',),
    'vdi': ('vdi',),
    'qed': ('qed',),
    'luks': ('luks',),
}
# A bootable (hybrid) ISO carries a partition table too, so oslo matches both.
HYBRID_ISO = frozenset(('iso', 'gpt'))
# Declared formats that name a boot file, and the role (content.boot_file) it must not
# contradict: an initrd declared aki, or a kernel declared ari, is refused.
BOOT_FILE_FORMATS = {'aki': 'kernel', 'ari': 'ramdisk'}
BOOT_FILE_TEXT = {'kernel': 'a Linux kernel', 'ramdisk': 'an initrd (cpio)'}
# An x86 kernel (bzImage) starts with a legacy boot sector that ends in the MBR signature:
# oslo reads it as an MBR disk ('gpt') whose partition table - boot code - fails the 'mbr'
# check. Bytes whose header proves a kernel, declared aki, may be that and only that.
KERNEL_DETECTIONS = frozenset(('gpt',))
BOOT_SECTOR_CHECKS = frozenset(('mbr',))


@register
class FormatIntegrity(Rule):
    """The declared disk_format must match what the bytes are, and the bytes must pass safety checks.

    The safety checks are those of oslo.utils' format inspector (the one Glance, Nova and
    Cinder use, with the OSSA-2023-002 / OSSA-2024-001 checks). Needs `content`; requests
    without it are skipped (reported as skipped in JUnit). It judges only what the facts say:
    `content` with `recorded_by: glance` and no `detected_format` is Glance's record of an
    image whose bytes nobody read (what `policy_check` audits without `inspect`); it has
    sizes, not the format, so the format is not judged and `policy_check` reports the rule as
    skipped, with a note saying that the bytes were not read and that `inspect: header` reads
    them.

    - `content.detected_format` is the inspector's name for the bytes: `raw`, `qcow2`,
      `vmdk`, `vhd`, `vhdx`, `vdi`, `qed`, `iso`, `gpt`, `luks`. Each declared format
      accepts these detections by default:

      | declared | accepted detections | why |
      | --- | --- | --- |
      | `raw`, `ami` | `raw`, `gpt` | `gpt` is oslo's name for any MBR/GPT-partitioned disk, which is a raw disk |
      | `aki` | `raw`; `gpt` when `content.boot_file` is `kernel` | a kernel has no image header (see below) |
      | `ari` | `raw` | an initrd (cpio, compressed or not) has no image header |
      | `iso` | `iso` (and `[iso, gpt]`, see below) | |
      | others | the same name | |

      `raw` is what the inspector reports when *no* other format matched, so raw bytes
      declared `qcow2` (and qcow2 bytes declared `raw`) are violations. **ISO bytes declared
      `raw` are refused**: the image would be attached as a disk instead of booted as a
      CD-ROM, and the declared format would not say what the bytes are; add `iso` to
      `compatible.raw` to accept them. Unrecognised bytes declared `iso` are refused too. A
      declared format the inspector does not know (e.g. `ploop`) cannot be verified and is
      refused unless `compatible` says what to accept.
    - `detected_format` may be a list when several inspectors matched (oslo's "Multiple
      formats detected"): that is refused (a header hidden in another format is how
      format-confusion attacks work), except a bootable hybrid ISO (`[iso, gpt]`) declared
      `iso`.
    - A kernel is not a disk. `content.boot_file` says what the bytes' own header proves:
      `kernel` (an x86 bzImage, arm64 or RISC-V Image, ELF or EFI zboot header) or `ramdisk`
      (an uncompressed cpio), else null (compressed data proves nothing by itself). An x86
      kernel's legacy boot sector ends in the MBR signature, so oslo's inspector reports
      `gpt` and its `mbr` safety check fails on the boot code; declared `aki`, bytes proven to
      be a kernel are accepted as `gpt` and that one check is not reported. Everything else
      still holds: a qcow2 or vmdk header (with or without a kernel header planted in it) is
      a mismatch, several matching inspectors are ambiguous, and every other safety check is
      reported. A proven initrd declared `aki`, or a proven kernel declared `ari`, is a
      mismatch.
    - `content.safety_failures` lists the checks `safety_check()` failed: `backing_file`,
      `data_file`, `unknown_features` (qcow2), `descriptor` (vmdk extents pointing at other
      files), `footer`, `banned`, `inner_*` (LUKS contents)... Each is a violation naming the
      check and its reason. Accepted shapes: `[backing_file]`, `['backing_file: Image has a
      backing file']`, `[{check: backing_file, message: ...}]`, or oslo's own `{backing_file:
      'Image has a backing file'}` mapping.
    - Bytes read but no format detected is a violation (`on_undetected`); Glance's record
      without a detected format is not (see above).
    """

    example = """
    - id: format-integrity
      type: format_integrity
      severity: critical
      params: {on_undetected: deny}
    """

    type_name = 'format_integrity'
    params_schema = {
        'compatible': {
            'meta': {
                'doc': 'the detections each declared format accepts',
                'type': '`{disk_format: [detections]}`, replacing those entries',
                'default': 'the table above',
            },
            'type': 'dict',
            'default': {},
            'keysrules': {'type': 'string'},
            'valuesrules': {'type': 'list', 'minlength': 1, 'schema': {'type': 'string'}},
        },
        'allow_hybrid_iso': {
            'meta': {'doc': 'accept `[iso, gpt]` content declared `iso`'},
            'type': 'boolean',
            'default': True,
        },
        'on_undetected': {
            'meta': {'doc': 'bytes read but no format detected'},
            'type': 'string',
            'allowed': ['deny', 'allow'],
            'default': 'deny',
        },
        'ignore_safety_checks': {
            'meta': {'doc': 'safety check names not to report', 'type': 'list of check names'},
            'type': 'list',
            'default': [],
            'schema': {'type': 'string'},
        },
    }
    default_actions = ('create', 'update', 'upload')
    needs_content = True
    placeholders = ('declared', 'reason')
    default_message = '{image}: {found}'
    kind_messages = {
        'mismatch': (
            "{image}: disk_format is '{declared}' but the content is {found}; "
            'declare the real format or convert the image'
        ),
        'undetected': (
            "{image}: the content format could not be detected (declared '{declared}'); the image cannot be verified"
        ),
        'unsafe': (
            "{image}: the content fails the '{found}' safety check ({reason}); "
            'images with backing files, external data files or extents are refused'
        ),
    }

    def setup(self, params: Mapping[str, Any]) -> None:
        table = dict(DEFAULT_COMPATIBLE)
        table.update({key: tuple(value) for key, value in params['compatible'].items()})
        self.compatible: dict[str, frozenset[str]] = {key: frozenset(value) for key, value in table.items()}
        self.allow_hybrid_iso = params['allow_hybrid_iso']
        self.deny_undetected = params['on_undetected'] == 'deny'
        self.ignored_checks = frozenset(params['ignore_safety_checks'])

    def evaluate(self, request: Request) -> list[Finding]:
        content = request.content
        kernel = request.get('disk_format') == 'aki' and content.get('boot_file') == 'kernel'
        findings = self._boot_file_findings(request, content) or self._format_findings(request, content, kernel)
        ignored = self.ignored_checks
        detected = _single(content.get('detected_format'))
        if kernel and isinstance(detected, str) and detected in KERNEL_DETECTIONS:
            ignored = ignored | BOOT_SECTOR_CHECKS
        for check, reason in safety_failures(content.get('safety_failures')):
            if check not in ignored:
                findings.append(
                    Finding(
                        'content.safety_failures', check, 'no unsafe features', kind='unsafe', fields={'reason': reason}
                    )
                )
        return findings

    @staticmethod
    def _boot_file_findings(request: Request, content: Mapping[str, Any]) -> list[Finding]:
        declared = request.get('disk_format')
        proven = content.get('boot_file')
        wanted = BOOT_FILE_FORMATS.get(declared)
        if not wanted or not proven or proven == wanted:
            return []
        return [
            Finding(
                'content.boot_file',
                proven,
                wanted,
                kind='mismatch',
                found_text=BOOT_FILE_TEXT.get(proven, str(proven)),
                fields={'declared': declared},
            )
        ]

    def _format_findings(self, request: Request, content: Mapping[str, Any], kernel: bool) -> list[Finding]:
        declared = request.get('disk_format')
        detected = content.get('detected_format')
        if not declared:
            return []
        if not detected:
            if not self.deny_undetected or bytes_not_read(content):
                return []
            return [
                Finding('content.detected_format', None, declared, kind='undetected', fields={'declared': declared})
            ]
        accepted = self.compatible.get(declared, frozenset((declared,)))
        if kernel:
            accepted = accepted | KERNEL_DETECTIONS
        detected = _single(detected)
        if isinstance(detected, str):
            if detected in accepted:
                return []
            found_text = f"'{detected}'"
        else:
            detected = sorted(str(item) for item in detected)
            if self.allow_hybrid_iso and declared == 'iso' and frozenset(detected) == HYBRID_ISO:
                return []
            found_text = f'ambiguous (matches {", ".join(detected)})'
        return [
            Finding(
                'content.detected_format',
                detected,
                sorted(accepted),
                kind='mismatch',
                found_text=found_text,
                fields={'declared': declared},
            )
        ]


def _single(detected: Any) -> Any:
    """One detection given as a one-item list is that detection."""
    if isinstance(detected, (list, tuple)) and len(detected) == 1:
        return detected[0]
    return detected


def bytes_not_read(content: Mapping[str, Any]) -> bool:
    """Whether the content facts are Glance's record only, which says nothing of the format."""
    return not content.get('detected_format') and content.get('recorded_by') == 'glance'


def safety_failures(raw: Any) -> list[tuple[str, str]]:
    """Normalise the accepted shapes of `content.safety_failures` to (check, reason) pairs."""
    if not raw:
        return []
    if isinstance(raw, Mapping):
        return [(str(name), str(reason or name)) for name, reason in raw.items()]
    pairs = []
    for entry in raw if isinstance(raw, (list, tuple)) else [raw]:
        if isinstance(entry, Mapping):
            check = entry.get('check') or entry.get('name') or 'unknown'
            reason: Any | None = entry.get('message') or entry.get('reason')
            pairs.append((str(check), str(reason or check)))
        else:
            check, _colon, reason_text = str(entry).partition(':')
            pairs.append((check.strip(), reason_text.strip() or check.strip()))
    return pairs
