# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A series as it stands in the cloud: the file's builds and those the cloud remembers
(builds of the series whose version left the file), ranked together, the build that carries
the series' plain name (alias), and the builds beyond ``keep_last``.

The cloud's records are properties on each build: the catalog, the series, the version and
the release date. A project member can edit them; they are bookkeeping of which image is
which build, never a permission: every change is still asked of the policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ._state import REPLACED_BY_PROPERTY
from .catalog.constants import ENTRY_PRESENT, ENTRY_UNMANAGED, STATE_ACTIVE, STATE_HIDDEN, STATE_RETIRED

SERIES_PROPERTY = 'imagegov_series'
VERSION_PROPERTY = 'imagegov_version'
RELEASED_PROPERTY = 'imagegov_released'
GONE = ('deleted', 'pending_delete', 'killed')


@dataclass
class SeriesState:
    """One series of the catalog against the cloud."""

    series: Any  # CatalogSeries
    builds: list[Any] = field(default_factory=list)  # CatalogImage, newest first
    remembered: list[Any] = field(default_factory=list)  # synthesised for builds that left the file
    beyond_keep_last: set[str] = field(default_factory=set)  # names of builds to delete
    target: Any = None  # the build that should carry the alias

    @property
    def alias(self) -> str | None:
        return self.series.alias


def build_key(image: dict[str, Any]) -> tuple[str, str] | None:
    series, version = image.get(SERIES_PROPERTY), image.get(VERSION_PROPERTY)
    return (series, version) if series and version else None


def series_states(catalog: Any, current: list[dict[str, Any]], catalog_name: str) -> dict[str, SeriesState]:
    """Every series of the catalog with its builds ranked, file and remembered ones together."""
    managed = [
        image
        for image in current
        if image.get('imagegov_catalog') == catalog_name
        and build_key(image)
        and image.get('status') not in GONE
        and not image.get(REPLACED_BY_PROPERTY)
    ]
    states = {}
    for series in catalog.series:
        file_builds = [image for image in catalog.images if image.series == series.series]
        known = {image.version for image in file_builds}
        remembered = {}
        created = {image['id']: str(image.get('created_at') or '') for image in managed}
        for image in managed:
            version = image[VERSION_PROPERTY]
            if image[SERIES_PROPERTY] == series.series and version not in known and version not in remembered:
                remembered[version] = _remembered_build(series, file_builds[0], image)
        # The file decides which builds are newest; the cloud's records (editable by anyone in
        # the project) only order what left it, by Glance's own creation time.
        left = sorted(remembered.values(), key=lambda build: created[build.id], reverse=True)
        builds = file_builds + left
        state = SeriesState(series, builds, left)
        if series.keep_last is not None:
            counted = [build for build in builds if build.state != ENTRY_UNMANAGED]
            state.beyond_keep_last = {build.name for build in counted[series.keep_last :]}
        if series.alias:
            state.target = next(
                (
                    build
                    for build in builds
                    if build.state == ENTRY_PRESENT
                    and build.desired_state == STATE_ACTIVE
                    and build.name not in state.beyond_keep_last
                ),
                None,
            )
        states[series.series] = state
    return states


def _remembered_build(series: Any, template_build: Any, image: dict[str, Any]) -> Any:
    """A build whose version left the file: kept as it was published, retired like any
    older build of the series (never the alias, never uploaded again)."""
    version = image[VERSION_PROPERTY]
    state = STATE_HIDDEN if series.hide else STATE_RETIRED
    return dataclasses.replace(
        template_build,
        name=series.name.replace('{version}', version),
        source=None,
        sha256=None,
        expected={},
        checksum_url=None,
        id=image['id'],
        version=version,
        released=image.get(RELEASED_PROPERTY),
        rank=None,
        desired_state=state,
        hidden=state == STATE_HIDDEN,
        state=ENTRY_PRESENT,
        update_published=False,
        version_values={},
        deactivate_after_seconds=series.deactivate_after_seconds,
        delete_after_seconds=series.delete_after_seconds,
        members=[],
        visibility=image.get('visibility') or template_build.visibility,
        remembered=True,
    )
