# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which image an image is: ids every run derives alike, and content identity that rests on
what Glance computed, never on a property a project member can edit.

- Ids: the n-th image created under a name in a project gets the id derived from
  (project, name, n). Concurrent runs derive the same id, so Glance's id uniqueness lets
  exactly one create it; the others find it and carry on with it. Glance never reuses the
  id of a deleted image, so creation walks the sequence to the first free id.
- Content: ``owner_specified.openstack.sha256`` is what the owner says the bytes are. An
  image is taken as holding the expected bytes only when Glance's own ``os_hash_value``
  equals a digest of those bytes in Glance's algorithm that this host knows for certain:
  given by the user (a sha512 checksum), computed from the source in this run, or computed
  earlier on this host (the digest cache, which maps a sha256 to digests of the same bytes
  and so can never go stale).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from ._errors import ImagegovError

# Fixed forever: changing it would change every derived id.
ID_NAMESPACE = uuid.UUID('6f1c1c5e-7d0f-5b8a-9a4e-2f9e0d3c6b71')
# Deleted images keep their ids; after this many taken ids a random id is used instead.
MAX_GENERATIONS = 64
HEX = {'sha256': 64, 'sha512': 128}
_HEX_DIGITS = re.compile(r'^[0-9a-f]+$')
CACHE_ENV = 'IMAGEGOV_CACHE_DIR'
CACHE_LIMIT = 20000


class ChecksumError(ImagegovError):
    """A checksum option or field that is not a digest this collection can verify."""


def derived_id(owner_id: str, name: str, generation: int) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f'{owner_id}\n{name}\n{generation}'))


def derived_ids(owner_id: str, name: str, start: int = 0) -> Iterator[tuple[int, str]]:
    for generation in range(start, MAX_GENERATIONS):
        yield generation, derived_id(owner_id, name, generation)


def generation_of(image: dict[str, Any]) -> int | None:
    """The place of an image in its name's id sequence, when its id is a derived one."""
    owner, name, image_id = image.get('owner'), image.get('name'), image.get('id')
    if not (owner and isinstance(name, str) and image_id):
        return None
    return next((generation for generation, candidate in derived_ids(owner, name) if candidate == image_id), None)


def parse_checksum(value: str | None, where: str = 'Option checksum') -> dict[str, str]:
    """{'sha256': hex} or {'sha512': hex} from `hex`, `sha256:hex` or `sha512:hex`."""
    if value is None:
        return {}
    text = str(value).strip().lower()
    algo, _colon, digest = text.rpartition(':')
    if not algo:
        algo = next((name for name, length in HEX.items() if len(digest) == length), '')
    if algo not in HEX or len(digest) != HEX[algo] or not _HEX_DIGITS.match(digest):
        raise ChecksumError(
            f'{where}: {value!r} is not a sha256 or sha512 digest (64 or 128 '
            'hexadecimal characters, optionally prefixed sha256: / sha512:). Give the '
            'output of sha256sum or sha512sum for the source.'
        )
    return {algo: digest}


class DigestCache:
    """Digests this host computed itself, kept between runs on the host the module runs on.

    ``sha256 -> {algo: digest, size}`` describes bytes, so an entry is true forever; and
    ``image id -> source sha256`` records which source an import was made from when Glance's
    import plugins rewrote the bytes (image ids are never reused). Unwritable locations
    only cost speed: the source is read again.
    """

    def __init__(self, directory: str | None = None) -> None:
        base = (
            directory
            or os.environ.get(CACHE_ENV)
            or os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'imagegov')
        )
        self.path = os.path.join(base, 'digests.json')
        self._entries: dict[str, dict[str, Any]] | None = None
        self._pending: dict[str, dict[str, Any]] = {}

    @property
    def entries(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path, encoding='utf-8') as stream:
                data = json.load(stream)
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def digest(self, sha256: str | None, algo: str | None) -> str | None:
        entry = self.entries.get(f'sha256:{sha256}') if sha256 and algo else None
        value = entry.get(algo) if entry else None
        return value if isinstance(value, str) else None

    def imported_from(self, image_id: str) -> str | None:
        entry = self.entries.get(f'image:{image_id}')
        value = entry.get('source_sha256') if entry else None
        return value if isinstance(value, str) else None

    def remember(self, facts: dict[str, Any]) -> None:
        """Record the digests of bytes this run read (facts of a ContentScanner)."""
        glance_hash = facts.get('glance_hash')
        if not (facts.get('sha256') and glance_hash):
            return
        self._update(
            f'sha256:{facts["sha256"]}', {glance_hash['algo']: glance_hash['value'], 'size': facts.get('size')}
        )

    def converted(self, source_sha256: str, target: str) -> str | None:
        """The sha256 of what this host's qemu-img wrote converting those bytes to ``target``."""
        entry = self.entries.get(f'convert:{target}:{source_sha256}')
        value = entry.get('sha256') if entry else None
        return value if isinstance(value, str) else None

    def remember_conversion(self, source_sha256: str, target: str, output_sha256: str) -> None:
        self._update(f'convert:{target}:{source_sha256}', {'sha256': output_sha256})

    def bind_import(self, image_id: str, source_sha256: str) -> None:
        self._update(f'image:{image_id}', {'source_sha256': source_sha256})

    def _update(self, key: str, values: dict[str, Any]) -> None:
        self.entries[key] = dict(self.entries.get(key, {}), **values)
        if not self._pending:
            atexit.register(self.flush)  # a catalog remembers many digests: write them once
        self._pending[key] = self.entries[key]

    def flush(self) -> None:
        """Write what this run learnt, merged into what other runs wrote meanwhile."""
        if not self._pending:
            return
        entries = dict(self._read(), **self._pending)
        self._pending = {}
        while len(entries) > CACHE_LIMIT:
            entries.pop(next(iter(entries)))
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix='.digests.', dir=directory)
            with os.fdopen(fd, 'w', encoding='utf-8') as stream:
                json.dump(entries, stream)
            os.replace(tmp, self.path)  # concurrent writers: the last one wins, nothing is torn
        except OSError:
            pass


def stored_hash_matches(image: dict[str, Any], digests: dict[str, str]) -> bool | None:
    """Whether Glance's own hash of the image equals one of ``digests`` ({algo: hex}); None
    when they cannot be compared (no hash recorded, or in another algorithm)."""
    algo, value = image.get('os_hash_algo'), image.get('os_hash_value')
    if not (algo and value) or algo not in digests:
        return None
    return value == digests[algo]
