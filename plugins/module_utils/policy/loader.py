# PRIVATE to the collection: not a public API.
"""Load policy files: validate everything, report every problem, compile what evaluation needs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from ..documents import yaml_source
from ..documents.files import directory_files, yaml_files
from ._libs import missing_libraries
from .constants import DEFAULT_MODE, DEFAULT_SEVERITY
from .errors import PolicyError, PolicyProblem
from .messages import COMMON_PLACEHOLDERS, template_problems
from .policy import Policy
from .rules import RULE_TYPES, Rule
from .schema import (
    BASE_POLICY_SCHEMA,
    BASE_RULE_SCHEMA,
    EXCEPTION_SCHEMA,
    EXCEPTION_SOURCE_SCHEMA,
    POLICY_SCHEMA,
    RULE_SCHEMA,
)
from .scope import Scope
from .validation import parse_date, validate
from .values import quote
from .waivers import Waiver

PathLike: TypeAlias = 'str | os.PathLike[str]'

# Layers of a policy. The base (IMAGEGOV_BASE_POLICY, pinned by the organisation) may lock
# rules; the exceptions layer is the files its exception_sources name, the only exceptions
# that may waive locked rules; the overlay (option policy, IMAGEGOV_POLICY) adds rules and
# exceptions and may redefine unlocked base rules. Without a base, every file is overlay.
BASE_POLICY_ENV = 'IMAGEGOV_BASE_POLICY'
BASE_LAYER = 'base'
EXCEPTIONS_LAYER = 'exceptions'
OVERLAY_LAYER = 'overlay'
LAYERS = (BASE_LAYER, EXCEPTIONS_LAYER, OVERLAY_LAYER)
# (source name, YAML text, layer)
LayeredText = tuple[str, str, str]

# <collection root>/policies/default.yml; exists where the collection is installed
# (controller side), not inside a module shipped to a target host.
DEFAULT_POLICY_PATH = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'policies', 'default.yml')
)


def load_policy(paths: PathLike | Sequence[PathLike] | None = None) -> Policy:
    """Load and merge policy files and directories of *.yml / *.yaml (the default policy if None).

    Raises PolicyError listing every problem found in every file.
    """
    _require_libraries()
    if paths is None:
        paths = [DEFAULT_POLICY_PATH]
    elif isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    problems: list[PolicyProblem] = []
    texts = _read_layers([], paths, problems)
    return _load_texts(texts, problems)


def load_layered_policy(base: Sequence[PathLike], overlay: Sequence[PathLike] = ()) -> Policy:
    """Load a base policy, the exception sources it names, and an overlay of files on top.

    Raises PolicyError listing every problem found in every file.
    """
    _require_libraries()
    problems: list[PolicyProblem] = []
    texts = _read_layers(base, overlay, problems)
    return _load_texts(texts, problems)


def read_policy_layers(base: Sequence[PathLike], overlay: Sequence[PathLike] = ()) -> list[LayeredText]:
    """The texts of a layered policy, in load order: the base files, the files their
    exception_sources name, the overlay files. For a caller that sends them elsewhere
    (an action plugin to its module); load_layered_texts() validates them.

    Raises PolicyError for files that are missing or cannot be read.
    """
    _require_libraries()
    problems: list[PolicyProblem] = []
    texts = _read_layers(base, overlay, problems)
    if problems:
        raise PolicyError(problems)
    return texts


def load_default_policy() -> Policy:
    return load_policy([DEFAULT_POLICY_PATH])


def load_policy_documents(documents: Iterable[tuple[str, Any]]) -> Policy:
    """Build a policy from already parsed documents: (source name, data) pairs.

    For callers that read the YAML elsewhere, e.g. an action plugin on the
    controller passing policy content to a module.
    """
    _require_libraries()
    return _build([(source, data, {}, OVERLAY_LAYER) for source, data in documents], [])


def load_policy_text(text: str, source: str = '<policy>') -> Policy:
    return load_policy_texts([(source, text)])


def load_policy_texts(texts: Iterable[tuple[str, str]]) -> Policy:
    """Build a policy from (source name, YAML text) pairs, e.g. files an action plugin read
    on the controller for a module; errors still name the source file and line."""
    _require_libraries()
    return _load_texts([(source, text, OVERLAY_LAYER) for source, text in texts], [])


def load_layered_texts(texts: Iterable[LayeredText]) -> Policy:
    """Build a layered policy from (source name, YAML text, layer) triples, layer one of
    LAYERS, e.g. what read_policy_layers() read on the controller for a module.

    An exceptions-layer source must lie in the exception_sources of a base source.
    """
    _require_libraries()
    return _load_texts(texts, [])


def _load_texts(texts: Iterable[LayeredText], problems: list[PolicyProblem]) -> Policy:
    """A source that cannot be parsed is one more problem; every other one is still checked."""
    documents: list[_Document] = []
    for source, text, layer in texts:
        try:
            data, node = yaml_source.parse(text)
        except yaml_source.YamlSourceError as exc:
            problems.append(PolicyProblem(source, str(exc)))
            continue
        lines = {section: yaml_source.item_lines(node, section) for section in ('rules', 'exceptions')}
        documents.append((source, data, lines, layer))
    return _build(documents, problems)


def policy_files(paths: Sequence[PathLike]) -> list[str]:
    """The policy files that paths (files, directories of *.yml / *.yaml) name, in load order."""
    files, problems = yaml_files(paths, 'policy', PolicyProblem)
    if problems:
        raise PolicyError(problems)
    return files


def _policy_files(paths: Sequence[str], problems: list[PolicyProblem]) -> list[str]:
    files, missing = yaml_files(paths, 'policy', PolicyProblem)
    problems.extend(missing)
    return files


def _read_layers(
    base: PathLike | Sequence[PathLike], overlay: PathLike | Sequence[PathLike], problems: list[PolicyProblem]
) -> list[LayeredText]:
    base_texts = _read_files(_policy_files(_fspaths(base), problems), BASE_LAYER, problems)
    exception_files: list[str] = []
    for source, text, _layer in base_texts:
        try:
            data = yaml_source.parse(text)[0]
        except yaml_source.YamlSourceError:
            continue  # reported when the texts are loaded
        for field, path in _exception_sources(source, data):
            if os.path.isdir(path):
                # An empty directory is a base policy that grants no exception at present.
                found = directory_files(path)
            elif os.path.isfile(path):
                found = [path]
            else:
                problems.append(
                    PolicyProblem(
                        source,
                        f'no such file or directory: {path} (relative paths are taken from the directory of this file)',
                        field=field,
                    )
                )
                found = []
            exception_files += [name for name in found if name not in exception_files]
    # A base directory may hold the exception source its policy names: read it only as one.
    named = {os.path.abspath(name) for name in exception_files}
    base_texts = [text for text in base_texts if os.path.abspath(text[0]) not in named]
    return (
        base_texts
        + _read_files(exception_files, EXCEPTIONS_LAYER, problems)
        + _read_files(_policy_files(_fspaths(overlay), problems), OVERLAY_LAYER, problems)
    )


def _fspaths(paths: PathLike | Sequence[PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [os.fspath(path) for path in paths]


def _read_files(paths: Sequence[str], layer: str, problems: list[PolicyProblem]) -> list[LayeredText]:
    texts: list[LayeredText] = []
    for path in paths:
        try:
            texts.append((path, yaml_source.read_text(path), layer))
        except yaml_source.YamlSourceError as exc:
            problems.append(PolicyProblem(path, str(exc)))
    return texts


def _exception_sources(source: str, data: Any) -> list[tuple[str, str]]:
    """(field, path) of each exception source a base document names, relative to its directory."""
    entries = data.get('exception_sources') if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        return []
    directory = os.path.dirname(source)
    return [
        (f'exception_sources[{index}]', os.path.normpath(os.path.join(directory, os.path.expanduser(entry))))
        for index, entry in enumerate(entries)
        if isinstance(entry, str) and entry
    ]


def _within(path: str, sources: Sequence[str]) -> bool:
    path = os.path.abspath(path)
    return any(
        path == source or path.startswith(source.rstrip(os.sep) + os.sep)
        for source in (os.path.abspath(item) for item in sources)
    )


# (source name, parsed data, item lines, layer)
_Document = tuple[str, Any, dict[str, list[int]], str]

# Top-level keys a layer may not have: what to do instead.
_MISPLACED_KEYS: dict[str, dict[str, str]] = {
    BASE_LAYER: {},
    OVERLAY_LAYER: {
        'exception_sources': f'exception_sources are read only from the base policy ({BASE_POLICY_ENV}); remove the '
        'field from this file',
    },
    EXCEPTIONS_LAYER: {
        key: 'an exception source (named by exception_sources of the base policy) holds only version '
        f'and exceptions; {advice}'
        for key, advice in (
            ('rules', 'move these rules to the base policy or an overlay'),
            ('defaults', 'remove defaults (they apply to rules of their own file)'),
            ('exception_sources', 'only the base policy names exception_sources'),
        )
    },
}
_DOCUMENT_SCHEMAS = {
    BASE_LAYER: BASE_POLICY_SCHEMA,
    EXCEPTIONS_LAYER: EXCEPTION_SOURCE_SCHEMA,
    OVERLAY_LAYER: POLICY_SCHEMA,
}


@dataclasses.dataclass
class _Item:
    """A rule or exception entry while loading: where it is, for messages."""

    source: str
    section: str
    index: int
    data: Any
    line: int | None
    layer: str = OVERLAY_LAYER

    @property
    def locked(self) -> bool:
        return self.layer == BASE_LAYER and isinstance(self.data, Mapping) and self.data.get('locked') is True

    @property
    def position(self) -> str:
        return f'{self.section}[{self.index}]'

    @property
    def item_id(self) -> str | None:
        item_id = self.data.get('id') if isinstance(self.data, Mapping) else None
        return item_id if isinstance(item_id, str) and item_id else None

    @property
    def label(self) -> str:
        if self.item_id is None:
            return self.position
        noun = 'rule' if self.section == 'rules' else 'exception'
        return f'{noun} {quote(self.item_id)} ({self.position})'

    def problem(self, field: str | None, message: str) -> PolicyProblem:
        return PolicyProblem(self.source, message, item=self.label, field=field or None)


def _build(documents: Sequence[_Document], problems: list[PolicyProblem]) -> Policy:
    # Base rules first whatever order the caller gave: an overlay rule replaces them in place.
    documents = sorted(documents, key=lambda document: LAYERS.index(document[3]) if document[3] in LAYERS else 0)
    rule_items: list[tuple[_Item, Mapping[str, Any]]] = []
    waiver_items: list[_Item] = []
    exception_sources: list[str] = []
    for source, data, lines, layer in documents:
        if layer not in LAYERS:
            problems.append(
                PolicyProblem(
                    source, 'unknown policy layer {}; expected one of: {}'.format(quote(layer), ', '.join(LAYERS))
                )
            )
            continue
        defaults = _check_document(source, data, layer, problems)
        if defaults is None:
            continue
        if layer == BASE_LAYER:
            exception_sources.extend(path for _field, path in _exception_sources(source, data))
        for section in ('rules', 'exceptions') if layer != EXCEPTIONS_LAYER else ('exceptions',):
            entries = data.get(section)
            if not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                line_numbers = lines.get(section, [])
                item = _Item(
                    source, section, index, entry, line_numbers[index] if index < len(line_numbers) else None, layer
                )
                if section == 'rules':
                    rule_items.append((item, defaults))
                else:
                    waiver_items.append(item)
    for source, _data, _lines, layer in documents:
        if layer == EXCEPTIONS_LAYER and not _within(source, exception_sources):
            problems.append(
                PolicyProblem(
                    source,
                    'not among the exception_sources of the base policy ({}): {}'.format(
                        BASE_POLICY_ENV, ', '.join(exception_sources) or 'none'
                    ),
                )
            )

    base_items = [item for item, _defaults in rule_items if item.layer == BASE_LAYER]
    overlay_items = [item for item, _defaults in rule_items if item.layer == OVERLAY_LAYER]
    base_first = _check_unique(base_items, problems)
    compiled = [(item, _compile_rule(item, defaults, base_first, problems)) for item, defaults in rule_items]
    overlay_first = _check_unique(overlay_items, problems)
    locked_items = {rule_id: item for rule_id, item in base_first.items() if item.locked}
    for item in overlay_items:
        locked = locked_items.get(item.item_id or '')
        if locked is not None:
            problems.append(
                item.problem(
                    'id',
                    f'rule {quote(locked.item_id)} is locked by the base policy {locked.source} '
                    f'({locked.position}) and cannot be '
                    'redefined; give this rule another id',
                )
            )
    known_ids = {**base_first, **overlay_first}
    _check_unique(waiver_items, problems)
    waivers = [
        waiver
        for waiver in (
            _compile_waiver(item, known_ids, locked_items, exception_sources, problems) for item in waiver_items
        )
        if waiver
    ]
    if problems:
        raise PolicyError(problems)
    return Policy(
        _merge([rule for _item, rule in compiled if rule]), waivers, sources=[document[0] for document in documents]
    )


def _merge(rules: Sequence[Rule]) -> list[Rule]:
    """Base rules in order, each replaced in place by an overlay rule that overrides it; then the rest."""
    merged: list[Rule] = []
    position: dict[str, int] = {}
    for rule in rules:
        if rule.overrides is not None and rule.id in position:
            merged[position[rule.id]] = rule
        else:
            position.setdefault(rule.id, len(merged))
            merged.append(rule)
    return merged


def _check_document(source: str, data: Any, layer: str, problems: list[PolicyProblem]) -> Mapping[str, Any] | None:
    """Top-level checks; returns the file's rule defaults, or None if the file is unusable."""
    if not isinstance(data, Mapping):
        problems.append(
            PolicyProblem(
                source,
                'must be a mapping with version and {}, got {}'.format(
                    'exceptions' if layer == EXCEPTIONS_LAYER else 'rules', _kind(data)
                ),
            )
        )
        return None
    misplaced = _MISPLACED_KEYS[layer]
    problems.extend(PolicyProblem(source, message, field=key) for key, message in misplaced.items() if key in data)
    body = {key: value for key, value in data.items() if key not in misplaced}
    found = validate(body, _DOCUMENT_SCHEMAS[layer])[1]
    problems.extend(PolicyProblem(source, message, field=path) for path, message in found)
    defaults = data.get('defaults')
    if not isinstance(defaults, Mapping) or any(path.startswith('defaults') for path, _message in found):
        defaults = {}
    return defaults


def _compile_rule(
    item: _Item, defaults: Mapping[str, Any], base_ids: Mapping[str, _Item], problems: list[PolicyProblem]
) -> Rule | None:
    if not isinstance(item.data, Mapping):
        problems.append(item.problem(None, f'must be a mapping, got {_kind(item.data)}'))
        return None
    if item.layer == BASE_LAYER:
        doc, found = validate(item.data, BASE_RULE_SCHEMA)
    else:
        doc, found = validate({key: value for key, value in item.data.items() if key != 'locked'}, RULE_SCHEMA)
        if item.data.get('locked', False) is not False:
            found.append(
                (
                    'locked',
                    f'locked rules are declared only in the base policy ({BASE_POLICY_ENV}); remove this '
                    'field, or ask the owners of the base policy to lock the rule there',
                )
            )
    rule_cls = RULE_TYPES.get(doc.get('type')) if isinstance(doc.get('type'), str) else None
    params: dict[str, Any] = {}
    if rule_cls is not None:
        raw_params = doc.get('params') if isinstance(doc.get('params'), Mapping) else {}
        params, param_found = validate(raw_params or {}, rule_cls.params_schema, prefix=('params',))
        found.extend(param_found)
        if not param_found:
            found.extend(
                (f'params{(f".{field}" if field else "")}', message) for field, message in rule_cls.check_params(params)
            )
        if isinstance(doc.get('message'), str):
            allowed = COMMON_PLACEHOLDERS + rule_cls.placeholders
            found.extend(('message', message) for message in template_problems(doc['message'], allowed))
    problems.extend(item.problem(path, message) for path, message in found)
    if found or rule_cls is None:
        return None
    return rule_cls(
        doc['id'],
        params,
        description=doc.get('description', ''),
        severity=doc.get('severity') or defaults.get('severity') or DEFAULT_SEVERITY,
        mode=doc.get('mode') or defaults.get('mode') or DEFAULT_MODE,
        actions=frozenset(doc['actions']) if doc.get('actions') else None,
        scope=_rule_scope(doc.get('match')),
        message=doc.get('message'),
        source=item.source,
        line=item.line,
        locked=item.locked,
        overrides=base_ids[doc['id']].source if item.layer == OVERLAY_LAYER and doc['id'] in base_ids else None,
    )


def _compile_waiver(
    item: _Item,
    known_rule_ids: Mapping[str, _Item],
    locked_rules: Mapping[str, _Item],
    exception_sources: Sequence[str],
    problems: list[PolicyProblem],
) -> Waiver | None:
    if not isinstance(item.data, Mapping):
        problems.append(item.problem(None, f'must be a mapping, got {_kind(item.data)}'))
        return None
    doc, found = validate(item.data, EXCEPTION_SCHEMA)
    rule_ids = doc.get('rules') if isinstance(doc.get('rules'), list) else []
    for index, rule_id in enumerate(rule_ids):
        if not isinstance(rule_id, str) or not rule_id:
            continue
        if rule_id not in known_rule_ids:
            found.append(
                (
                    f'rules[{index}]',
                    f'unknown rule id {quote(rule_id)}; known rule ids: {", ".join(sorted(known_rule_ids)) or "none"}',
                )
            )
        elif rule_id in locked_rules and item.layer == OVERLAY_LAYER:
            sources = ', '.join(exception_sources) or 'nowhere (the base policy names no exception_sources)'
            found.append(
                (
                    f'rules[{index}]',
                    f'rule {quote(rule_id)} is locked by {locked_rules[rule_id].source}; '
                    f'exceptions to it are read only from: {sources}',
                )
            )
    problems.extend(item.problem(path, message) for path, message in found)
    if found:
        return None
    expires_at = parse_date(doc['expires'])
    if expires_at is None:  # the schema's isodate check makes this unreachable
        raise AssertionError(f'unchecked expiry date {doc["expires"]!r}')
    return Waiver(
        doc['id'],
        frozenset(rule_ids),
        Scope(doc.get('match')),
        doc['reason'],
        doc['owner'],
        doc['expires'],
        expires_at,
        source=item.source,
        line=item.line,
    )


def _rule_scope(match: Any) -> Scope | None:
    scope = Scope(match)
    return None if scope.is_universal else scope  # most rules: skip matching entirely


def _check_unique(items: Sequence[_Item], problems: list[PolicyProblem]) -> dict[str, _Item]:
    """Report duplicate ids across the items' files; returns the first item of each id."""
    first: dict[str, _Item] = {}
    for item in items:
        item_id = item.item_id
        if item_id is None:
            continue
        if item_id in first:
            earlier = first[item_id]
            noun = 'rule' if item.section == 'rules' else 'exception'
            problems.append(
                item.problem(
                    'id',
                    f'duplicate {noun} id {quote(item_id)}; first defined in '
                    f'{earlier.source} ({earlier.section}[{earlier.index}])',
                )
            )
        else:
            first[item_id] = item
    return first


def _kind(value: Any) -> str:
    if value is None:
        return 'an empty document'
    if isinstance(value, (str, int, float, bool)):
        return quote(value)
    return f'a {type(value).__name__}'


def _require_libraries() -> None:
    missing = missing_libraries()
    if missing:
        raise PolicyError(
            [
                PolicyProblem(
                    '<policy engine>',
                    f'needs the Python libraries {", ".join(missing)} on the host that '
                    f'evaluates the policy: pip install {" ".join(missing)} (see requirements.txt)',
                )
            ]
        )
