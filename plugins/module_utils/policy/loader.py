# PRIVATE to the collection: not a public API.
"""Load policy files: validate everything, report every problem, compile what evaluation needs."""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import yaml_source
from ._libs import missing_libraries
from .constants import DEFAULT_MODE, DEFAULT_SEVERITY
from .errors import PolicyError, PolicyProblem
from .messages import COMMON_PLACEHOLDERS, template_problems
from .policy import Policy
from .rules import RULE_TYPES, Rule
from .schema import EXCEPTION_SCHEMA, POLICY_SCHEMA, RULE_SCHEMA
from .scope import Scope
from .validation import parse_date, validate
from .values import quote
from .waivers import Waiver

PathLike = Union[str, 'os.PathLike[str]']
POLICY_SUFFIXES = ('.yml', '.yaml')

# <collection root>/policies/default.yml; exists where the collection is installed
# (controller side), not inside a module shipped to a target host.
DEFAULT_POLICY_PATH = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'policies', 'default.yml'))


def load_policy(paths: Union[PathLike, Sequence[PathLike], None] = None) -> Policy:
    """Load and merge policy files and directories of *.yml / *.yaml (the default policy if None).

    Raises PolicyError listing every problem found in every file.
    """
    _require_libraries()
    if paths is None:
        paths = [DEFAULT_POLICY_PATH]
    elif isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    problems: List[PolicyProblem] = []
    texts: List[Tuple[str, str]] = []
    for path in _policy_files([os.fspath(item) for item in paths], problems):
        try:
            texts.append((path, yaml_source.read_text(path)))
        except yaml_source.YamlSourceError as exc:
            problems.append(PolicyProblem(path, str(exc)))
    return _load_texts(texts, problems)


def load_default_policy() -> Policy:
    return load_policy([DEFAULT_POLICY_PATH])


def load_policy_documents(documents: Iterable[Tuple[str, Any]]) -> Policy:
    """Build a policy from already parsed documents: (source name, data) pairs.

    For callers that read the YAML elsewhere, e.g. an action plugin on the
    controller passing policy content to a module.
    """
    _require_libraries()
    return _build([(source, data, {}) for source, data in documents], [])


def load_policy_text(text: str, source: str = '<policy>') -> Policy:
    return load_policy_texts([(source, text)])


def load_policy_texts(texts: Iterable[Tuple[str, str]]) -> Policy:
    """Build a policy from (source name, YAML text) pairs, e.g. files an action plugin read
    on the controller for a module; errors still name the source file and line."""
    _require_libraries()
    return _load_texts(texts, [])


def _load_texts(texts: Iterable[Tuple[str, str]], problems: List[PolicyProblem]) -> Policy:
    """A source that cannot be parsed is one more problem; every other one is still checked."""
    documents: List[Tuple[str, Any, yaml_source.ItemLines]] = []
    for source, text in texts:
        try:
            data, lines = yaml_source.parse(text)
        except yaml_source.YamlSourceError as exc:
            problems.append(PolicyProblem(source, str(exc)))
            continue
        documents.append((source, data, lines))
    return _build(documents, problems)


def policy_files(paths: Sequence[PathLike]) -> List[str]:
    """The policy files that paths (files, directories of *.yml / *.yaml) name, in load order."""
    problems: List[PolicyProblem] = []
    files = _policy_files([os.fspath(path) for path in paths], problems)
    if problems:
        raise PolicyError(problems)
    return files


def _policy_files(paths: Sequence[str], problems: List[PolicyProblem]) -> List[str]:
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(name for name in os.listdir(path)
                           if name.endswith(POLICY_SUFFIXES) and os.path.isfile(os.path.join(path, name)))
            if not found:
                problems.append(PolicyProblem(path, 'no *.yml or *.yaml policy files in this directory'))
            files.extend(os.path.join(path, name) for name in found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            problems.append(PolicyProblem(path, 'no such policy file or directory'))
    return files


class _Item:
    """A rule or exception entry while loading: where it is, for messages."""

    __slots__ = ('source', 'section', 'index', 'data', 'line')

    def __init__(self, source: str, section: str, index: int, data: Any, line: Optional[int]) -> None:
        self.source = source
        self.section = section
        self.index = index
        self.data = data
        self.line = line

    @property
    def item_id(self) -> Optional[str]:
        item_id = self.data.get('id') if isinstance(self.data, Mapping) else None
        return item_id if isinstance(item_id, str) and item_id else None

    @property
    def label(self) -> str:
        position = '%s[%d]' % (self.section, self.index)
        if self.item_id is None:
            return position
        noun = 'rule' if self.section == 'rules' else 'exception'
        return '%s %s (%s)' % (noun, quote(self.item_id), position)

    def problem(self, field: Optional[str], message: str) -> PolicyProblem:
        return PolicyProblem(self.source, message, item=self.label, field=field or None)


def _build(documents: Sequence[Tuple[str, Any, yaml_source.ItemLines]],
           problems: List[PolicyProblem]) -> Policy:
    rule_items: List[Tuple[_Item, Mapping[str, Any]]] = []
    waiver_items: List[_Item] = []
    for source, data, lines in documents:
        defaults = _check_document(source, data, problems)
        if defaults is None:
            continue
        for section in ('rules', 'exceptions'):
            entries = data.get(section)
            if not isinstance(entries, list):
                continue
            for index, entry in enumerate(entries):
                line_numbers = lines.get(section, [])
                item = _Item(source, section, index, entry,
                             line_numbers[index] if index < len(line_numbers) else None)
                if section == 'rules':
                    rule_items.append((item, defaults))
                else:
                    waiver_items.append(item)

    rules = [rule for rule in (_compile_rule(item, defaults, problems) for item, defaults in rule_items) if rule]
    known_ids = _check_unique([item for item, _body in rule_items], problems)
    _check_unique(waiver_items, problems)
    waivers = [waiver for waiver in (_compile_waiver(item, known_ids, problems) for item in waiver_items) if waiver]
    if problems:
        raise PolicyError(problems)
    return Policy(rules, waivers, sources=[document[0] for document in documents])


def _check_document(source: str, data: Any, problems: List[PolicyProblem]) -> Optional[Mapping[str, Any]]:
    """Top-level checks; returns the file's rule defaults, or None if the file is unusable."""
    if not isinstance(data, Mapping):
        problems.append(PolicyProblem(
            source, 'must be a mapping with version and rules, got %s' % _kind(data)))
        return None
    found = validate(data, POLICY_SCHEMA)[1]
    problems.extend(PolicyProblem(source, message, field=path) for path, message in found)
    defaults = data.get('defaults')
    if not isinstance(defaults, Mapping) or any(path.startswith('defaults') for path, _message in found):
        defaults = {}
    return defaults


def _compile_rule(item: _Item, defaults: Mapping[str, Any], problems: List[PolicyProblem]) -> Optional[Rule]:
    if not isinstance(item.data, Mapping):
        problems.append(item.problem(None, 'must be a mapping, got %s' % _kind(item.data)))
        return None
    doc, found = validate(item.data, RULE_SCHEMA)
    rule_cls = RULE_TYPES.get(doc.get('type')) if isinstance(doc.get('type'), str) else None
    params: Dict[str, Any] = {}
    if rule_cls is not None:
        raw_params = doc.get('params') if isinstance(doc.get('params'), Mapping) else {}
        params, param_found = validate(raw_params or {}, rule_cls.params_schema, prefix=('params',))
        found.extend(param_found)
        if not param_found:
            found.extend(('params' + ('.' + field if field else ''), message)
                         for field, message in rule_cls.check_params(params))
        if isinstance(doc.get('message'), str):
            allowed = COMMON_PLACEHOLDERS + rule_cls.placeholders
            found.extend(('message', message) for message in template_problems(doc['message'], allowed))
    problems.extend(item.problem(path, message) for path, message in found)
    if found or rule_cls is None:
        return None
    return rule_cls(
        doc['id'], params,
        description=doc.get('description', ''),
        severity=doc.get('severity') or defaults.get('severity') or DEFAULT_SEVERITY,
        mode=doc.get('mode') or defaults.get('mode') or DEFAULT_MODE,
        actions=frozenset(doc['actions']) if doc.get('actions') else None,
        scope=_rule_scope(doc.get('match')),
        message=doc.get('message'),
        source=item.source,
        line=item.line,
    )


def _compile_waiver(item: _Item, known_rule_ids: Mapping[str, _Item],
                    problems: List[PolicyProblem]) -> Optional[Waiver]:
    if not isinstance(item.data, Mapping):
        problems.append(item.problem(None, 'must be a mapping, got %s' % _kind(item.data)))
        return None
    doc, found = validate(item.data, EXCEPTION_SCHEMA)
    rule_ids = doc.get('rules') if isinstance(doc.get('rules'), list) else []
    for index, rule_id in enumerate(rule_ids):
        if isinstance(rule_id, str) and rule_id and rule_id not in known_rule_ids:
            found.append(('rules[%d]' % index, 'unknown rule id %s; known rule ids: %s' % (
                quote(rule_id), ', '.join(sorted(known_rule_ids)) or 'none')))
    problems.extend(item.problem(path, message) for path, message in found)
    if found:
        return None
    expires_at = parse_date(doc['expires'])
    if expires_at is None:  # the schema's isodate check makes this unreachable
        raise AssertionError('unchecked expiry date %r' % doc['expires'])
    return Waiver(doc['id'], frozenset(rule_ids), Scope(doc.get('match')), doc['reason'], doc['owner'],
                  doc['expires'], expires_at, source=item.source, line=item.line)


def _rule_scope(match: Any) -> Optional[Scope]:
    scope = Scope(match)
    return None if scope.is_universal else scope  # most rules: skip matching entirely


def _check_unique(items: Sequence[_Item], problems: List[PolicyProblem]) -> Dict[str, _Item]:
    """Report duplicate ids across all files; returns the first item of each id."""
    first: Dict[str, _Item] = {}
    for item in items:
        item_id = item.item_id
        if item_id is None:
            continue
        if item_id in first:
            earlier = first[item_id]
            noun = 'rule' if item.section == 'rules' else 'exception'
            problems.append(item.problem('id', 'duplicate %s id %s; first defined in %s (%s[%d])' % (
                noun, quote(item_id), earlier.source, earlier.section, earlier.index)))
        else:
            first[item_id] = item
    return first


def _kind(value: Any) -> str:
    if value is None:
        return 'an empty document'
    if isinstance(value, (str, int, float, bool)):
        return quote(value)
    return 'a %s' % type(value).__name__


def _require_libraries() -> None:
    missing = missing_libraries()
    if missing:
        raise PolicyError([PolicyProblem(
            '<policy engine>', f"needs the Python libraries {', '.join(missing)} on the host that "
            f"evaluates the policy: pip install {' '.join(missing)} (see requirements.txt)")])
