# PRIVATE to the collection: not a public API.
"""The loaded catalog: plain dataclasses, one CatalogImage per single image and per series build."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional


@dataclasses.dataclass
class Origin:
    """Where an image was declared: the catalog file (as it was named) and the line of its entry."""

    file: str
    line: Optional[int] = None

    def __str__(self) -> str:
        return self.file if self.line is None else '%s:%d' % (self.file, self.line)

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CatalogImage:
    """One Glance image the catalog wants; `source` is {'file': absolute path} or {'url': url}."""

    name: str
    source: Dict[str, str]
    sha256: str
    disk_format: str
    container_format: str
    min_disk: int
    min_ram: int
    properties: Dict[str, str]
    tags: List[str]
    visibility: str
    protected: bool
    hidden: bool
    members: List[str]
    origin: Origin
    series: Optional[str] = None
    version: Optional[str] = None
    released: Optional[str] = None
    rank: Optional[int] = None
    desired_state: str = 'active'
    deactivate_after_seconds: Optional[int] = None
    delete_after_seconds: Optional[int] = None

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CatalogSeries:
    """A series summarised: its builds newest first and what happens to the older ones."""

    series: str
    name: str
    keep: int
    hide: bool
    deactivate_after: Optional[str]
    deactivate_after_seconds: Optional[int]
    delete_after: Optional[str]
    delete_after_seconds: Optional[int]
    order: str
    versions: List[str]
    images: List[str]
    origin: Origin

    @property
    def active(self) -> List[str]:
        """Names of the builds that stay visible and active (the newest `keep`)."""
        return self.images[:self.keep]

    @property
    def retired(self) -> List[str]:
        return self.images[self.keep:]

    def as_dict(self) -> Dict[str, Any]:
        return dict(dataclasses.asdict(self), active=self.active, retired=self.retired)


@dataclasses.dataclass
class Catalog:
    """Every image of the catalog in load order (series builds newest first), and the series."""

    images: List[CatalogImage]
    series: List[CatalogSeries]
    sources: List[str]

    def image(self, name: str) -> Optional[CatalogImage]:
        for image in self.images:
            if image.name == name:
                return image
        return None

    def get_series(self, series: str) -> Optional[CatalogSeries]:
        for entry in self.series:
            if entry.series == series:
                return entry
        return None

    @property
    def names(self) -> List[str]:
        return [image.name for image in self.images]

    def as_dict(self) -> Dict[str, Any]:
        return {
            'images': [image.as_dict() for image in self.images],
            'series': [series.as_dict() for series in self.series],
            'sources': list(self.sources),
        }
