# PRIVATE to the collection: not a public API.
"""OSISM openstack-image-manager image definitions -> a catalog document. No Ansible imports.

    result = import_definitions(['etc/images/'], history=False)   # raises OsismError
    result.document     # {'version': 1, 'images': [...]}, see docs/catalog.md
    result.notes        # one Problem per field not carried over: file, line, image, field, why
    render_catalog(result)                                         # the catalog file's text

The mapping is described in docs/migrating.md. Versions are checked against the essentials
of OSISM's own schema (etc/schema.yaml); a field the importer does not know is reported, not
dropped silently and not an error.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

from ..documents._libs import yaml
from ..documents.files import yaml_files
from ..documents.problems import Problem, ProblemsError
from ..documents.validation import Validator, validate
from ..documents.values import QUOTE_LIMIT, quote
from . import source as catalog_source
from .constants import (
    CHECKSUM_ALGORITHMS,
    ENTRY_DEACTIVATED,
    ENTRY_UNMANAGED,
    GLANCE_ATTRIBUTES,
    MIN_DISK_AUTO,
    RESERVED_PROPERTIES,
    RESERVED_PROPERTY_PREFIXES,
    VERSION_PLACEHOLDER,
)

# OSISM's own patterns (etc/schema.yaml).
_URL = re.compile(r'^(http|ftp)s?:\/\/\w+.*|^(file:|file:///)\w+.*')
_HTTP_URL = re.compile(r'^https?:\/\/\w+.*')
_CHECKSUM = re.compile(r'\w+:([a-f0-9]{32}|[a-f0-9]{40}|[a-f0-9]{64}|[a-f0-9]{128})')
_UUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
_VISIBILITIES = ['public', 'private', 'community', 'shared']
_FORMATS = ['aki', 'ari', 'ami', 'raw', 'iso', 'vhd', 'vdi', 'qcow2', 'vmdk']

_META = {
    'type': 'dict',
    'keysrules': {'type': 'string', 'empty': False},
    'valuesrules': {'nullable': True, 'type': ['string', 'integer', 'float', 'boolean']},
}
VERSION_SCHEMA: dict[str, Any] = {
    'version': {'type': 'string', 'required': True, 'empty': False},
    'url': {'type': 'string', 'required': True, 'check_with': 'source_url'},
    'mirror_url': {'type': 'string', 'check_with': 'source_url'},
    'checksum': {'type': 'string', 'check_with': 'checksum'},
    'checksum_url': {'type': 'string', 'check_with': 'http_url'},
    'checksums_url': {'type': 'string', 'check_with': 'http_url'},
    'build_date': {'type': 'string', 'check_with': 'isodate'},
    'hidden': {'type': 'boolean'},
    'id': {'type': 'string', 'check_with': 'uuid'},
    'image_description': {'type': 'string'},
    'meta': _META,
    'os_version': {'type': 'string'},
    'source': {'type': 'string'},
    'visibility': {'type': 'string', 'allowed': _VISIBILITIES},
}
IMAGE_SCHEMA: dict[str, Any] = {
    'name': {'type': 'string', 'required': True, 'empty': False},
    'format': {'type': 'string', 'required': True, 'allowed': _FORMATS},
    'versions': {
        'type': 'list',
        'required': True,
        'schema': {'type': 'dict', 'schema': VERSION_SCHEMA, 'allow_unknown': True},
    },
    'enable': {'type': 'boolean'},
    'keep': {'type': 'boolean'},
    'latest_checksum_url': {'type': 'string', 'check_with': 'http_url'},
    'latest_url': {'type': 'string', 'check_with': 'source_url'},
    'login': {'type': 'string'},
    'meta': _META,
    'min_disk': {'type': 'integer', 'min': 0},
    'min_ram': {'type': 'integer', 'min': 0},
    'multi': {'type': 'boolean'},
    'password': {'type': 'string'},
    'separator': {'type': 'string'},
    'shortname': {'type': 'string', 'empty': False},
    'status': {'type': 'string', 'allowed': ['active', 'deactivated']},
    'tags': {'type': 'list', 'schema': {'type': 'string', 'empty': False}},
    'visibility': {'type': 'string', 'allowed': _VISIBILITIES},
}

# Fields with no equivalent in the catalog: why each is not carried over.
_IMAGE_NOT_CARRIED = {
    'login': 'the catalog does not record the login user (OSISM writes it as property '
    'image_original_user); add it under properties to keep it on the images',
    'password': 'the catalog does not record passwords',
    'latest_url': 'the catalog does not look for new versions; add each new version to the catalog',
    'latest_checksum_url': 'the catalog does not look for new versions; add each new version to the catalog',
}
_VERSION_NOT_CARRIED = {
    'mirror_url': 'the catalog downloads from url; make url the mirror to download from there',
    'hidden': "the catalog hides a series' older builds itself (retire.hide), not version by version",
    'source': 'the catalog has no field for where an image came from; add it under properties to keep it',
}
_STAYS_UNMANAGED = (
    'so the version stays unmanaged (the catalog uploads only what a sha256 or sha512 checksum proves; '
    'add checksum: sha256:<hex> or sha512:<hex>, or checksum_url, to manage it)'
)
_UNKNOWN = "not carried over: a field unknown to OSISM's schema and to the importer"

# Runs a command: (return code, stdout, stderr), as AnsibleModule.run_command.
Runner: TypeAlias = Callable[[list[str]], tuple[int, str, str]]

_UUID_VALIDITY = re.compile(r'^last-([0-9]+)$')
_NATURAL = re.compile(r'([0-9]+)')
_SLUG = re.compile(r'[^a-z0-9._]+')


class OsismError(ProblemsError):
    """OSISM definitions that cannot be imported; `problems` names file, line, image and field of each."""

    subject = 'OSISM image definitions'


class OsismImport:
    """The catalog document converted from OSISM definitions, and what was not carried over."""

    __slots__ = ('document', 'notes', 'files', 'history')

    def __init__(self, document: dict[str, Any], notes: list[Problem], files: list[str], history: bool) -> None:
        self.document = document
        self.notes = notes
        self.files = files
        self.history = history

    @property
    def series(self) -> int:
        return sum(1 for entry in self.document['images'] if 'series' in entry)

    @property
    def images(self) -> int:
        """Glance images the catalog names: single images and series builds."""
        return sum(len(entry['versions']) if 'series' in entry else 1 for entry in self.document['images'])


def import_definitions(paths: Sequence[str], history: bool = False, run: Runner | None = None) -> OsismImport:
    """Read OSISM definition files (or directories of *.yml / *.yaml) and convert them.

    With `history`, versions that left a definition file in earlier commits of its git
    checkout are added as `state: unmanaged` builds; `run` runs git (a command list in,
    (return code, stdout, stderr) out: AnsibleModule.run_command). Raises OsismError
    listing every problem.
    """
    if history and run is None:
        raise ValueError('history needs run, to run git')
    if yaml is None:
        raise OsismError([Problem('OSISM image definitions', 'PyYAML is required')])
    files, problems = yaml_files([os.fspath(path) for path in paths], 'OSISM image definition')
    notes: list[Problem] = []
    images: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            data, lines = catalog_source.parse(catalog_source.read_text(path))
        except catalog_source.YamlSourceError as exc:
            problems.append(Problem(path, str(exc), catalog_source.yaml_error_line(exc)))
            continue
        reader = _File(path, data, lines, problems, notes)
        past = _history(path, run, notes, problems) if history and run else []
        for index, image in reader.images():
            images.extend(reader.convert(index, image, past, seen))
    if problems:
        raise OsismError(problems)
    return OsismImport({'version': 1, 'images': images}, notes, files, history)


def render_catalog(result: OsismImport) -> str:
    """The catalog file: a header naming the definitions, then the document as block YAML.
    The same definitions give the same text."""
    header = [
        '# Generated by imagegov.openstack.catalog_import from OSISM openstack-image-manager',
        '# image definitions (see docs/migrating.md); importing them again rewrites this file.',
        '# Definitions:',
        *(f'#   - {path}' for path in result.files),
    ]
    if result.history:
        header += [
            '# With history: versions that left these files in earlier commits are listed with',
            '# state: unmanaged (known to the catalog; never uploaded, changed or deleted by it).',
        ]
    body = yaml.dump(
        result.document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120
    )
    # A blank line before each image.
    body = re.sub(r'\n(  - )', r'\n\n\1', body).replace('images:\n\n', 'images:\n', 1)
    return '\n'.join(header) + '\n' + body


class _Dumper(getattr(yaml, 'SafeDumper', object)):  # type: ignore[misc]
    """Block lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


class _Shared(NamedTuple):
    """What every entry made from one OSISM image starts from."""

    index: int
    item: str
    image: Mapping[str, Any]
    state: str | None
    attributes: dict[str, Any]
    properties: dict[str, Any]
    tags: list[str]
    separator: str
    old: list[dict[str, Any]]


class _File:
    """One definitions file: its checks, lines and conversion."""

    def __init__(self, path: str, data: Any, lines: Any, problems: list[Problem], notes: list[Problem]) -> None:
        self.path = path
        self.data = data
        self.lines = lines
        self.problems = problems
        self.notes = notes

    def images(self) -> list[tuple[int, dict[str, Any]]]:
        """The file's valid images; problems of the others are recorded."""
        data = self.data
        if not isinstance(data, Mapping):
            self.problems.append(Problem(self.path, f'must be a mapping with an images list, got {_kind(data)}'))
            return []
        images = data.get('images')
        if not isinstance(images, list) or not images:
            self.problems.append(
                Problem(self.path, 'must be a non-empty list of images', self.lines.keys.get('images'), field='images')
            )
            return []
        for key in sorted(set(data) - {'images'}, key=str):
            self.note(None, None, str(key), _UNKNOWN, line=self.lines.keys.get(key))
        valid = []
        for index, image in enumerate(images):
            item = _item(image, index)
            if not isinstance(image, Mapping):
                self.problem(index, item, None, f'must be a mapping, got {_kind(image)}')
                continue
            _normal, found = validate(image, IMAGE_SCHEMA, validator=_Lenient)
            for field, message in found:
                if field.endswith('.version') and message.startswith('must be of string type'):
                    message += ' (YAML reads it as a number: quote it)'
                self.problem(index, item, field, message)
            name = image.get('name')
            if isinstance(name, str) and ('{' in name or '}' in name):
                found.append(('name', f'must not contain {{ or }}, got {quote(name)}'))
                self.problem(index, item, 'name', found[-1][1])
            first: dict[str, int] = {}
            for position, version in enumerate(image.get('versions') if not found else []):
                key = version['version']
                if key in first:
                    found.append((f'versions[{position}].version', f'duplicate version {quote(key)}'))
                    self.problem(index, item, found[-1][0], f'{found[-1][1]}; already at versions[{first[key]}]')
                first.setdefault(key, position)
            if not found:
                valid.append((index, image))
        return valid

    def convert(
        self, index: int, image: Mapping[str, Any], past: list[tuple[str, Any]], seen: dict[str, str]
    ) -> list[dict[str, Any]]:
        name = image['name']
        item = _item(image, index)
        if name in seen:
            self.problem(index, item, 'name', f'duplicate image name {quote(name)}; already defined by {seen[name]}')
            return []
        seen[name] = self.where(index, item)
        series = _series_id(image)
        if image.get('multi', True):
            if f'series {series}' in seen:
                self.problem(
                    index,
                    item,
                    'shortname',
                    f'series {quote(series)} (from shortname, else the name) is already used by '
                    f'{seen[f"series {series}"]}; give the images different shortnames',
                )
                return []
            seen[f'series {series}'] = self.where(index, item)
        for key in sorted(set(image) - set(IMAGE_SCHEMA), key=str):
            self.note(index, item, str(key), _UNKNOWN)
        for key, why in _IMAGE_NOT_CARRIED.items():
            if key in image:
                self.note(index, item, key, f'not carried over: {why}')
        if not image['versions']:
            self.note(index, item, 'versions', 'not carried over: the image has no versions')
            return []
        state = None
        if image.get('enable') is False:
            state = ENTRY_UNMANAGED
        elif image.get('status') == 'deactivated':
            state = ENTRY_DEACTIVATED
        properties = self.properties(index, item, 'meta', image.get('meta') or {})
        attributes = _compact(
            disk_format=image['format'],
            min_disk=image.get('min_disk', MIN_DISK_AUTO),
            min_ram=image.get('min_ram'),
            visibility=image.get('visibility'),
        )
        tags = sorted(set(image.get('tags') or []))
        separator = image.get('separator', ' ')
        current = {version['version'] for version in image['versions']}
        old = [version for version in _past_versions(past, name) if version['version'] not in current]
        shared = _Shared(index, item, image, state, attributes, properties, tags, separator, old)
        return [self.series(shared)] if image.get('multi', True) else self.singles(shared)

    def series(self, shared: _Shared) -> dict[str, Any]:
        index, item, image, state, attributes, properties, tags, separator, old = shared
        name = image['name']
        entry: dict[str, Any] = {
            'series': _series_id(image),
            'alias': name,
            'name': f'{name}{separator}({VERSION_PLACEHOLDER})',
            **_compact(state=state),
            **attributes,
        }
        keep_last = _keep_last(image)
        if keep_last:
            entry['keep_last'] = keep_last
        entry.update(_compact(properties=properties, tags=tags))
        versions = [
            self.version(index, item, position, version, state) for position, version in enumerate(image['versions'])
        ]
        versions += [_unmanaged(version) for version in old]
        dated = [version for version in versions if 'released' in version]
        if dated and len(dated) < len(versions):
            missing = ', '.join(version['version'] for version in versions if 'released' not in version)
            self.note(
                index,
                item,
                'versions',
                f'not carried over: the catalog needs a release date on every version of a series or on none, '
                f'and these versions have no build_date: {missing}',
            )
            for version in dated:
                del version['released']
        self.check_order(index, item, versions)
        entry['versions'] = versions
        return entry

    def singles(self, shared: _Shared) -> list[dict[str, Any]]:
        index, item, image, state, attributes, properties, tags, separator, old = shared
        entries = []
        for position, version in enumerate(image['versions']):
            build = self.version(index, item, position, version, state, single=True)
            merged = dict(properties, **build.pop('properties', {}))
            entry: dict[str, Any] = {
                'name': f'{image["name"]}{separator}{build.pop("version")}',
                **_compact(state=build.pop('state', None) or state),
                **attributes,
                **_compact(visibility=build.pop('visibility', None)),
                **_compact(properties=dict(sorted(merged.items())), tags=tags),
                **build,
            }
            entries.append(entry)
        for version in old:
            entry = {
                'name': f'{image["name"]}{separator}{version["version"]}',
                'state': ENTRY_UNMANAGED,
                'disk_format': image['format'],
            }
            entry.update(_compact(id=version.get('id')))
            entries.append(entry)
        return entries

    def version(
        self,
        index: int,
        item: str,
        position: int,
        version: Mapping[str, Any],
        state: str | None,
        single: bool = False,
    ) -> dict[str, Any]:
        prefix = f'versions[{position}]'
        line = self.lines.version(index, position)

        def note(field: str, why: str) -> None:
            self.note(index, item, f'{prefix}.{field}', why, line=line)

        for key in sorted(set(version) - set(VERSION_SCHEMA), key=str):
            note(str(key), _UNKNOWN)
        for key, why in _VERSION_NOT_CARRIED.items():
            if key in version:
                note(key, f'not carried over: {why}')
        build: dict[str, Any] = {'version': version['version']}
        if 'build_date' in version:
            if single:
                note('build_date', 'not carried over: a single image has no release date in the catalog')
            else:
                build['released'] = _day(version['build_date'])
        if 'id' in version:
            build['id'] = version['id']
        source = _source(version['url'])
        checksum, rejected = self.checksum(version, note)
        managed = state != ENTRY_UNMANAGED
        stays = '; the version stays unmanaged' if managed else ''
        if source is None:
            note('url', f'not carried over: {quote(version["url"])} is not an http(s) URL or a file{stays}')
        if managed and source is not None and checksum is None:
            note(
                'checksum',
                f'not carried over: {rejected} is not a sha256 or sha512 checksum, {_STAYS_UNMANAGED}'
                if rejected
                else f'no sha256 or sha512 checksum, {_STAYS_UNMANAGED}',
            )
        elif rejected:
            note('checksum', f'not carried over: only a sha256 or sha512 checksum proves the content, got {rejected}')
        if managed and (source is None or checksum is None):
            build['state'] = ENTRY_UNMANAGED
        if source is not None:
            build['source'] = source
        build.update(checksum or {})
        if 'visibility' in version:
            build['visibility'] = version['visibility']
        own = self.properties(index, item, f'{prefix}.meta', version.get('meta') or {}, line)
        for key in ('os_version', 'image_description'):
            if key in version:
                own[key] = version[key]
        if own:
            build['properties'] = dict(sorted(own.items()))
        return build

    def checksum(self, version: Mapping[str, Any], note: Any) -> tuple[dict[str, str] | None, str | None]:
        """The catalog's checksum field for a version, and the OSISM checksum it cannot take (quoted)."""
        given = version.get('checksum')
        urls = [key for key in ('checksums_url', 'checksum_url') if key in version]
        if given is not None:
            algorithm, digest = given.split(':', 1)
            if CHECKSUM_ALGORITHMS.get(algorithm.lower()) == len(digest):
                for key in urls:
                    note(key, 'not carried over: the catalog takes one checksum, and checksum is carried')
                return {'checksum': f'{algorithm.lower()}:{digest.lower()}'}, None
        if len(urls) == 2:
            note(
                'checksum_url',
                'not carried over: OSISM takes only one of checksums_url and checksum_url, '
                'and checksums_url is carried',
            )
        rejected = quote(given) if given is not None else None
        # The catalog's checksum_url takes both: a listing searched for the source's file name, or one digest.
        return ({'checksum_url': version[urls[0]]} if urls else None), rejected

    def properties(
        self, index: int, item: str, field: str, meta: Mapping[str, Any], line: int | None = None
    ) -> dict[str, Any]:
        carried = {}
        for key, value in sorted(meta.items()):
            why = _reserved(key)
            if value is None:
                why = 'null: a property needs a value'
            if why:
                self.note(index, item, f'{field}.{key}', f'not carried over: {why}', line=line)
            else:
                carried[key] = value
        return carried

    def check_order(self, index: int, item: str, versions: list[dict[str, Any]]) -> None:
        """OSISM ranks versions in natural order; the catalog by release date, else by text."""
        osism = sorted((version['version'] for version in versions), key=_natural, reverse=True)
        if all('released' in version for version in versions):
            ranked = sorted(versions, key=lambda version: (version['released'], version['version']), reverse=True)
            catalog = [version['version'] for version in ranked]
            how = 'by build_date'
        else:
            catalog = sorted((version['version'] for version in versions), reverse=True)
            how = 'as text'
        if osism != catalog:
            self.note(
                index,
                item,
                'versions',
                f'order differs: OSISM ranks the versions {", ".join(osism)} (natural order), the catalog '
                f'{", ".join(catalog)} ({how}); give every version a build_date, or versions that sort as text',
            )

    def where(self, index: int, item: str) -> str:
        line = self.lines.image(index)
        return f'{item} at {self.path}:{line}' if line else f'{item} in {self.path}'

    def problem(self, index: int, item: str, field: str | None, message: str) -> None:
        line = self.lines.image(index)
        match = re.match(r'versions\[([0-9]+)\]', field or '')
        if match:
            line = self.lines.version(index, int(match.group(1))) or line
        self.problems.append(Problem(self.path, message, line, item, field))

    def note(self, index: int | None, item: str | None, field: str, why: str, line: int | None = None) -> None:
        if line is None and index is not None:
            line = self.lines.image(index)
        self.notes.append(Problem(self.path, why, line, item, field))


class _Lenient(Validator):
    """OSISM's value checks, with messages that say what is expected. Fields the importer
    does not know are reported as notes, not errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault('allow_unknown', True)
        super().__init__(*args, **kwargs)

    def _check(self, field: str, value: Any, pattern: re.Pattern[str], expected: str) -> None:
        if isinstance(value, str) and not pattern.fullmatch(value):
            self._error(field, f'must be {expected}, got {quote(value, QUOTE_LIMIT)}')

    def _check_with_source_url(self, field: str, value: Any) -> None:
        self._check(field, value, _URL, 'an http(s) or ftp(s) URL, or a file: URL')

    def _check_with_http_url(self, field: str, value: Any) -> None:
        self._check(field, value, _HTTP_URL, 'an http(s) URL')

    def _check_with_checksum(self, field: str, value: Any) -> None:
        self._check(field, value, _CHECKSUM, '<algorithm>:<hex digest> with 32, 40, 64 or 128 lower-case hex digits')

    def _check_with_uuid(self, field: str, value: Any) -> None:
        self._check(field, value, _UUID, 'a lower-case UUID (8-4-4-4-12 hex digits)')


def _item(image: Any, index: int) -> str:
    name = image.get('name') if isinstance(image, Mapping) else None
    return f"image '{name}' (images[{index}])" if isinstance(name, str) and name else f'images[{index}]'


def _compact(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None and value != [] and value != {}}


def _series_id(image: Mapping[str, Any]) -> str:
    """OSISM's shortname, else the name in lower case with runs of other characters than
    letters, digits, '.' and '_' as '-'."""
    return image.get('shortname') or _SLUG.sub('-', image['name'].lower()).strip('-') or 'image'


def _keep_last(image: Mapping[str, Any]) -> int | None:
    """OSISM deletes a multi image's outdated builds beyond `uuid_validity: last-N` (never with
    `keep: true`); the catalog's keep_last does the same."""
    if image.get('keep'):
        return None
    match = _UUID_VALIDITY.match(str((image.get('meta') or {}).get('uuid_validity', '')))
    return int(match.group(1)) if match and int(match.group(1)) >= 1 else None


def _source(url: str) -> dict[str, str] | None:
    if url.startswith(('http://', 'https://')):
        return {'url': url}
    if url.startswith('file:'):
        return {'file': url[len('file://') :] if url.startswith('file://') else url[len('file:') :]}
    return None


def _day(value: str) -> str:
    text = value.strip()
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        return datetime.datetime.fromisoformat(text.replace('Z', '+00:00')).date().isoformat()


def _reserved(key: str) -> str | None:
    if key in GLANCE_ATTRIBUTES:
        return 'an image attribute of Glance, not a property'
    if key in RESERVED_PROPERTIES or key.startswith('imagegov_'):
        return 'a property the collection sets itself'
    for prefix, why in RESERVED_PROPERTY_PREFIXES:
        if key.startswith(prefix):
            return why
    return None


def _natural(version: str) -> list[Any]:
    return [(0, int(part), '') if part.isdigit() else (1, 0, part) for part in _NATURAL.split(version) if part]


def _unmanaged(version: Mapping[str, Any]) -> dict[str, Any]:
    return {
        'version': version['version'],
        **_compact(released=version.get('released'), id=version.get('id')),
        'state': ENTRY_UNMANAGED,
    }


def _kind(value: Any) -> str:
    return (
        'a list'
        if isinstance(value, list)
        else 'nothing'
        if value is None
        else f'{type(value).__name__} {quote(value)}'
    )


# History: versions that left a definition file in earlier commits.


class _GitError(Exception):
    """A git command that failed; the message is git's own."""


def _git(run: Runner, directory: str, *args: str) -> str:
    rc, out, err = run(['git', '-C', directory, *args])
    if rc != 0:
        raise _GitError((err or out).strip() or f'git exited with status {rc}')
    return out


def _history(path: str, run: Runner, notes: list[Problem], problems: list[Problem]) -> list[tuple[str, Any]]:
    """(commit, data) of each committed state of ``path`` (followed across renames), newest first."""
    try:
        top = _git(run, os.path.dirname(os.path.realpath(path)), 'rev-parse', '--show-toplevel').strip()
        relative = os.path.relpath(os.path.realpath(path), os.path.realpath(top))
        log = _git(run, top, 'log', '--follow', '--format=%x00%H', '--name-only', '--', relative)
    except _GitError as exc:
        problems.append(Problem(path, f'history: not read from git: {exc}'))
        return []
    states = []
    for block in log.split('\0')[1:]:
        commit, *names = [line for line in block.splitlines() if line.strip()]
        if not names:
            continue
        try:
            data, _lines = catalog_source.parse(_git(run, top, 'show', f'{commit}:{names[0]}'))
        except (_GitError, catalog_source.YamlSourceError) as exc:
            notes.append(Problem(path, f'history: commit {commit[:12]} ({names[0]}) skipped: {exc}'))
            continue
        states.append((commit, data))
    return states


def _past_versions(states: list[tuple[str, Any]], name: str) -> list[dict[str, Any]]:
    """Versions of image ``name`` in earlier commits (the newest commit's record of each),
    newest version first (natural order); only what identifies a build is kept."""
    found: dict[str, dict[str, Any]] = {}
    for _commit, data in states:
        images = data.get('images') if isinstance(data, Mapping) else None
        for image in images if isinstance(images, list) else []:
            if not isinstance(image, Mapping) or image.get('name') != name:
                continue
            for version in image.get('versions') or []:
                key = version.get('version') if isinstance(version, Mapping) else None
                if isinstance(key, str) and key and key not in found:
                    record: dict[str, Any] = {'version': key}
                    with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
                        record['released'] = _day(version['build_date'])
                    if isinstance(version.get('id'), str) and _UUID.fullmatch(version['id']):
                        record['id'] = version['id']
                    found[key] = record
    return sorted(found.values(), key=lambda record: _natural(record['version']), reverse=True)
