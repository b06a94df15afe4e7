# PRIVATE to the collection: not a public API.
"""Checksums of catalog sources: `sha256:`/`sha512:` values and published checksum files
(SHA256SUMS, CHECKSUM) fetched over HTTP(S) and searched for one file's digest."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .._redact import redact_url, redact_urls_in
from ..documents.problems import ImagegovError
from ..documents.values import quote

ALGORITHMS = {64: 'sha256', 128: 'sha512'}
USER_AGENT = 'imagegov.openstack'
_PREFIXED = re.compile(r'(sha256|sha512):([0-9a-fA-F]+)')
_BSD = re.compile(r'(SHA256|SHA512) ?\((.*)\) ?= ?([0-9a-fA-F]+)', re.IGNORECASE)
_GNU = re.compile(r'\\?([0-9a-fA-F]+)(?:\s+\*?(.+?))?\s*')
_PGP_BEGIN = '-----BEGIN PGP SIGNED MESSAGE-----'
_PGP_SIGNATURE = '-----BEGIN PGP SIGNATURE-----'


class ChecksumFileError(ImagegovError):
    """A checksum file cannot be fetched or does not give one digest for the file looked for."""


def parse_checksum(text: str) -> tuple[str, str] | None:
    """('sha256' or 'sha512', lower-case hex) of a `sha256:<64 hex>` or `sha512:<128 hex>` value, else None."""
    match = _PREFIXED.fullmatch(text) if isinstance(text, str) else None
    if not match or ALGORITHMS.get(len(match.group(2))) != match.group(1):
        return None
    return match.group(1), match.group(2).lower()


def _signed_body(lines: list[str]) -> list[str]:
    """The signed text of a PGP clear-signed message (armor headers, dash-escaping and signature
    removed); other text unchanged. The signature is NOT verified."""
    if not lines or lines[0].strip() != _PGP_BEGIN:
        return lines
    start = lines.index('') + 1 if '' in lines else len(lines)
    end = next((i for i in range(start, len(lines)) if lines[i].strip() == _PGP_SIGNATURE), len(lines))
    return [line[2:] if line.startswith('- ') else line for line in lines[start:end]]


def _entries(text: str) -> list[tuple[str | None, str | None, str]]:
    """(name or None, algorithm a BSD line states or None, hex) of every checksum line."""
    lines = [line.rstrip() for line in text.lstrip('\ufeff').splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    entries: list[tuple[str | None, str | None, str]] = []
    for line in _signed_body(lines):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if bsd := _BSD.fullmatch(line):
            entries.append((bsd.group(2), bsd.group(1).lower(), bsd.group(3).lower()))
        elif gnu := _GNU.fullmatch(line):
            entries.append((gnu.group(2), None, gnu.group(1).lower()))
    return entries


def _basename(name: str) -> str:
    return name.replace('\\', '/').rsplit('/', 1)[-1]


def find_digest(text: str, wanted: str, source_label: str) -> tuple[str, str]:
    """(algorithm, lower-case hex) for the file `wanted` (matched by basename) in the text of a
    checksum file: GNU coreutils lines (`<hex>  <name>`, `<hex> *<name>`), BSD lines
    (`SHA256 (<name>) = <hex>`), or a single digest optionally followed by a name. `#` comments
    and blank lines are ignored. Of a PGP clear-signed file only the signed body is read: the
    signature is NOT verified. The algorithm follows from the digest length (64 hex = sha256,
    128 = sha512). Raises ChecksumFileError naming `source_label` (redacted) and `wanted`."""
    where, wanted = redact_url(source_label), _basename(wanted)
    entries = _entries(text)
    chosen = {(algo, digest) for name, algo, digest in entries if name is not None and _basename(name) == wanted}
    if not entries:
        raise ChecksumFileError(f'no checksum lines in {where} (looking for {quote(wanted)})')
    if not chosen and len(entries) == 1:
        name, algo, digest = entries[0]
        if name is not None:
            raise ChecksumFileError(f'the only line in {where} is for {quote(name)}, not {quote(wanted)}')
        chosen = {(algo, digest)}
    if not chosen:
        names = list(dict.fromkeys(name for name, _algo, _digest in entries if name is not None))
        examples = ', '.join(quote(name) for name in names[:3])
        listed = f'{len(names)} file{"" if len(names) == 1 else "s"}, e.g. {examples}' if names else 'no file names'
        raise ChecksumFileError(f'no line for {quote(wanted)} in {where} (it lists {listed})')
    digests = sorted({digest for _algo, digest in chosen})
    if len(digests) > 1:
        shown = ', '.join(quote(digest, 20) for digest in digests)
        raise ChecksumFileError(f'{len(digests)} different digests for {quote(wanted)} in {where}: {shown}')
    stated = next((algo for algo, _digest in chosen if algo), None)
    algo = ALGORITHMS.get(len(digests[0]))
    if algo is None or stated not in (None, algo):
        stated_text = f' on a {stated.upper()} line' if stated else ''
        raise ChecksumFileError(
            f'the digest for {quote(wanted)} in {where} has {len(digests[0])} hex digits{stated_text}; '
            'a sha256 digest has 64, a sha512 digest 128'
        )
    return algo, digests[0]


def fetch_text(url: str, timeout: float = 30, limit: int = 1 << 20) -> str:
    """The UTF-8 text at an http(s) URL, at most `limit` bytes (a larger file is an error)."""
    where = redact_url(url)
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ('http', 'https') or not parts.hostname:
        raise ChecksumFileError(f'checksum URL {where}: only http:// and https:// URLs can be fetched')
    import requests  # openstacksdk's HTTP library; imported here so the module imports without it

    data = b''
    try:
        # requests sends user:password of the URL as HTTP Basic authentication.
        with requests.get(url, stream=True, timeout=timeout, headers={'User-Agent': USER_AGENT}) as response:
            if response.status_code >= 400:
                raise ChecksumFileError(
                    f'checksum URL {where}: the server answered HTTP {response.status_code} {response.reason}'
                )
            for chunk in response.iter_content(65536):
                data += chunk
                if len(data) > limit:
                    break
    except requests.RequestException as exc:
        reason = redact_urls_in(str(exc)) or type(exc).__name__
        raise ChecksumFileError(f'checksum URL {where}: cannot be fetched: {reason}') from exc
    if len(data) > limit:
        raise ChecksumFileError(f'checksum URL {where}: larger than {limit} bytes; is it a checksum file?')
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise ChecksumFileError(
            f'checksum URL {where}: not UTF-8 text (invalid byte at offset {exc.start}); is it a checksum file?'
        ) from exc


def fetch_checksum(url: str, wanted: str, timeout: float = 30, limit: int = 1 << 20) -> tuple[str, str]:
    """(algorithm, lower-case hex) for the file `wanted` in the checksum file at `url`."""
    return find_digest(fetch_text(url, timeout, limit), wanted, url)


class ChecksumResolver:
    """Checksum files of one run: each URL is fetched once (`fetches` counts the fetches), its
    text or its fetch error kept for every file looked up in it."""

    def __init__(self, timeout: float = 30, limit: int = 1 << 20) -> None:
        self.timeout = timeout
        self.limit = limit
        self.fetches = 0
        self._texts: dict[str, str | ChecksumFileError] = {}

    def resolve(self, url: str, wanted: str) -> tuple[str, str]:
        if url not in self._texts:
            self.fetches += 1
            try:
                self._texts[url] = fetch_text(url, self.timeout, self.limit)
            except ChecksumFileError as exc:
                self._texts[url] = exc
        text = self._texts[url]
        if isinstance(text, ChecksumFileError):
            raise text
        return find_digest(text, wanted, url)
