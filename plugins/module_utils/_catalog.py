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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._content import Source, prescan
from ._errors import ImagegovError
from ._glance import Glance
from ._identity import DigestCache
from ._image import ContentRequest, ImageReconciler, Outcome
from ._members import MemberReconciler, share_view
from ._operations import FAILED, UNCHANGED, Kind, PlanAction, plan_action
from ._policy import PolicyRefusal
from ._redact import redact_url
from ._state import SHA256_PROPERTY, VOLATILE_FIELDS, DesiredImage
from ._usage import blocking_usage

MANAGED_BY_PROPERTY = 'imagegov_catalog'
RETIRED_AT_PROPERTY = 'imagegov_retired_at'
RETIRED_AT_FORMAT = '%Y-%m-%dT%H:%M:%SZ'
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
        self.digests = digests or DigestCache()

    def inventory(self) -> None:
        """Every image of the project, hidden ones included: one paged listing per pass."""
        for image in self.glance.all_images({'owner': self.caller_project_id, 'visibility': 'all'}, live=True):
            self.current.setdefault(image.get('name'), []).append(image)

    # -- plan -------------------------------------------------------------------------
    def plan(self, catalog: Any, prune: bool) -> list[PlanItem]:
        gate = self.make_gate()
        items = [self._item(image, check_mode=True, gate=gate) for image in catalog.images]
        if prune:
            wanted = set(catalog.names)
            items += [
                self._prune(image, check_mode=True, gate=gate)
                for name, images in sorted(self.current.items(), key=lambda kv: str(kv[0]))
                for image in images
                if name not in wanted and image.get(MANAGED_BY_PROPERTY) == self.name
            ]
        return items

    def apply(self, catalog: Any, plan: list[PlanItem]) -> list[PlanItem]:
        """Carry out the planned changes that the policy allowed, catalog order, prune last."""
        gate = self.make_gate()
        by_name = {image.name: image for image in catalog.images}
        done = []
        for item in plan:
            if item.action in UNCHANGED + FAILED:
                done.append(item)
            elif item.action is PlanAction.PRUNE:
                image = next(i for images in self.current.values() for i in images if i['id'] == item.id)
                done.append(self._prune(image, check_mode=False, gate=gate))
            else:
                done.append(self._item(by_name[item.name], check_mode=False, gate=gate))
        return done

    # -- one catalog image ----------------------------------------------------------------
    def _item(self, image: Any, check_mode: bool, gate: Any) -> PlanItem:
        item = PlanItem(image.name, PlanAction.NOOP, origin=str(image.origin))
        found = sorted(self.current.get(image.name, []), key=lambda i: (str(i.get('created_at')), i['id']))
        # Several images with the name are settled by the reconciler; the oldest carries the
        # bookkeeping (retirement dates) until then.
        current = found[0] if found else None
        if current is None and image.desired_state != 'active':
            # A retired build is never uploaded (again): once deleted it stays deleted.
            item.reason = 'retired build, not in the cloud'
            return item
        retired_since = self._retired_since(image, current)
        due = self._due(image, retired_since)
        if due == 'delete':
            return self._delete(item, current, check_mode, gate)
        desired = self._desired(image, current, retired_since)
        source = Source(image.source.get('file'), image.source.get('url'), None)
        new_bytes = current is None or current.get(SHA256_PROPERTY) != image.sha256
        data_source = (
            {'kind': 'file', 'path': source.filename}
            if source.filename
            else {'kind': 'url', 'url': redact_url(source.url)}
        )
        content = ContentRequest(
            source,
            'put',
            {'sha256': image.sha256},
            'replace',
            prescan(source) if new_bytes and check_mode else None,
            data_source,
        )
        members = [self.resolve_project(member) for member in image.members] if image.visibility == 'shared' else None

        def step(rec: ImageReconciler) -> Outcome:
            outcome = rec.present(found, desired, content, due == 'deactivate')
            if members is not None:
                self._share(rec, outcome, members, check_mode, gate)
            return outcome

        return self._run(item, current, gate, check_mode, step)

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

    def _desired(self, image: Any, current: dict[str, Any] | None, retired_since: str | None) -> DesiredImage:
        properties = dict(image.properties)
        properties[MANAGED_BY_PROPERTY] = self.name
        if retired_since:
            properties[RETIRED_AT_PROPERTY] = retired_since
        attributes = {
            'name': image.name,
            'disk_format': image.disk_format,
            'container_format': image.container_format,
            'min_disk': image.min_disk,
            'min_ram': image.min_ram,
            'visibility': image.visibility,
            'protected': image.protected,
            'os_hidden': image.hidden,
        }
        if current is None:
            attributes['container_format'] = image.container_format or 'bare'
        return DesiredImage(
            attributes=attributes, properties=properties, tags=list(image.tags), purge_properties=True, purge_tags=True
        )

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
    ) -> PlanItem:
        gate.usage_provider = self.usage
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


def summarize(items: list[PlanItem]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for item in items:
        summary[item.action.value] = summary.get(item.action.value, 0) + 1
    return summary
