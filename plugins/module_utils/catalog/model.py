# PRIVATE to the collection: not a public API.
"""The loaded catalog: plain dataclasses, one CatalogImage per single image and per series build."""

from __future__ import annotations

import dataclasses
from typing import Any

from .constants import CONVERT_TO_OTHER_CLOUDS


@dataclasses.dataclass
class Origin:
    """Where an image was declared: the catalog file (as it was named) and the line of its entry."""

    file: str
    line: int | None = None

    def __str__(self) -> str:
        return self.file if self.line is None else f'{self.file}:{self.line}'

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a catalog is reconciled: a cloud, its region and, on a fleet, the inventory groups
    of the host (an entry's `targets` and its `overrides`' `where` select by any of them).
    None is unknown (a cloud given as settings, no region, a run that is not on a fleet):
    selecting by an unknown dimension is an error, never a silent 'not here'."""

    cloud: str | None = None
    region: str | None = None
    groups: tuple[str, ...] | None = None

    def unknown(self, selector: Any) -> list[str]:
        """The dimensions a selector uses that this target does not know."""
        if not isinstance(selector, dict):
            return []
        known = {'clouds': self.cloud, 'regions': self.region, 'groups': self.groups}
        return [key for key, value in known.items() if selector.get(key) and value is None]

    def matches(self, selector: Any) -> bool:
        if not isinstance(selector, dict):
            return False
        return (
            self.cloud in (selector.get('clouds') or ())
            or self.region in (selector.get('regions') or ())
            or bool(set(self.groups or ()) & set(selector.get('groups') or ()))
        )

    def __str__(self) -> str:
        return '/'.join(part for part in (self.cloud or '(cloud)', self.region) if part)

    def as_dict(self) -> dict[str, Any]:
        return {
            'cloud': self.cloud,
            'region': self.region,
            'groups': None if self.groups is None else list(self.groups),
        }


@dataclasses.dataclass
class CatalogImage:
    """One Glance image the catalog wants; `source` is {'file': absolute path}, {'url': url} or
    {'cloud': clouds.yaml name, 'image': name or id} (another cloud's image, mirrored)
    (None for an unmanaged entry without one). `expected` is the checksum the catalog gives
    ({'sha256': hex} or {'sha512': hex}); with `checksum_url` it is filled in at plan time."""

    name: str
    source: dict[str, str] | None
    sha256: str | None
    disk_format: str
    container_format: str
    min_disk: int
    min_ram: int
    properties: dict[str, str]
    tags: list[str]
    visibility: str
    protected: bool
    hidden: bool
    members: list[str]
    origin: Origin
    series: str | None = None
    version: str | None = None
    released: str | None = None
    rank: int | None = None
    desired_state: str = 'active'
    deactivate_after_seconds: int | None = None
    delete_after_seconds: int | None = None
    expected: dict[str, str] = dataclasses.field(default_factory=dict)
    checksum_url: str | None = None
    id: str | None = None
    state: str = 'present'
    alias: str | None = None
    update_published: bool = True
    # What the version itself sets (properties, tags, visibility, min_disk, min_ram): applied
    # to a published build even when the series' own metadata is not.
    version_values: dict[str, Any] = dataclasses.field(default_factory=dict)
    # A build of the series that left the file, known from the cloud's records.
    remembered: bool = False
    # The format to store: a target, or {cloud name: target} with a 'default' key for others.
    convert_to: str | dict[str, str | None] | None = None

    def conversion_for(self, cloud: str | None) -> str | None:
        if isinstance(self.convert_to, dict):
            return self.convert_to.get(cloud or '', self.convert_to.get(CONVERT_TO_OTHER_CLOUDS))
        return self.convert_to

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CatalogSeries:
    """A series summarised: its builds newest first and what happens to the older ones."""

    series: str
    name: str
    keep: int
    hide: bool
    deactivate_after: str | None
    deactivate_after_seconds: int | None
    delete_after: str | None
    delete_after_seconds: int | None
    order: str
    versions: list[str]
    images: list[str]
    origin: Origin
    alias: str | None = None
    keep_last: int | None = None
    update_published: bool = False
    state: str = 'present'

    @property
    def active(self) -> list[str]:
        """Names of the builds that stay visible and active (the newest `keep`)."""
        return self.images[: self.keep]

    @property
    def retired(self) -> list[str]:
        return self.images[self.keep :]

    def as_dict(self) -> dict[str, Any]:
        return dict(dataclasses.asdict(self), active=self.active, retired=self.retired)


@dataclasses.dataclass(frozen=True)
class SelectorUse:
    """An entry's `targets` or one of its `overrides`' `where`, and whether it selected the
    target of this run: a fleet report names the selectors no target matched (a misspelt
    region sends an image nowhere, and a pruning run then deletes it everywhere)."""

    origin: str
    item: str
    field: str
    selector: dict[str, Any]
    matched: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Catalog:
    """Every image of the catalog in load order (series builds newest first), and the series;
    with a target, the selectors and whether each selected it."""

    images: list[CatalogImage]
    series: list[CatalogSeries]
    sources: list[str]
    selectors: list[SelectorUse] = dataclasses.field(default_factory=list)

    def image(self, name: str) -> CatalogImage | None:
        for image in self.images:
            if image.name == name:
                return image
        return None

    def get_series(self, series: str) -> CatalogSeries | None:
        for entry in self.series:
            if entry.series == series:
                return entry
        return None

    @property
    def names(self) -> list[str]:
        return [image.name for image in self.images]

    def as_dict(self) -> dict[str, Any]:
        return {
            'images': [image.as_dict() for image in self.images],
            'series': [series.as_dict() for series in self.series],
            'sources': list(self.sources),
        }
