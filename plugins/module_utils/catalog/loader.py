# PRIVATE to the collection: not a public API.
"""Load catalog files: validate everything, report every problem, build the Catalog model."""

from __future__ import annotations

import errno
import os
import re
import stat
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from .._redact import redact_url
from ..documents._libs import cerberus, yaml
from ..documents.files import yaml_files
from ..documents.validation import validate
from ..documents.values import quote
from . import source as catalog_source
from .checksums import parse_checksum
from .constants import (
    DEFAULT_CONTAINER_FORMAT,
    DEFAULT_HIDE,
    DEFAULT_KEEP,
    DEFAULT_VISIBILITY,
    ENTRY_PRESENT,
    ENTRY_UNMANAGED,
    STATE_ACTIVE,
    STATE_HIDDEN,
    STATE_RETIRED,
    VERSION_PLACEHOLDER,
)
from .errors import CatalogError, CatalogProblem
from .model import Catalog, CatalogImage, CatalogSeries, Origin, SelectorUse, Target
from .schema import (
    ATTRIBUTES_SCHEMA,
    CATALOG_SCHEMA,
    IMAGE_SCHEMA,
    SERIES_SCHEMA,
    VERSION_ATTRIBUTES,
    describe_kind,
    parse_duration,
    parse_released,
    property_text,
)

PathLike: TypeAlias = 'str | os.PathLike[str]'

_VERSION_FIELD = re.compile(r'^versions\[([0-9]+)\]')
_NO_LINES = catalog_source.SourceLines(None)


def load_catalog(
    paths: PathLike | Sequence[PathLike],
    check_files: bool = True,
    source_roots: Sequence[PathLike] = (),
    target: Target | None = None,
) -> Catalog:
    """Load and merge catalog files and directories of *.yml / *.yaml.

    Relative `source.file` paths are resolved against the directory of the catalog file that
    names them; with `check_files` they must exist. Every source file must resolve (symlinks
    followed) inside the catalog's repository (the nearest directory above the catalog file
    that holds `.git`, else the catalog file's directory) or inside one of `source_roots`.
    With a `target`, entries whose `targets` do not select it are left out and the `overrides`
    that select it are applied; every entry is validated whatever the target.
    Raises CatalogError listing every problem.
    """
    _require_libraries()
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files, problems = yaml_files([os.fspath(path) for path in paths], 'catalog', CatalogProblem)
    texts: list[tuple[str, str]] = []
    for path in files:
        try:
            texts.append((path, catalog_source.read_text(path)))
        except catalog_source.YamlSourceError as exc:
            problems.append(CatalogProblem(path, str(exc)))
    return _load_texts(texts, problems, _SourceFiles(check_files, source_roots), target)


def load_catalog_texts(
    texts: Iterable[tuple[str, str]],
    check_files: bool = True,
    source_roots: Sequence[PathLike] = (),
    target: Target | None = None,
) -> Catalog:
    """Build a catalog from (file name, YAML text) pairs, e.g. files read on the controller;
    problems still name the file and line, and relative source files resolve against the file's directory."""
    _require_libraries()
    return _load_texts(texts, [], _SourceFiles(check_files, source_roots), target)


def load_catalog_documents(
    documents: Iterable[tuple[str, Any]], check_files: bool = True, source_roots: Sequence[PathLike] = ()
) -> Catalog:
    """Build a catalog from already parsed (file name, data) pairs; problems then have no line."""
    _require_libraries()
    return _build([(name, data, _NO_LINES) for name, data in documents], [], _SourceFiles(check_files, source_roots))


def catalog_files(paths: Sequence[PathLike]) -> list[str]:
    """The catalog files that paths (files, directories of *.yml / *.yaml) name, in load order."""
    files, problems = yaml_files(paths, 'catalog', CatalogProblem)
    if problems:
        raise CatalogError(problems)
    return files


def _load_texts(
    texts: Iterable[tuple[str, str]], problems: list[CatalogProblem], files: _SourceFiles, target: Target | None = None
) -> Catalog:
    documents: list[tuple[str, Any, catalog_source.SourceLines]] = []
    for name, text in texts:
        try:
            data, lines = catalog_source.parse(text)
        except catalog_source.YamlSourceError as exc:
            problems.append(CatalogProblem(name, str(exc), line=catalog_source.yaml_error_line(exc)))
            continue
        documents.append((name, data, lines))
    return _build(documents, problems, files, target)


class _Defaults:
    """A file's `defaults`: the valid fields, and those that were invalid (not to be blamed twice)."""

    __slots__ = ('values', 'invalid')

    def __init__(self, values: Mapping[str, Any], invalid: set[str]) -> None:
        self.values = values
        self.invalid = invalid


class _Entry:
    """One item of `images` while loading: where it is, for messages and origins."""

    __slots__ = ('source', 'index', 'data', 'lines', 'defaults', 'problems')

    def __init__(
        self, source: str, index: int, data: Any, lines: catalog_source.SourceLines, defaults: _Defaults
    ) -> None:
        self.source = source
        self.index = index
        self.data = data
        self.lines = lines
        self.defaults = defaults
        self.problems: list[CatalogProblem] = []

    @property
    def is_series(self) -> bool:
        return isinstance(self.data, Mapping) and ('series' in self.data or 'versions' in self.data)

    @property
    def label(self) -> str:
        position = f'images[{self.index}]'
        if not isinstance(self.data, Mapping):
            return position
        key, noun = ('series', 'series') if self.is_series else ('name', 'image')
        value = self.data.get(key)
        if isinstance(value, str) and value:
            return f'{noun} {quote(value)} ({position})'
        return position

    @property
    def line(self) -> int | None:
        return self.lines.image(self.index)

    def version_line(self, version_index: int) -> int | None:
        return self.lines.version(self.index, version_index) or self.line

    def add(self, field: str | None, message: str) -> None:
        if field and field.endswith('.'):  # an empty mapping key, e.g. properties: {"": x}
            field += "''"
        match = _VERSION_FIELD.match(field or '')
        line = self.version_line(int(match.group(1))) if match else self.line
        self.problems.append(CatalogProblem(self.source, message, line=line, item=self.label, field=field or None))


class _Named:
    """An image name the catalog defines, for the uniqueness check across all files."""

    __slots__ = ('name', 'entry', 'version', 'version_index')

    def __init__(self, name: str, entry: _Entry, version: str | None = None, version_index: int | None = None) -> None:
        self.name = name
        self.entry = entry
        self.version = version
        self.version_index = version_index

    @property
    def where(self) -> str:
        line = self.entry.line if self.version_index is None else self.entry.version_line(self.version_index)
        place = self.entry.source if line is None else f'{self.entry.source}:{line}'
        return f'{self.entry.label} at {place}'


def _build(
    documents: Sequence[tuple[str, Any, catalog_source.SourceLines]],
    problems: list[CatalogProblem],
    files: _SourceFiles,
    target: Target | None = None,
) -> Catalog:
    entries: list[_Entry] = []
    for name, data, lines in documents:
        defaults = _check_document(name, data, lines, problems)
        if defaults is None:
            continue
        entries.extend(_Entry(name, index, item, lines, defaults) for index, item in enumerate(data['images']))

    images: list[CatalogImage] = []
    series: list[CatalogSeries] = []
    for entry in entries:
        built_images, built_series = _compile(entry, files, target)
        problems.extend(entry.problems)
        if not _goes_to(entry, target):
            continue
        images.extend(built_images)
        if built_series is not None:
            series.append(built_series)
    problems.extend(_check_unique(entries))
    if problems:
        raise CatalogError(problems)
    selectors = [use for entry in entries for use in _selector_uses(entry, target)] if target else []
    return Catalog(images, series, sources=[document[0] for document in documents], selectors=selectors)


def _check_document(
    name: str, data: Any, lines: catalog_source.SourceLines, problems: list[CatalogProblem]
) -> _Defaults | None:
    """Top-level checks; the file's defaults, or None if its images cannot be read."""
    if not isinstance(data, Mapping):
        problems.append(CatalogProblem(name, f'must be a mapping with version and images, got {_kind(data)}'))
        return None
    found = validate(data, CATALOG_SCHEMA)[1]
    for path, message in found:
        problems.append(CatalogProblem(name, message, line=lines.keys.get(_top(path)), field=path))
    bad = {_top(path) for path, _message in found}
    if 'version' in bad or 'images' in bad:
        return None
    raw = data.get('defaults') if isinstance(data.get('defaults'), Mapping) else {}
    invalid = {_top(path[len('defaults.') :]) for path, _message in found if path.startswith('defaults.')}
    if 'defaults' in bad and not invalid:  # defaults itself is not a mapping
        invalid = set(ATTRIBUTES_SCHEMA)
    for index in _duplicates(raw.get('members') if 'members' not in invalid else None):
        problems.append(
            CatalogProblem(
                name,
                f'duplicate member {quote(raw["members"][index])}',
                line=lines.keys.get('defaults'),
                field=f'defaults.members[{index}]',
            )
        )
    return _Defaults({key: value for key, value in raw.items() if key not in invalid}, invalid)


def _goes_to(entry: _Entry, target: Target | None) -> bool:
    """An entry without `targets` goes everywhere; without a target, every entry is loaded."""
    selector = entry.data.get('targets') if isinstance(entry.data, Mapping) else None
    return target is None or selector is None or target.matches(selector)


def _selector_uses(entry: _Entry, target: Target) -> list[SelectorUse]:
    """The entry's selectors and whether each selected this target; an override's only where
    the entry itself goes (else it applies to nothing there)."""
    data = entry.data
    origin = str(Origin(entry.source, entry.line))
    goes = _goes_to(entry, target)
    found = [SelectorUse(origin, entry.label, 'targets', dict(data['targets']), goes)] if data.get('targets') else []
    found += [
        SelectorUse(origin, entry.label, f'overrides[{i}].where', dict(o['where']), goes and target.matches(o['where']))
        for i, o in enumerate(data.get('overrides') or ())
    ]
    return found


_UNKNOWN_HOW = {
    'clouds': 'give option cloud as a clouds.yaml name',
    'regions': 'give region_name (or set it in clouds.yaml)',
    'groups': 'run it on the fleet (the reconcile playbook on the clouds inventory) or give target_groups',
}


def _check_target_known(entry: _Entry, data: Mapping[str, Any], bad: set[str], target: Target | None) -> None:
    """A selector by what this run does not know of its target would leave the entry out (and
    prune it): that is refused, naming what to give."""
    if target is None:
        return
    selectors = [('targets', data.get('targets'))] if 'targets' not in bad else []
    if 'overrides' not in bad and isinstance(data.get('overrides'), list):
        selectors += [(f'overrides[{i}].where', o.get('where')) for i, o in enumerate(data['overrides'])]
    for field, selector in selectors:
        for key in target.unknown(selector):
            entry.add(
                f'{field}.{key}',
                f"selects by {key}, but this run does not know its target's {key}: {_UNKNOWN_HOW[key]}",
            )


def _for_target(data: Mapping[str, Any], bad: set[str], target: Target | None) -> dict[str, Any]:
    """The entry as its target sees it: the overrides that select the target, in order, over
    its own fields (properties merged key by key, tags added, the rest replaced)."""
    merged = dict(data)
    if target is None or 'overrides' in bad or not isinstance(data.get('overrides'), list):
        return merged
    for override in data['overrides']:
        if not target.matches(override.get('where')):
            continue
        for key, value in override.items():
            # An explicit null undoes a conversion on the targets it selects; elsewhere it is no change.
            if key == 'where' or (value is None and key != 'convert_to'):
                continue
            if key == 'properties':
                merged[key] = dict(merged.get(key) or {}, **value)
            elif key == 'tags':
                merged[key] = sorted(set(merged.get(key) or []) | set(value))
            else:
                merged[key] = value
    return merged


def _compile(
    entry: _Entry, files: _SourceFiles, target: Target | None = None
) -> tuple[list[CatalogImage], CatalogSeries | None]:
    data = entry.data
    if not isinstance(data, Mapping):
        entry.add(None, f'must be a mapping, got {_kind(data)}')
        return [], None
    found = validate(data, SERIES_SCHEMA if entry.is_series else IMAGE_SCHEMA)[1]
    for path, message in found:
        entry.add(path, message)
    bad = {_top(path) for path, _message in found}
    _check_target_known(entry, data, bad, target)
    if not entry.problems:
        data = _for_target(data, bad, target)
    attributes = _merge_attributes(entry, bad, data)
    if not entry.is_series:
        content = _content(
            entry, '', data, {path for path, _message in found}, files, attributes['state'], attributes['convert_to']
        )
        if entry.problems:
            return [], None
        return [CatalogImage(name=data['name'], origin=Origin(entry.source, entry.line), **content, **attributes)], None
    return _compile_series(entry, data, attributes, found, files)


def _content(
    entry: _Entry,
    prefix: str,
    data: Mapping[str, Any],
    bad_paths: set[str],
    files: _SourceFiles,
    state: str,
    convert_to: Any = None,
) -> dict[str, Any]:
    """Where the bytes come from and what they must hash to: source, one checksum, a fixed id."""
    usable = {
        key
        for key in ('source', 'sha256', 'checksum', 'checksum_url', 'id')
        if data.get(key) is not None
        and not any(p == prefix + key or p.startswith(f'{prefix}{key}.') for p in bad_paths)
    }
    given = [key for key in ('sha256', 'checksum', 'checksum_url') if key in data]
    from_cloud = isinstance(data.get('source'), Mapping) and 'cloud' in data['source']
    mirrored = from_cloud and 'source' in usable
    if from_cloud:
        for key in given:
            entry.add(
                f'{prefix}{key}',
                "leave it out with source.cloud: the copy is verified by the source Glance's own hash "
                '(os_hash_value), read at every run',
            )
        given = ['source.cloud']
    if state != ENTRY_UNMANAGED:
        if 'source' not in data:
            entry.add(
                f'{prefix}source',
                'required field is missing (a file, url or cloud; only an unmanaged entry may omit it)',
            )
        if not given:
            entry.add(
                f'{prefix}sha256',
                'a checksum is required: give one of sha256, checksum (sha256:<hex> or sha512:<hex>) or checksum_url',
            )
    if mirrored and convert_to is not None:
        entry.add(f'{prefix}source.cloud', "cannot be converted (convert_to): the copy keeps the source image's format")
    if len(given) > 1:
        entry.add(f'{prefix}{given[1]}', f'give only one of sha256, checksum and checksum_url, got {", ".join(given)}')
    if mirrored:
        source = {'cloud': data['source']['cloud'], 'image': data['source']['image']}
    else:
        source = files.resolve(entry, prefix, data['source']) if 'source' in usable else None
    if 'checksum_url' in usable and source is not None:
        problem = _checksum_url_problem(data['checksum_url'], source)
        if problem:
            entry.add(f'{prefix}checksum_url', problem)
    expected: dict[str, str] = {}
    if 'sha256' in usable:
        expected = {'sha256': data['sha256'].lower()}
    elif 'checksum' in usable:
        algorithm, digest = parse_checksum(data['checksum'])
        expected = {algorithm: digest}
    return {
        'source': source,
        'sha256': expected.get('sha256'),
        'expected': expected,
        'checksum_url': data['checksum_url'] if 'checksum_url' in usable else None,
        'id': str(data['id']).lower() if 'id' in usable else None,
    }


def _checksum_url_problem(checksum_url: str, source: Mapping[str, str]) -> str | None:
    """A checksum file comes from where the image comes from: a plan (run on a pull request)
    must not fetch, and quote in its errors, a document from anywhere else."""
    if 'url' not in source:
        return 'needs a url source (a checksum file beside the image); give sha256 or checksum for a file'
    if _origin(checksum_url) != _origin(source['url']):
        return (
            f'must be on the same server as source.url ({_origin(source["url"])}), '
            f'got {quote(redact_url(checksum_url))}; give checksum instead'
        )
    return None


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f'{parts.scheme}://{parts.hostname}{"" if parts.port is None else f":{parts.port}"}'


def _merge_attributes(entry: _Entry, bad: set[str], data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The image's attributes over its file's defaults, with the cross-field checks."""
    data = entry.data if data is None else data
    defaults = entry.defaults.values
    unknown = bad | {key for key in entry.defaults.invalid if key not in entry.data}

    def pick(key: str, default: Any) -> Any:
        if key in data and data[key] is not None and key not in bad:
            return data[key]
        return defaults.get(key, default)

    unmanaged = pick('state', ENTRY_PRESENT) == ENTRY_UNMANAGED
    converted = pick('convert_to', None) is not None
    if 'disk_format' not in unknown and pick('disk_format', None) is None and not unmanaged and not converted:
        entry.add(
            'disk_format', "required field is missing (set it, or convert_to, on the image or in the file's defaults)"
        )
    visibility = pick('visibility', DEFAULT_VISIBILITY)
    members = pick('members', [])
    if members and visibility != 'shared' and not {'members', 'visibility'} & unknown:
        inherited = ' (members come from the defaults)' if 'members' not in data else ''
        entry.add('members', f"only allowed with visibility 'shared', got visibility {quote(visibility)}{inherited}")
    if 'members' in data and 'members' not in bad:
        for index in _duplicates(data['members']):
            entry.add(f'members[{index}]', f'duplicate member {quote(data["members"][index])}')
    properties = dict(defaults.get('properties') or {})
    properties.update(data.get('properties') or {} if 'properties' not in bad else {})
    tags = set(defaults.get('tags') or []) | set(data.get('tags') or [] if 'tags' not in bad else [])
    return {
        'disk_format': pick('disk_format', None),
        'convert_to': pick('convert_to', None),
        'container_format': pick('container_format', DEFAULT_CONTAINER_FORMAT),
        'min_disk': pick('min_disk', 0),
        'min_ram': pick('min_ram', 0),
        'properties': {str(key): property_text(value) for key, value in sorted(properties.items(), key=_key_text)},
        'tags': sorted(tags),
        'visibility': visibility,
        'protected': pick('protected', False),
        'hidden': pick('hidden', False),
        'members': list(members),
        'state': pick('state', ENTRY_PRESENT),
    }


def _compile_series(
    entry: _Entry,
    data: Mapping[str, Any],
    attributes: dict[str, Any],
    found: Sequence[tuple[str, str]],
    files: _SourceFiles,
) -> tuple[list[CatalogImage], CatalogSeries | None]:
    bad_paths = {path for path, _message in found}
    bad_tops = {_top(path) for path in bad_paths}
    retire = (data.get('retire') or {}) if 'retire' not in {_top(path) for path in bad_paths} else {}
    deactivate, delete = parse_duration(retire.get('deactivate_after')), parse_duration(retire.get('delete_after'))
    if deactivate is not None and delete is not None and delete <= deactivate:
        entry.add(
            'retire.delete_after',
            'must be longer than deactivate_after ({}), got {}'.format(
                retire['deactivate_after'], quote(retire['delete_after'])
            ),
        )

    versions = data.get('versions') if isinstance(data.get('versions'), list) else []
    good: list[tuple[int, Mapping[str, Any]]] = []
    first_index: dict[str, int] = {}
    for index, version in enumerate(versions):
        prefix = f'versions[{index}]'
        if not isinstance(version, Mapping) or prefix in bad_paths:
            continue
        text = version.get('version')
        if isinstance(text, str) and f'{prefix}.version' not in bad_paths:
            if text in first_index:
                entry.add(
                    f'{prefix}.version', f'duplicate version {quote(text)}; already at versions[{first_index[text]}]'
                )
            else:
                first_index[text] = index
        state = version.get('state') if f'{prefix}.state' not in bad_paths else None
        content = _content(
            entry, f'{prefix}.', version, bad_paths, files, state or attributes['state'], attributes['convert_to']
        )
        own = {
            key: version[key]
            for key in VERSION_ATTRIBUTES
            if version.get(key) is not None and not any(p.startswith(f'{prefix}.{key}') for p in bad_paths)
        }
        visibility = own.get('visibility', attributes['visibility'])
        if attributes['members'] and visibility != 'shared':
            entry.add(f'{prefix}.visibility', f"members are given, so it must be 'shared', got {quote(visibility)}")
        good.append((index, dict(version, content=content, own=own)))

    keep = data.get('keep') if 'keep' not in bad_tops and data.get('keep') is not None else DEFAULT_KEEP
    keep_last = data.get('keep_last') if 'keep_last' not in bad_tops else None
    if isinstance(keep_last, int) and keep_last < keep:
        entry.add('keep_last', f'must be at least keep ({keep}): the active builds are never deleted, got {keep_last}')
    dated = [index for index, version in good if version.get('released') is not None]
    if dated and len(dated) < len(versions):
        for index, version in good:
            if 'released' not in version:
                entry.add(
                    f'versions[{index}].released',
                    'required because other versions of this series have a release date: '
                    'give released for all versions or none',
                )
    if entry.problems:
        return [], None

    order = 'released' if dated else 'version'
    ordered = sorted(
        (version for _index, version in good),
        reverse=True,
        key=lambda version: (parse_released(version['released']), version['version']) if dated else version['version'],
    )
    update_published = bool(data.get('update_published', False))
    hide = retire.get('hide') if retire.get('hide') is not None else DEFAULT_HIDE
    template = data['name']
    line_of = {version['version']: entry.version_line(index) for index, version in good}
    images = []
    present = 0
    for rank, version in enumerate(ordered):
        # Deactivated and unmanaged builds take no place among the `keep` active ones.
        counts = (version['own'].get('state') or attributes['state']) == ENTRY_PRESENT
        kept = present < keep or not counts
        present += counts
        state = STATE_ACTIVE if kept else (STATE_HIDDEN if hide else STATE_RETIRED)
        own = version['own']
        properties = dict(attributes['properties'])
        properties.update({str(k): property_text(v) for k, v in (own.get('properties') or {}).items()})
        build = dict(
            attributes,
            hidden=True if state == STATE_HIDDEN else attributes['hidden'],
            properties=dict(sorted(properties.items())),
            tags=sorted(set(attributes['tags']) | set(own.get('tags') or [])),
            **{key: own[key] for key in ('visibility', 'min_disk', 'min_ram', 'state') if key in own},
        )
        if build['visibility'] != 'shared':
            build['members'] = []
        images.append(
            CatalogImage(
                name=template.replace(VERSION_PLACEHOLDER, version['version']),
                origin=Origin(entry.source, line_of[version['version']]),
                series=data['series'],
                version=version['version'],
                released=parse_released(version['released']) if dated else None,
                rank=rank,
                desired_state=state,
                deactivate_after_seconds=None if kept else deactivate,
                delete_after_seconds=None if kept else delete,
                alias=data.get('alias'),
                update_published=update_published,
                version_values={key: value for key, value in own.items() if key != 'state'},
                **version['content'],
                **build,
            )
        )
    summary = CatalogSeries(
        series=data['series'],
        name=template,
        keep=keep,
        hide=hide,
        deactivate_after=retire.get('deactivate_after'),
        deactivate_after_seconds=deactivate,
        delete_after=retire.get('delete_after'),
        delete_after_seconds=delete,
        order=order,
        versions=[image.version for image in images],
        images=[image.name for image in images],
        origin=Origin(entry.source, entry.line),
        alias=data.get('alias'),
        keep_last=keep_last,
        update_published=update_published,
        state=attributes['state'],
    )
    return images, summary


class _SourceFiles:
    """Where a catalog's image files may be, and the checks of each `source.file`.

    A catalog file's root is the nearest directory above it that holds `.git` (a directory, or
    the file of a worktree or submodule), else the catalog file's own directory. A source file
    must resolve (symlinks followed) inside its catalog file's root or inside a source root.
    """

    def __init__(self, check_files: bool, source_roots: Sequence[PathLike]) -> None:
        self.check_files = check_files
        self.extra_roots = tuple(os.path.realpath(os.path.abspath(os.fspath(root))) for root in source_roots)
        self._roots: dict[str, tuple[str, bool]] = {}

    def root(self, catalog_file: str) -> tuple[str, bool]:
        """(root, whether it is a Git repository) of a catalog file, resolved."""
        directory = os.path.dirname(os.path.abspath(catalog_file))
        if directory not in self._roots:
            found = directory
            while not os.path.lexists(os.path.join(found, '.git')):
                parent = os.path.dirname(found)
                if parent == found:
                    break
                found = parent
            is_repository = os.path.lexists(os.path.join(found, '.git'))
            self._roots[directory] = (os.path.realpath(found if is_repository else directory), is_repository)
        return self._roots[directory]

    def resolve(self, entry: _Entry, prefix: str, source: Mapping[str, Any]) -> dict[str, str]:
        """{'url': url} as given, or {'file': the resolved absolute path}; problems go to the entry."""
        if 'url' in source:
            return {'url': source['url']}
        given = source['file']
        field = f'{prefix}source.file'
        if '\0' in given:
            entry.add(field, 'must not contain a NUL character')
            return {'file': given}
        path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(entry.source)), given))
        real = os.path.realpath(path)
        root, is_repository = self.root(entry.source)
        if not any(_inside(real, allowed) for allowed in (root,) + self.extra_roots):
            entry.add(field, self._outside(given, real, root, is_repository))
            return {'file': real}
        if self.check_files:
            where = '' if os.path.isabs(given) else " (relative to the catalog file's directory)"
            problem = _file_problem(real, quote(given) + where)
            if problem:
                entry.add(field, problem)
        return {'file': real}

    def _outside(self, given: str, real: str, root: str, is_repository: bool) -> str:
        if os.path.isabs(given) and os.path.normpath(given) == real:
            what = f'{quote(given)} is'
        else:
            what = f'{quote(given)} resolves to {quote(real)},'
        place = 'the catalog repository' if is_repository else "the catalog file's directory"
        allowed = f'{place} {quote(root)}'
        if not is_repository:
            allowed += ' (no .git above it)'
        if self.extra_roots:
            allowed += f' and the source_roots {", ".join(quote(extra) for extra in self.extra_roots)}'
        return f'{what} outside {allowed}; move the image into {place}, or allow its directory with option source_roots'


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


_FILE_KINDS = (
    (stat.S_ISDIR, 'a directory'),
    (stat.S_ISFIFO, 'a FIFO'),
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
    (stat.S_ISSOCK, 'a socket'),
)


def _file_problem(path: str, shown: str) -> str | None:
    """None for a readable regular file, else what is wrong with it (``shown``: the file as given)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return f'no such file {shown}'
        return f'{shown} cannot be checked: {exc.strerror or exc}'
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), 'a special file')
        return f'{shown} is {kind}, not a regular file; give an image file'
    if not os.access(path, os.R_OK):
        return f'{shown} cannot be read by this user; make it readable'
    return None


def _check_unique(entries: Sequence[_Entry]) -> list[CatalogProblem]:
    """Image names across the whole catalog (series names expanded), and series ids."""
    problems: list[CatalogProblem] = []
    first_name: dict[str, _Named] = {}
    first_series: dict[str, _Entry] = {}
    for entry in entries:
        entry.problems = []  # those of _compile are reported already
        for named in _names(entry):
            earlier = first_name.setdefault(named.name, named)
            if earlier is named:
                continue
            if named.version is None:
                entry.add('name', f'duplicate image name {quote(named.name)}; already defined by {earlier.where}')
            else:
                entry.add(
                    'name',
                    f'expands to {quote(named.name)} for version {quote(named.version)} '
                    f'(versions[{named.version_index}]), a duplicate image name; '
                    f'already defined by {earlier.where}',
                )
        series = entry.data.get('series') if entry.is_series else None
        if isinstance(series, str) and series:
            earlier_entry = first_series.setdefault(series, entry)
            if earlier_entry is not entry:
                entry.add(
                    'series',
                    f'duplicate series {quote(series)}; already defined by {_Named(series, earlier_entry).where}',
                )
        problems.extend(entry.problems)
    return problems


def _names(entry: _Entry) -> list[_Named]:
    data = entry.data
    if not isinstance(data, Mapping):
        return []
    name = data.get('name')
    if not isinstance(name, str) or not name:
        return []
    if not entry.is_series:
        return [_Named(name, entry)]
    if VERSION_PLACEHOLDER not in name or not isinstance(data.get('versions'), list):
        return []
    alias = data.get('alias')
    named: list[_Named] = [_Named(alias, entry)] if isinstance(alias, str) and alias else []
    seen: set[str] = set()
    for index, version in enumerate(data['versions']):
        text = version.get('version') if isinstance(version, Mapping) else None
        if isinstance(text, str) and text.strip() and text not in seen:  # duplicates are reported already
            seen.add(text)
            named.append(_Named(name.replace(VERSION_PLACEHOLDER, text), entry, text, index))
    return named


def _duplicates(values: Any) -> list[int]:
    if not isinstance(values, list):
        return []
    seen: set[Any] = set()
    found = []
    for index, value in enumerate(values):
        if isinstance(value, str):
            if value in seen:
                found.append(index)
            seen.add(value)
    return found


def _top(path: str) -> str:
    return re.split(r'[.\[]', path, maxsplit=1)[0]


def _key_text(item: tuple[Any, Any]) -> str:
    return str(item[0])


def _kind(value: Any) -> str:
    if value is None:
        return 'an empty document'
    return describe_kind(value)


def _require_libraries() -> None:
    missing = [name for name, lib in (('cerberus', cerberus), ('PyYAML', yaml)) if lib is None]
    if missing:
        raise CatalogError(
            [
                CatalogProblem(
                    '<catalog>',
                    'needs the Python libraries {} on the host that loads the catalog: pip install {} '
                    '(see requirements.txt)'.format(', '.join(missing), ' '.join(missing)),
                )
            ]
        )
