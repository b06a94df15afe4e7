# PRIVATE to the collection: not a public API.
"""Catalog YAML: the policy engine's strict reader, plus the lines of images and their versions."""

from __future__ import annotations

from typing import Any

from ..policy import yaml_source
from ..policy._libs import yaml

YamlSourceError = yaml_source.YamlSourceError
read_text = yaml_source.read_text

_COMPOSER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader) if yaml else None


class SourceLines:
    """1-based lines of a catalog document: its top-level keys, `images` items, their `versions` items."""

    __slots__ = ('keys', 'images', 'versions')

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.images: list[int] = []
        self.versions: dict[int, list[int]] = {}

    def image(self, index: int) -> int | None:
        return self.images[index] if index < len(self.images) else None

    def version(self, index: int, version_index: int) -> int | None:
        lines = self.versions.get(index, [])
        return lines[version_index] if version_index < len(lines) else None


def parse(text: str) -> tuple[Any, SourceLines]:
    """Strict parse (duplicate keys are errors, dates stay text) and item lines.

    Raises YamlSourceError; `yaml_error_line(exc)` gives the line it names.
    """
    data, _policy_lines = yaml_source.parse(text)
    # yaml_source only records lines of `rules` / `exceptions`; a second, cheap compose
    # pass of the same (already valid) text finds those of `images` and `versions`.
    return data, _lines(yaml.compose(text, Loader=_COMPOSER))


def yaml_error_line(exc: BaseException) -> int | None:
    cause = exc.__cause__
    mark = getattr(cause, 'problem_mark', None) or getattr(cause, 'context_mark', None)
    return mark.line + 1 if mark is not None else None


def _lines(node: Any) -> SourceLines:
    lines = SourceLines()
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        lines.keys[key_node.value] = key_node.start_mark.line + 1
        if key_node.value == 'images' and isinstance(value_node, yaml.SequenceNode):
            for index, item in enumerate(value_node.value):
                lines.images.append(item.start_mark.line + 1)
                versions = _mapping_value(item, 'versions')
                if isinstance(versions, yaml.SequenceNode):
                    lines.versions[index] = [entry.start_mark.line + 1 for entry in versions.value]
    return lines


def _mapping_value(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node
    return None
