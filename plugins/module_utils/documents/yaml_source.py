# PRIVATE to the collection: not a public API.
"""YAML reading for the collection's documents: safe, strict about duplicate keys, dates kept
as text, and the lines of items so that problems can name them."""

from __future__ import annotations

from typing import Any

from ._libs import yaml

_BASE_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader) if yaml else object


class _StrictLoader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """A duplicated key silently overrides the first in plain YAML; in a policy that hides a
    rule, in a catalog an image."""

    # Dates stay text: the schemas parse them, so '2025-13-45' is reported as a bad date in
    # its field instead of crashing the YAML constructor.
    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != 'tag:yaml.org,2002:timestamp']
        for first, resolvers in getattr(_BASE_LOADER, 'yaml_implicit_resolvers', {}).items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen = set()
        for key_node, _value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        'while constructing a mapping',
                        node.start_mark,
                        f"found duplicate key '{key_node.value}'",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


class YamlSourceError(Exception):
    """A file that is not readable YAML; the message says where."""


def parse(text: str) -> tuple[Any, Any]:
    """(data, root node): the node gives the lines of keys and items (see item_lines)."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise YamlSourceError(_describe(exc)) from exc
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise YamlSourceError(f'invalid YAML: {exc}') from exc
    finally:
        loader.dispose()
    return data, node


def read_text(path: str) -> str:
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlSourceError(f'cannot read: {exc}') from exc


def error_line(exc: BaseException) -> int | None:
    """The 1-based line a YamlSourceError names, if any."""
    cause = exc.__cause__
    mark = getattr(cause, 'problem_mark', None) or getattr(cause, 'context_mark', None)
    return mark.line + 1 if mark is not None else None


def key_lines(node: Any) -> dict[str, int]:
    """The 1-based line of each key of a mapping node."""
    if yaml is None or not isinstance(node, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _value in node.value if isinstance(key, yaml.ScalarNode)}


def value_node(node: Any, key: str) -> Any:
    """The node of ``key``'s value in a mapping node, or None."""
    if yaml is not None and isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value
    return None


def item_lines(node: Any, key: str | None = None) -> list[int]:
    """The 1-based line of each item of a sequence: ``node`` itself, or its ``key`` value."""
    sequence = node if key is None else value_node(node, key)
    if yaml is None or not isinstance(sequence, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in sequence.value]


def _describe(exc: yaml.MarkedYAMLError) -> str:
    mark: Any | None = exc.problem_mark or exc.context_mark
    where = f' at line {mark.line + 1}, column {mark.column + 1}' if mark else ''
    return f'invalid YAML{where}: {exc.problem or exc.context or "syntax error"}'
