# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile a whole catalog: one listing, a plan the policy sees in full, then the changes.

Each catalog image goes through the same ImageReconciler as the image module, first in
check mode (the plan) and then for real, with the current image taken from one listing
of the project's images instead of a lookup per image. An unchanged image costs no request.
"""

from __future__ import annotations

import datetime
import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._content import Source, prescan
from ._converting import (
    SOURCE_FORMAT_PROPERTY,
    SOURCE_SHA256_PROPERTY,
    ConversionSettings,
    ConvertingSource,
    stored_header,
)
from ._errors import ImagegovError
from ._glance import Glance
from ._identity import DigestCache
from ._image import ContentRequest, ImageReconciler, Outcome
from ._members import MemberReconciler, share_view
from ._operations import FAILED, UNCHANGED, Kind, PlanAction, plan_action
from ._policy import PolicyRefusal
from ._redact import redact_url
from ._series import (
    RELEASED_PROPERTY,
    REPLACED_BY_PROPERTY,
    SERIES_PROPERTY,
    VERSION_PROPERTY,
    SeriesState,
    build_key,
    series_states,
)
from ._state import SHA256_PROPERTY, VOLATILE_FIELDS, DesiredImage, simulated_new_image
from ._transfer import (
    MirrorSource,
    RunDigests,
    SourceImage,
    TransferReconciler,
    check_source,
    source_cloud_failure,
    source_facts,
    source_records,
)
from ._usage import blocking_usage
from .catalog.checksums import ChecksumResolver
from .catalog.constants import ENTRY_DEACTIVATED, ENTRY_UNMANAGED, MIN_DISK_AUTO

MANAGED_BY_PROPERTY = 'imagegov_catalog'
RETIRED_AT_PROPERTY = 'imagegov_retired_at'
RETIRED_AT_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
GIB = 1 << 30
ALIAS_GRACE_SECONDS = 2.0
# Fields whose change is the reconciler's own doing, not drift worth showing.
UNINTERESTING_FIELDS = VOLATILE_FIELDS | {
    'created_at',
    'checksum',
    'os_hash_algo',
    'os_hash_value',
    'size',
    'virtual_size',
    'stores',
    'id',
    'owner',
}


@dataclass
class PlanItem:
    name: str
    action: PlanAction
    origin: str | None = None
    operations: list[str] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    policy: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    id: str | None = None
    decisions: list[Any] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        fields = {k: v for k, v in self.__dict__.items() if k != 'decisions' and v not in (None, [], {})}
        return dict(fields, action=self.action.value, operations=[str(op) for op in self.operations])


class CatalogReconciler:
    def __init__(
        self,
        glance: Glance,
        caller: dict[str, Any],
        make_gate: Callable[[], Any],
        usage: Callable[[dict[str, Any]], dict[str, Any]],
        name: str,
        timeout: int,
        resolve_project: Callable[[str], str],
        digests: DigestCache | None = None,
    ) -> None:
        self.glance = glance
        self.caller = caller
        self.caller_project_id = caller['project_id']
        # Each distinct member name is asked of Keystone once per run, not once per image.
        self.resolve_project = functools.lru_cache(maxsize=None)(resolve_project)
        self.make_gate = make_gate
        self.usage = usage
        self.name = name
        self.timeout = timeout
        self.now = datetime.datetime.now(datetime.timezone.utc)
        self.current: dict[str, list[dict[str, Any]]] = {}
        self.listed: list[dict[str, Any]] = []
        # The listing by build record (series, version) and by id, in listing order: a
        # catalog image is looked up in them, not in the whole listing (10,000 builds
        # against 10,000 images were 50 million comparisons).
        self.builds: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.by_id: dict[str, dict[str, Any]] = {}
        self.series: dict[str, SeriesState] = {}
        self.images: dict[str, Any] = {}
        self.checksums = ChecksumResolver()
        # Seconds between showing a series' new build under the plain name and renaming the
        # old one: longer than a lookup by name takes between its visible and hidden passes.
        self.alias_grace = ALIAS_GRACE_SECONDS
        self.digests = digests or DigestCache()
        # Where conversions run, and for which cloud (a catalog's convert_to may differ per
        # cloud); set by the module.
        self.conversion = ConversionSettings()
        # The Glance of another cloud (an entry's source.cloud): (glance, label, region), set
        # by the module; each cloud is connected once per run.
        self.connect_source: Callable[[str], tuple[Glance, str, str | None]] | None = None
        self._source_clouds: dict[str, tuple[Glance, str, str | None]] = {}
        self._source_failures: dict[str, str] = {}

    def inventory(self) -> None:
        """Every image of the project, hidden ones included: one paged listing per pass."""
        for image in self.glance.all_images({'owner': self.caller_project_id, 'visibility': 'all'}, live=True):
            self.current.setdefault(image.get('name'), []).append(image)
            self.listed.append(image)
            key = build_key(image)
            if key:
                self.builds.setdefault(key, []).append(image)
            self.by_id[image['id']] = image  # all_images yields each id once

    # -- plan -------------------------------------------------------------------------
    def plan(self, catalog: Any, prune: bool) -> list[PlanItem]:
        gate = self.make_gate()
        self.series = series_states(catalog, self.listed, self.name)
        remembered = [build for state in self.series.values() for build in state.remembered]
        self.images = {image.name: image for image in catalog.images + remembered}
        items = [self._item(image, check_mode=True, gate=gate) for image in self.images.values()]
        for state in self.series.values():
            if state.alias and state.target is not None:
                self._move_alias(state, items, gate, check_mode=True)
        if prune:
            gone = sorted(
                (i for i in self.listed if self._prunable(i, catalog)), key=lambda i: (str(i.get('name')), i['id'])
            )
            items += [self._prune(image, check_mode=True, gate=gate) for image in gone]
        return items

    def _prunable(self, image: dict[str, Any], catalog: Any) -> bool:
        """Managed by this catalog and gone from it: neither a name nor a series it knows
        (builds that left a series are retired with it), nor an unmanaged entry."""
        if image.get(MANAGED_BY_PROPERTY) != self.name or image.get('name') in self.images:
            return False
        key = build_key(image)
        if key and (key[0] in self.series or key[0] in {i.series for i in catalog.images}):
            return False
        return not any(state.alias == image.get('name') for state in self.series.values())

    def apply(self, catalog: Any, plan: list[PlanItem]) -> list[PlanItem]:
        """Carry out the planned changes that the policy allowed, catalog order, prune last;
        then move each series' plain name to its newest active build."""
        gate = self.make_gate()
        done = []
        for item in plan:
            if item.action in UNCHANGED + FAILED:
                done.append(item)
            elif item.action is PlanAction.PRUNE:
                image = self.by_id[item.id]
                done.append(self._prune(image, check_mode=False, gate=gate))
            else:
                done.append(self._item(self.images[item.name], check_mode=False, gate=gate))
        for state in self.series.values():
            if state.alias and state.target is not None:
                self._move_alias(state, done, gate, check_mode=False)
        return done

    # -- one catalog image ----------------------------------------------------------------
    def _found(self, image: Any) -> list[dict[str, Any]]:
        """The images that are this catalog image: by the build's record, by fixed id, by name."""
        if image.series:
            key = (image.series, image.version)
            owned = [
                i
                for i in self.builds.get(key, ())
                if i.get(MANAGED_BY_PROPERTY) == self.name and not i.get(REPLACED_BY_PROPERTY)
            ]
            if owned:
                # The records are bookkeeping anyone in the project can copy onto another
                # image: the build is the one holding its bytes (by Glance's hash), else its
                # name or the plain name; images named otherwise are left alone (several with
                # one name are settled by the reconciler, on Glance's hash).
                state = self.series.get(image.series)
                names = (image.name, state.alias if state else None)

                def rank(i: dict[str, Any]) -> tuple[bool, bool, str, str]:
                    holds = bool(image.expected) and _holds(i, image.expected)
                    return (not holds, i.get('name') not in names, str(i.get('created_at')), i['id'])

                best = min(owned, key=rank)
                return [i for i in owned if i.get('name') == best.get('name')]
        if image.id:
            return [self.by_id[image.id]] if image.id in self.by_id else []
        named = [i for i in self.current.get(image.name, []) if build_key(i) in (None, (image.series, image.version))]
        state = self.series.get(image.series)
        if not named and state and state.target is image:
            # Adopting a series another tool kept under the plain name: the image holding it
            # counts as this build when its bytes are this build's (checked by the reconciler).
            named = [i for i in self.current.get(state.alias, []) if build_key(i) is None]
        return named

    def _item(self, image: Any, check_mode: bool, gate: Any) -> PlanItem:
        item = PlanItem(image.name, PlanAction.NOOP, origin=str(image.origin))
        if image.state == ENTRY_UNMANAGED:
            item.reason = 'unmanaged: known to the catalog, never uploaded, changed or pruned'
            return item
        found = sorted(self._found(image), key=lambda i: (str(i.get('created_at')), i['id']))
        # Several images with the name are settled by the reconciler; the oldest carries the
        # bookkeeping (retirement dates) until then.
        current = found[0] if found else None
        state = self.series.get(image.series)
        beyond = state is not None and image.name in state.beyond_keep_last
        if current is None and (image.desired_state != 'active' or beyond):
            # A retired build is never uploaded (again): once deleted it stays deleted.
            item.reason = 'retired build, not in the cloud'
            return item
        retired_since = self._retired_since(image, current)
        due = 'delete' if beyond else self._due(image, retired_since)
        if due == 'delete' and _holds_alias(state, current):
            # Deleted only once the plain name has moved on (a later run): until then it is
            # what the name finds.
            item.action, item.id = PlanAction.KEPT, current['id']
            item.reason = f'holds {state.alias!r} until a newer build is active; deleted on a later run'
            return item
        if due == 'delete':
            item = self._delete(item, current, check_mode, gate)
            if beyond and item.reason is None:
                item.reason = f'beyond keep_last ({state.series.keep_last})'
            return item
        held = self._held_active(found) if due == 'deactivate' else []
        if held:
            due = None
        unchecked = None
        mirrored = bool(image.source and image.source.get('cloud'))
        if mirrored:
            # Another cloud's image: its Glance's hash is the checksum, read at every run.
            try:
                source = self._source_image(image)
            except ImagegovError as exc:
                item.action, item.reason = PlanAction.ERROR, str(exc)
                return item
            expected = {source.algo: source.expected}
        else:
            try:
                expected = self._expected(image)
            except ImagegovError as exc:
                if current is None:
                    item.action, item.reason = PlanAction.ERROR, str(exc)
                    return item
                # A stored build is still reconciled (access, retirement) without its checksum
                # file (old ones vanish upstream); its bytes are left as they are this run.
                expected, unchecked = {}, f'note: bytes not checked this run: {exc}'
            source = (
                Source(image.source.get('file'), image.source.get('url'), None) if image.source and expected else None
            )
        target = image.conversion_for(self.conversion.cloud) if source is not None and not mirrored else None
        if target and 'sha256' not in expected:
            item.action, item.reason = PlanAction.ERROR, 'convert_to needs the sha256 of the source as its checksum'
            return item
        new_bytes = source is not None and (current is None or not _holds(current, expected, target))
        facts = None
        if new_bytes and (check_mode or image.min_disk == MIN_DISK_AUTO):
            # A mirror's header comes by a Range request; its size from the source Glance.
            if mirrored:
                try:
                    facts = source_facts(source)
                except ImagegovError as exc:  # the source cloud failing as its header is read
                    item.action, item.reason = PlanAction.ERROR, str(exc)
                    return item
            else:
                facts = prescan(source)
        if facts is not None and target:
            facts = dict(stored_header(facts, target), conversion={'converted_to': target})
        desired = self._desired(image, current, retired_since, check_mode, facts)
        data_source = None
        if mirrored:
            data_source = {'kind': 'glance', 'cloud': source.cloud, 'image_id': source.image['id']}
            desired.properties.update(source_records(source.cloud, source.image))
        elif source is not None:
            data_source = (
                {'kind': 'file', 'path': source.filename}
                if source.filename
                else {'kind': 'url', 'url': redact_url(source.url)}
            )
        content = ContentRequest(source, 'put', expected, 'replace', facts if check_mode else None, data_source)
        if target:
            content.source = self._converting(source, target, expected['sha256'], gate, desired, data_source)
            content.expected, content.known_sha256 = {}, self.digests.converted(expected['sha256'], target)
            desired.properties[SOURCE_SHA256_PROPERTY] = expected['sha256']
            if current is not None and current.get(SOURCE_FORMAT_PROPERTY):
                # Read from the bytes when they were converted; kept while they are the same.
                desired.properties[SOURCE_FORMAT_PROPERTY] = current[SOURCE_FORMAT_PROPERTY]
        members = [self.resolve_project(member) for member in image.members] if image.visibility == 'shared' else None
        deactivate = due == 'deactivate' or image.state == ENTRY_DEACTIVATED

        def step(rec: ImageReconciler) -> Outcome:
            outcome = rec.present(found, desired, content, deactivate)
            if members is not None:
                self._share(rec, outcome, members, check_mode, gate)
            return outcome

        try:
            item = self._run(item, current, gate, check_mode, step, mirrored)
        finally:
            if target:
                content.source.close()
        if held and item.action not in FAILED:
            item.id = item.id or current['id']
            note = f'kept active, in use: {"; ".join(held)}; deactivated once unused'
            item.reason = f'{item.reason}; {note}' if item.reason else note
            if item.action is PlanAction.NOOP:
                item.action = PlanAction.KEPT
        if unchecked:
            item.operations.append(unchecked)
        return item

    def _source_image(self, image: Any) -> SourceImage:
        """The entry's source.image in the cloud source.cloud names: active, hashed by its
        Glance in an algorithm the copy can be verified in, and of the entry's disk_format."""
        cloud, wanted = image.source['cloud'], image.source['image']
        if self.connect_source is None:
            raise ImagegovError('source.cloud: this run cannot connect to other clouds.')
        if cloud in self._source_failures:
            raise ImagegovError(self._source_failures[cloud])
        try:
            if cloud not in self._source_clouds:
                self._source_clouds[cloud] = self.connect_source(cloud)
            glance, label = self._source_clouds[cloud][:2]
            found = glance.find(wanted, 'source.image', f'Give its id, as it is in cloud {label}.')
        except Exception as exc:
            # An unreachable source cloud, or one refusing its account, fails its own entries,
            # once (each would wait for the same timeout), not the whole run.
            failure = source_cloud_failure(exc, cloud)
            if failure is None:
                raise
            message, whole_cloud = failure
            if whole_cloud:
                self._source_failures[cloud] = message
            raise ImagegovError(message) from exc
        if found is None:
            raise ImagegovError(
                f'source.image: no image {wanted!r} (by id or name) is visible in cloud {label}. '
                'Check the name and the account of that cloud in clouds.yaml.'
            )
        source = MirrorSource(glance, found, label)
        check_source(found, source.label)
        if found.get('disk_format') != image.disk_format:
            raise ImagegovError(
                f'{source.label} has disk_format {found.get("disk_format")!r}, the catalog says '
                f'{image.disk_format!r}: set disk_format {found.get("disk_format")} (a mirror is not converted).'
            )
        return source

    def _converting(
        self, source: Source, target: str, sha256: str, gate: Any, desired: DesiredImage, data_source: Any
    ) -> ConvertingSource:
        converting = ConvertingSource(
            source, target, self.conversion.scratch_dir, self.conversion.run, self.digests, expected_sha256=sha256
        )
        converting.judge = lambda action, facts: gate.check(
            action, simulated_new_image(desired), None, facts, data_source=data_source
        )
        return converting

    def _share(self, rec: ImageReconciler, outcome: Outcome, members: list[str], check_mode: bool, gate: Any) -> None:
        """The exact set of member projects of a shared image: one member listing."""
        image = outcome.after or {}
        if not image.get('id'):  # an image the plan creates has no members yet
            if members:
                gate.check('share', share_view(image, dict.fromkeys(members, 'pending')), share_view(image, {}))
                for member in members:
                    rec.outcome.operations.add(Kind.SHARE, f'add member {member}')
                outcome.changed = True
            return
        sharing = MemberReconciler(self.glance, gate, self.caller, check_mode)
        shared = sharing.share(image, members, 'present', True, False)
        if shared.changed:
            rec.outcome.operations.extend(shared.operations)
            outcome.changed = True
            outcome.after = dict(image, members=sorted(shared.after))
            outcome.before = dict(outcome.before or {}, members=sorted(shared.before))

    def _expected(self, image: Any) -> dict[str, str]:
        """The checksum the catalog gives, a checksum file's entry resolved once per run."""
        if image.expected or not image.checksum_url:
            return dict(image.expected)
        wanted = os.path.basename((image.source or {}).get('url') or (image.source or {}).get('file') or '')
        algorithm, digest = self.checksums.resolve(image.checksum_url, wanted.split('?')[0])
        return {algorithm: digest}

    def _desired(
        self,
        image: Any,
        current: dict[str, Any] | None,
        retired_since: str | None,
        check_mode: bool,
        facts: dict[str, Any] | None,
    ) -> DesiredImage:
        bookkeeping = {MANAGED_BY_PROPERTY: self.name}
        if image.series:
            bookkeeping.update({SERIES_PROPERTY: image.series, VERSION_PROPERTY: image.version})
            if image.released:
                bookkeeping[RELEASED_PROPERTY] = image.released
        if retired_since:
            bookkeeping[RETIRED_AT_PROPERTY] = retired_since
        # An image holding the plain name keeps its visibility until the name has moved
        # (unless it is the newest build and holds it alone).
        state = self.series.get(image.series)
        holder = not check_mode and _holds_alias(state, current)
        if holder and state.target is image:
            holder = any(i['id'] != current['id'] for i in self.current.get(state.alias, []))
        attributes = {
            'name': self._name_for(image, current, check_mode),
            'disk_format': image.conversion_for(self.conversion.cloud) or image.disk_format,
            'container_format': image.container_format,
            'min_disk': _min_disk(image.min_disk, current, facts),
            'min_ram': image.min_ram,
            'visibility': image.visibility,
            'protected': image.protected,
            # The build that still holds the plain name stays visible until the name moves.
            'os_hidden': current.get('os_hidden') if holder else image.hidden,
        }
        if current is None:
            attributes['container_format'] = image.container_format or 'bare'
            if image.id:
                attributes['id'] = image.id
        elif image.series and not image.update_published:
            # A published build keeps the metadata it was published with: only what its own
            # version entry sets, access and retirement bookkeeping are applied.
            own = image.version_values
            attributes.update(disk_format=None, container_format=None)
            attributes.update(min_disk=None if 'min_disk' not in own else attributes['min_disk'])
            attributes.update(min_ram=own.get('min_ram'))
            properties = {key: image.properties[key] for key in own.get('properties') or {}}
            return DesiredImage(
                attributes=attributes,
                properties=dict(properties, **bookkeeping),
                tags=sorted(set(current.get('tags') or []) | set(own.get('tags') or [])),
            )
        return DesiredImage(
            attributes=attributes,
            properties=dict(image.properties, **bookkeeping),
            tags=list(image.tags),
            purge_properties=True,
            purge_tags=True,
        )

    def _name_for(self, image: Any, current: dict[str, Any] | None, check_mode: bool) -> str:
        """A plan shows where the plain name ends up; an apply leaves it where it is and
        moves it in one step at the end (_move_alias), once the newest build is active."""
        state = self.series.get(image.series)
        if state is None or not state.alias:
            return image.name
        if check_mode and state.target is not None:
            return state.alias if state.target is image else image.name
        return state.alias if _holds_alias(state, current) else image.name

    def _move_alias(self, state: SeriesState, items: list[PlanItem], gate: Any, check_mode: bool) -> None:
        """Give the plain name to the newest active build so that a lookup by name (openstack
        image show, openstacksdk's find_image: visible images first, then hidden ones) finds
        exactly one image at every moment: the new build takes the name hidden, the old
        holders take their own names, then the new build is shown. An image that is not a
        build of the series but holds the name is retired (renamed and hidden)."""
        target_item = next((i for i in items if i.name == state.target.name), None)
        if target_item is None or target_item.action in FAILED:
            return
        if check_mode:  # the builds' own items show their names; the target's too
            target = {'id': target_item.id, 'name': state.alias, 'status': 'active'}
        else:
            target = self.glance.live_image(target_item.id) if target_item.id else None
            if target is None or target.get('status') != 'active':
                target_item.operations.append(f'note: {state.alias!r} stays where it is until this build is active')
                return
        gone = {i.id for i in items if i.action in (PlanAction.DELETE, PlanAction.PRUNE)}
        holders = [i for i in self.current.get(state.alias, []) if i['id'] not in (target['id'], *gone)]
        reconciler = ImageReconciler(
            self.glance, self.caller_project_id, check_mode, True, self.timeout, gate, self.digests
        )
        shown = target.get('name') == state.alias and not target.get('os_hidden')
        try:
            if not check_mode and not shown:
                # The old holders are hidden first: a lookup that finds no visible image with
                # the name looks at hidden ones, and finds the old build there.
                holders = [
                    holder if holder.get('os_hidden') else reconciler.rename(holder, state.alias, hidden=True)
                    for holder in holders
                ]
                target = reconciler.rename(target, state.alias, hidden=state.target.hidden)
                if holders:
                    # A lookup that saw no visible holder just before the new build was shown
                    # still finds the old one among the hidden images until they are renamed.
                    time.sleep(self.alias_grace)
            for holder in holders:
                build = next((b for b in state.builds if build_key(holder) == (b.series, b.version)), None)
                if build is None:
                    reconciler.retire_other(holder, target)
                elif not check_mode:
                    reconciler.rename(holder, build.name, hidden=build.hidden)
        except (PolicyRefusal, ImagegovError) as exc:
            target_item.action, target_item.reason = PlanAction.ERROR, f'moving {state.alias!r}: {exc}'
        target_item.operations.extend(str(op) for op in reconciler.outcome.operations)
        if reconciler.outcome.changed and target_item.action in UNCHANGED:
            target_item.action = PlanAction.UPDATE

    def _retired_since(self, image: Any, current: dict[str, Any] | None) -> str | None:
        """When the build was retired: the recorded time, unless it is malformed or in the
        future (anyone in the project can edit it), which is drift and restarts the clock."""
        if image.desired_state == 'active':
            return None
        recorded = _parse_time((current or {}).get(RETIRED_AT_PROPERTY))
        if recorded is None or recorded > self.now:
            return self.now.strftime(RETIRED_AT_FORMAT)
        return recorded.strftime(RETIRED_AT_FORMAT)

    def _due(self, image: Any, retired_since: str | None) -> str | None:
        since = _parse_time(retired_since)
        if since is None:
            return None
        age = (self.now - since).total_seconds()
        if image.delete_after_seconds is not None and age >= image.delete_after_seconds:
            return 'delete'
        if image.deactivate_after_seconds is not None and age >= image.deactivate_after_seconds:
            return 'deactivate'
        return None

    def _prune(self, image: dict[str, Any], check_mode: bool, gate: Any) -> PlanItem:
        item = self._delete(PlanItem(image.get('name'), PlanAction.NOOP, id=image['id']), image, check_mode, gate)
        if item.action is PlanAction.DELETE:
            item.action = PlanAction.PRUNE
        return item

    def _held_active(self, found: list[dict[str, Any]]) -> list[str]:
        """What keeps a retired build active past its deactivate_after: a deactivated image's
        data is no longer served to non-admins, so whatever fetches it again for a server or
        volume using it (a rebuild, a migration to a host without it cached) would fail.
        Unknown usage counts as use. Every image found for the build is asked: with several,
        the reconciler keeps (and would deactivate) the one holding the build's bytes, which
        need not be the one carrying the bookkeeping (anyone in the project can copy it)."""
        users = [
            user for image in found if image.get('status') == 'active' for user in blocking_usage(self.usage(image))
        ]
        return list(dict.fromkeys(users))

    def _delete(self, item: PlanItem, current: dict[str, Any], check_mode: bool, gate: Any) -> PlanItem:
        # Never deleted while in use, whatever the policy says; unknown usage counts as use.
        users = blocking_usage(self.usage(current))
        item.id = current['id']
        if users:
            item.action = PlanAction.KEPT
            item.reason = f'in use: {"; ".join(users)}'
            return item
        gate.usage_provider = self.usage
        return self._run(item, current, gate, check_mode, lambda rec: rec.absent([current], self.usage))

    def _run(
        self,
        item: PlanItem,
        current: dict[str, Any] | None,
        gate: Any,
        check_mode: bool,
        step: Callable[[ImageReconciler], Outcome],
        mirrored: bool = False,
    ) -> PlanItem:
        gate.usage_provider = self.usage
        if mirrored:
            # Streamed from the source Glance, verified by its hash; nothing kept on this host.
            reconciler: ImageReconciler = TransferReconciler(
                self.glance, self.caller_project_id, check_mode, True, self.timeout, gate, RunDigests()
            )
        else:
            reconciler = ImageReconciler(
                self.glance, self.caller_project_id, check_mode, True, self.timeout, gate, self.digests
            )
        asked = len(gate.decisions)
        try:
            outcome = step(reconciler)
        except PolicyRefusal as exc:
            item.action, item.reason = PlanAction.REFUSED, str(exc)
        except ImagegovError as exc:
            item.action, item.reason = PlanAction.ERROR, str(exc)
        else:
            item.action = plan_action(outcome.operations.kinds, outcome.changed)
            item.changes = field_changes(outcome.before, outcome.after)
            item.id = (outcome.after or outcome.before or {}).get('id') or item.id
        item.operations = list(reconciler.outcome.operations)
        item.decisions = gate.decisions[asked:]
        item.policy = [decision.as_dict() for decision in item.decisions]
        return item


def _holds_alias(state: SeriesState | None, image: dict[str, Any] | None) -> bool:
    return bool(state and state.alias and image and image.get('name') == state.alias)


def _holds(image: dict[str, Any], expected: dict[str, str], target: str | None = None) -> bool:
    """Whether the image already holds the expected bytes (converted to ``target``), as far as
    its records say (the reconciler proves it on Glance's own hash before anything is skipped)."""
    if target:
        return image.get('disk_format') == target and image.get(SOURCE_SHA256_PROPERTY) == expected.get('sha256')
    algo = next((algo for algo in expected if algo != 'sha256'), None)
    if algo:  # sha512 from the catalog, or another cloud's Glance hash
        return image.get('os_hash_algo') == algo and image.get('os_hash_value') == expected[algo]
    return image.get(SHA256_PROPERTY) == expected.get('sha256')


def _min_disk(wanted: Any, current: dict[str, Any] | None, facts: dict[str, Any] | None) -> int | None:
    """min_disk: auto is the virtual size in GiB, rounded up: of the new bytes when they are
    read in this run, else of the image Glance holds."""
    if wanted != MIN_DISK_AUTO:
        return wanted
    virtual = (facts or {}).get('virtual_size') or (current or {}).get('virtual_size')
    return max(1, math.ceil(virtual / GIB)) if virtual else None


def _parse_time(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(value), RETIRED_AT_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def field_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Only the fields that change, before and after: what a reviewer reads in a plan."""
    before, after = before or {}, after or {}
    keys = (set(before) | set(after)) - UNINTERESTING_FIELDS
    changes = {}
    for key in sorted(keys):
        old, new = before.get(key), after.get(key)
        if key == 'tags':
            old, new = sorted(old or []), sorted(new or [])
        if old != new:
            changes[key] = {'before': old, 'after': new}
    return changes


def image_facts(image: dict[str, Any], catalog_name: str) -> dict[str, Any]:
    """What a report says of one image of the project: no property values but the catalog's own."""
    facts = {key: image.get(key) for key in ('name', 'id', 'status', 'disk_format', 'container_format', 'visibility')}
    facts.update(
        hidden=bool(image.get('os_hidden')),
        size=image.get('size'),
        created_at=image.get('created_at'),
        series=image.get(SERIES_PROPERTY),
        managed=image.get(MANAGED_BY_PROPERTY) == catalog_name,
    )
    return facts


def summarize(items: list[PlanItem]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for item in items:
        summary[item.action.value] = summary.get(item.action.value, 0) + 1
    return summary
