# PRIVATE to the collection: not a public API.
"""Catalog YAML: the shared strict reader, and the lines of a catalog's images and versions."""

from __future__ import annotations

from typing import Any

from ..documents import yaml_source

YamlSourceError = yaml_source.YamlSourceError
read_text = yaml_source.read_text
yaml_error_line = yaml_source.error_line


class SourceLines:
    """1-based lines of a catalog document: its top-level keys, `images` items, their `versions` items."""

    __slots__ = ('keys', 'images', 'versions')

    def __init__(self, node: Any = None) -> None:
        self.keys: dict[str, int] = yaml_source.key_lines(node)
        self.images: list[int] = yaml_source.item_lines(node, 'images')
        images = yaml_source.value_node(node, 'images')
        self.versions: dict[int, list[int]] = {
            index: yaml_source.item_lines(item, 'versions') for index, item in enumerate(getattr(images, 'value', []))
        }

    def image(self, index: int) -> int | None:
        return self.images[index] if index < len(self.images) else None

    def version(self, index: int, version_index: int) -> int | None:
        lines = self.versions.get(index, [])
        return lines[version_index] if version_index < len(lines) else None


def parse(text: str) -> tuple[Any, SourceLines]:
    """Strict parse (duplicate keys are errors, dates stay text) and item lines.

    Raises YamlSourceError; `yaml_error_line(exc)` gives the line it names.
    """
    data, node = yaml_source.parse(text)
    return data, SourceLines(node)
