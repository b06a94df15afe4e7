# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile one image: look it up, decide the content action, plan, then execute.

Planning never writes, so check mode runs the same code up to the point of execution.
Execution undoes its own earlier steps when a later one fails, so a failed run leaves
Glance as it found it: no queued record, no half-uploaded image, no retired original.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._content import ContentScanner, Source, SourceError
from ._errors import ImagegovError
from ._glance import Glance
from ._undo import UndoLog
from ._usage import blocking_usage
from ._state import (ATTRIBUTES, BASE_FIELDS, SHA256_PROPERTY, DesiredImage, apply_patch,
                     content_bound_changes, creation_fields, plan_patch, properties_of,
                     simulated_new_image)

REPLACED_BY_PROPERTY = 'imagegov_replaced_by'
# Marks a protection this collection set because the image was in use, so that it, and
# only it, is lifted again once nothing uses the image.
PROTECTED_WHILE_USED_PROPERTY = 'imagegov_protected_while_used'
GONE_STATUSES = ('killed', 'deleted', 'pending_delete')
BUSY_STATUSES = ('saving', 'uploading', 'importing')
PUBLISHED_VISIBILITIES = ('public', 'community')


class ImageRequestError(ImagegovError):
    """The request cannot be carried out as given; the message says what to change."""


@dataclass
class Lookup:
    """Where to find the managed image: by id, or by name among one project's images."""

    image_id: str | None
    name: str | None
    owner_id: str


@dataclass
class ContentRequest:
    source: Source | None
    import_method: str
    checksum: str | None
    on_content_change: str
    prescan: dict[str, Any] | None = None


@dataclass
class Outcome:
    changed: bool = False
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    operations: list[str] = field(default_factory=list)
    content: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None


def find_image(glance: Glance, lookup: Lookup) -> dict[str, Any] | None:
    if lookup.image_id:
        image = glance.get_image(lookup.image_id)
        return None if image is None or image.get('status') in GONE_STATUSES else image
    # Hidden images are left out of a listing unless asked for: ask twice, so a hidden
    # image is still found and updated instead of duplicated.
    found = [image
             for hidden in ('false', 'true')
             for image in glance.iter_images(dict(name=lookup.name, owner=lookup.owner_id,
                                                  visibility='all', os_hidden=hidden))
             if image.get('status') not in GONE_STATUSES]
    if len(found) > 1:
        listing = ', '.join(f"{i['id']} (status {i['status']}, created {i.get('created_at')})"
                            for i in found)
        raise ImageRequestError(
            f'{len(found)} images named {lookup.name!r} belong to project {lookup.owner_id}: '
            f'{listing}. Give the id option to choose one, or delete the extra images.')
    return found[0] if found else None


class ImageReconciler:
    def __init__(self, glance: Glance, caller_project_id: str, check_mode: bool, wait: bool,
                 timeout: int, gate: Any = None) -> None:
        self.glance = glance
        self.gate = gate
        self.caller_project_id = caller_project_id
        self.check_mode = check_mode
        self.wait = wait
        self.timeout = timeout
        self.outcome = Outcome()
        self._undo = UndoLog(self.outcome.operations)

    # -- state: absent -------------------------------------------------------------
    def absent(self, current: dict[str, Any] | None, usage_provider: Any = None) -> Outcome:
        self.outcome.before = current
        if current is None:
            return self.outcome
        if current.get('protected'):
            self._lift_usage_protection(current, usage_provider)
        self._ask('delete', current, current)
        if current.get('protected'):
            self._patch(current, _protection_ops(False), record=False)
            self._record(f"unprotect {current['id']} (protected while used; nothing uses it now)")
        self._record(f"delete {current['id']}")
        if not self.check_mode:
            self.glance.delete_image(current['id'])
        return self.outcome

    def _lift_usage_protection(self, current: dict[str, Any], usage_provider: Any) -> None:
        if current.get(PROTECTED_WHILE_USED_PROPERTY) != 'true' or usage_provider is None:
            raise ImageRequestError(
                f"Image {current['name']!r} ({current['id']}) is protected, so Glance refuses "
                'to delete it. Run the task with state=present and protected=false first.')
        users = blocking_usage(usage_provider(current))
        if users:
            raise ImageRequestError(
                f"Image {current['name']!r} ({current['id']}) is protected while it is used: "
                + '; '.join(users) + '. Delete or rebuild those first.')

    def protect_while_used(self, image: dict[str, Any], usage_provider: Any) -> Outcome:
        """Keep Glance's protected flag in step with usage, so a plain CLI delete of an
        image in use is refused too. Unknown usage counts as in use."""
        usage = usage_provider(image)
        self.outcome.usage = usage
        used = bool(blocking_usage(usage))
        if used and not image.get('protected'):
            image = self._patch(image, _protection_ops(True))
        elif not used and image.get(PROTECTED_WHILE_USED_PROPERTY) == 'true':
            image = self._patch(image, _protection_ops(False))
        self.outcome.after = image
        return self.outcome

    # -- state: present / deactivated ----------------------------------------------
    def present(self, current: dict[str, Any] | None, desired: DesiredImage,
                content: ContentRequest, deactivated: bool) -> Outcome:
        self.outcome.before = current
        if deactivated and (current is None or current.get('status') == 'active'):
            self._ask('deactivate', dict(current or simulated_new_image(desired), status='deactivated'),
                      current)
        try:
            if current is None:
                image = self._create(desired, content)
            else:
                image = self._update(current, desired, content)
            image = self._set_activation(image, deactivated)
        except BaseException:  # an interrupted or terminated run undoes its steps too
            self._undo.rollback()
            raise
        self.outcome.after = image
        return self.outcome

    def _update(self, current: dict[str, Any], desired: DesiredImage,
                content: ContentRequest) -> dict[str, Any]:
        if current.get('status') in BUSY_STATUSES:
            raise ImageRequestError(
                f"Image {current['name']!r} ({current['id']}) is {current['status']}: another "
                'upload is in progress. Run again when it is active, or delete it.')
        if current.get('status') == 'queued' and content.source is not None:
            return self._fill_queued(current, desired, content)
        reason = self._replacement_reason(current, desired, content)
        if reason:
            return self._replace(current, desired, content, reason)
        operations = plan_patch(current, desired)
        return self._patch(current, operations)

    def _replacement_reason(self, current: dict[str, Any], desired: DesiredImage,
                            content: ContentRequest) -> str | None:
        bound = content_bound_changes(current, desired)
        if bound:
            return (', '.join(f'{name} {current.get(name)!r} -> {desired.attributes[name]!r}'
                              for name in bound) + ' (Glance fixes these once data is uploaded)')
        if content.source is None:
            return None
        recorded = current.get(SHA256_PROPERTY)
        if content.checksum and recorded == content.checksum:
            return None
        facts = self._scan_only(content, current)
        if recorded == facts['sha256']:
            return None
        if not recorded and _glance_hash_matches(current, facts):
            # Uploaded by another tool: same bytes, so adopt it by recording its sha256.
            desired.properties.setdefault(SHA256_PROPERTY, facts['sha256'])
            return None
        return f"content changed: sha256 {recorded or 'unknown'} -> {facts['sha256']}"

    def _scan_only(self, content: ContentRequest, current: dict[str, Any]) -> dict[str, Any]:
        if content.import_method == 'web-download':
            facts = {'sha256': content.checksum, 'verified': False}
        else:
            # Glance's own hash only matters for images no tool of ours has recorded.
            extra = None if current.get(SHA256_PROPERTY) else current.get('os_hash_algo')
            facts = ContentScanner(content.source, extra).consume().facts()
            _verify_checksum(facts, content)
        self.outcome.content = {k: v for k, v in facts.items() if k != 'extra_hash'}
        return facts

    def _replace(self, current: dict[str, Any], desired: DesiredImage,
                 content: ContentRequest, reason: str) -> dict[str, Any]:
        if content.on_content_change == 'fail' or content.source is None:
            hint = ('Give filename or url with the new bytes' if content.source is None
                    else 'Set on_content_change=replace to upload a replacement image')
            raise ImageRequestError(
                f"Image {current['name']!r} ({current['id']}) needs new data: {reason}. "
                f'{hint}, or keep the image as it is.')
        carried = apply_patch(current, plan_patch(current, desired))
        replacement = DesiredImage(
            attributes={name: carried.get(name) for name in ATTRIBUTES if name != 'owner'},
            properties={k: v for k, v in properties_of(carried).items()
                        if not k.startswith('os_glance') and k != REPLACED_BY_PROPERTY},
            tags=list(carried.get('tags') or []))
        if self.outcome.content and not desired.attributes.get('disk_format'):
            replacement.attributes['disk_format'] = self.outcome.content.get('detected_format')
        # Keep another project's image in that project; the caller's own needs no owner.
        if current.get('owner') != self.caller_project_id:
            replacement.attributes['owner'] = current.get('owner')
        self._record(f"replace {current['id']}: {reason}")
        image = self._create(replacement, content)
        self._retire(current, image.get('id', '<new image>'))
        return image

    def _retire(self, old: dict[str, Any], new_id: str) -> None:
        stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
        operations = [
            {'op': 'replace', 'path': '/name', 'value': f"{old['name']}.replaced-{stamp}"},
            {'op': 'replace', 'path': '/os_hidden', 'value': True},
            {'op': 'add', 'path': f'/{REPLACED_BY_PROPERTY}', 'value': new_id},
        ]
        self._record(f"retire {old['id']} (renamed, hidden, {REPLACED_BY_PROPERTY}={new_id})")
        if self.check_mode:
            return
        self.glance.patch_image(old['id'], operations)
        restore = [{'op': 'replace', 'path': '/name', 'value': old['name']},
                   {'op': 'replace', 'path': '/os_hidden', 'value': bool(old.get('os_hidden'))},
                   {'op': 'remove', 'path': f'/{REPLACED_BY_PROPERTY}'}]
        self._undo.add(f"restore {old['id']}", lambda: self.glance.patch_image(old['id'], restore))

    def _create(self, desired: DesiredImage, content: ContentRequest) -> dict[str, Any]:
        protected = desired.attributes.get('protected')
        if not desired.attributes.get('disk_format') and content.source is not None \
                and content.import_method != 'web-download':
            desired.attributes['disk_format'] = self._detect_format(content)
        fields = creation_fields(desired)
        # A protected record could not be removed if the upload fails: protect it last.
        fields.pop('protected', None)
        if content.checksum:
            fields[SHA256_PROPERTY] = content.checksum
        self._ask('create', dict(simulated_new_image(desired), **fields), None,
                  self.outcome.content or content.prescan)
        self._record(f"create {fields.get('name')!r}")
        if self.check_mode:
            image = simulated_new_image(desired)
            if content.source is not None:
                self._upload(image, content)
            return image
        image = self.glance.create_image(fields)
        self._undo.add(f"delete {image['id']}", lambda: self.glance.delete_image(image['id']))
        if content.source is not None:
            image = self._upload(image, content)
        if protected:
            image = self._patch(image, [{'op': 'replace', 'path': '/protected', 'value': True}],
                                record=False)
        return image

    def _fill_queued(self, current: dict[str, Any], desired: DesiredImage,
                     content: ContentRequest) -> dict[str, Any]:
        operations = plan_patch(current, desired)
        self._ask('upload', apply_patch(current, operations), current, content.prescan)
        image = self._patch(current, operations, record=False)
        return self._upload(image, content)

    def _upload(self, image: dict[str, Any], content: ContentRequest) -> dict[str, Any]:
        method = content.import_method
        self._record(f"upload ({method}) from {content.source.label}")
        if method == 'web-download':
            self.outcome.content = {'sha256': content.checksum, 'verified': False}
            if self.check_mode:
                return image
            self.glance.start_import(image['id'], 'web-download', content.source.url)
            return self._wait_active(image['id'])
        if self.check_mode:
            # With the expected sha256 known, the header facts are enough to plan: the
            # whole read happens once, when the bytes are really sent.
            facts = (self.outcome.content
                     or (content.prescan and content.checksum and dict(content.prescan, sha256=content.checksum))
                     or self._scan_only(content, image))
            self._ask('upload', image, image, facts)
            return dict(image, status='active', size=facts.get('size'),
                        virtual_size=facts.get('virtual_size'),
                        disk_format=image.get('disk_format') or facts.get('detected_format'))
        scanner = ContentScanner(content.source)
        try:
            if method == 'glance-direct':
                self.glance.stage(image['id'], scanner.body())
            else:
                self.glance.upload(image['id'], scanner.body())
        except Exception as exc:
            if scanner.error is not None:
                raise SourceError(f'{scanner.error} ({scanner.size} bytes had reached Glance; '
                                  'the partial image is removed).') from exc
            raise
        facts = scanner.facts()
        self.outcome.content = facts
        _verify_checksum(facts, content)
        # The whole read can show what the header could not: ask again before keeping it.
        self._ask('upload', image, image, facts)
        self._patch(image, [{'op': 'add', 'path': f'/{SHA256_PROPERTY}', 'value': facts['sha256']}]
                    if image.get(SHA256_PROPERTY) != facts['sha256'] else [], record=False)
        if method == 'glance-direct':
            self.glance.start_import(image['id'], 'glance-direct')
        return self._wait_active(image['id'])

    def _detect_format(self, content: ContentRequest) -> str:
        # Glance refuses data for a record without a disk_format; when the user named none,
        # take the format the bytes really have (the header is enough: 8 MiB at most).
        facts = self.outcome.content
        if facts is None:
            facts = ContentScanner(content.source).consume(limit=8 * 1024 * 1024).facts()
        return facts.get('detected_format') or 'raw'

    def _wait_active(self, image_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            image = self.glance.get_image(image_id)
            status = image.get('status') if image else 'deleted'
            if status == 'active' or (not self.wait and status not in GONE_STATUSES):
                return image
            if status in GONE_STATUSES or status == 'queued' and _import_failed(image):
                raise ImageRequestError(
                    f'Image {image_id} did not become active (status {status}; '
                    f"{image.get('os_glance_failed_import') if image else ''}). It was removed.")
            if time.monotonic() > deadline:
                raise ImageRequestError(
                    f'Image {image_id} was still {status} after {self.timeout} s (option '
                    'timeout). It was removed; raise timeout and run again.')
            time.sleep(1)

    def _patch(self, image: dict[str, Any], operations: list[dict[str, Any]],
               record: bool = True) -> dict[str, Any]:
        if not operations:
            return image
        if record:
            after = apply_patch(image, operations)
            published = (after.get('visibility') in PUBLISHED_VISIBILITIES
                         and after.get('visibility') != image.get('visibility'))
            self._ask('publish' if published else 'update', after, image)
            self._record('update ' + ', '.join(sorted({op['path'][1:] for op in operations})))
        if self.check_mode or image.get('id') is None:
            return apply_patch(image, operations)
        return self.glance.patch_image(image['id'], operations)

    def _set_activation(self, image: dict[str, Any], deactivated: bool) -> dict[str, Any]:
        status = image.get('status')
        if deactivated and status == 'active':
            self._record(f"deactivate {image.get('id')}")
            if not self.check_mode:
                self.glance.deactivate(image['id'])
            return dict(image, status='deactivated')
        if deactivated and status != 'deactivated':
            raise ImageRequestError(
                f"Image {image.get('name')!r} is {status}: only an active image can be "
                'deactivated. Give filename or url so it has data first.')
        if not deactivated and status == 'deactivated':
            self._record(f"reactivate {image['id']}")
            if not self.check_mode:
                self.glance.reactivate(image['id'])
            return dict(image, status='active')
        return image

    def _ask(self, action: str, after: dict[str, Any], current: dict[str, Any] | None,
             content: dict[str, Any] | None = None) -> None:
        if self.gate is not None:
            self.gate.check(action, after, current, content)

    def _record(self, operation: str) -> None:
        self.outcome.changed = True
        self.outcome.operations.append(operation)


def _protection_ops(protect: bool) -> list[dict[str, Any]]:
    if protect:
        return [{'op': 'replace', 'path': '/protected', 'value': True},
                {'op': 'add', 'path': f'/{PROTECTED_WHILE_USED_PROPERTY}', 'value': 'true'}]
    return [{'op': 'replace', 'path': '/protected', 'value': False},
            {'op': 'remove', 'path': f'/{PROTECTED_WHILE_USED_PROPERTY}'}]


def _verify_checksum(facts: dict[str, Any], content: ContentRequest) -> None:
    if content.checksum and facts['sha256'] != content.checksum:
        raise ImageRequestError(
            f"sha256 of {content.source.label} is {facts['sha256']}, but option checksum "
            f'expects {content.checksum}. Check the file or the checksum; nothing was kept.')


def _glance_hash_matches(current: dict[str, Any], facts: dict[str, Any]) -> bool:
    extra = facts.get('extra_hash')
    return bool(extra and current.get('os_hash_value') and
                extra['algo'] == current.get('os_hash_algo') and
                extra['value'] == current['os_hash_value'])


def _import_failed(image: dict[str, Any]) -> bool:
    return bool(image.get('os_glance_failed_import'))


def property_value(key: str, value: Any) -> str:
    """Glance keeps extra properties as strings: say so instead of sending a 400."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ImageRequestError(f'properties.{key}: Glance stores properties as strings, got '
                            f'{type(value).__name__} {value!r}. Give a string or a number.')


def desired_image(params: dict[str, Any], owner_id: str | None,
                  kernel_id: str | None, ramdisk_id: str | None) -> DesiredImage:
    properties = {}
    for key, value in (params.get('properties') or {}).items():
        if key in BASE_FIELDS or key == SHA256_PROPERTY:
            hint = (f"use the {OPTION_FOR_FIELD[key]} option" if key in OPTION_FOR_FIELD
                    else 'Glance sets it itself')
            raise ImageRequestError(f'properties.{key}: {key!r} is not a free-form property: '
                                    f'{hint}, and remove it from properties.')
        properties[key] = property_value(key, value)
    for key, value in (('kernel_id', kernel_id), ('ramdisk_id', ramdisk_id)):
        if value is not None:
            if key in properties:
                raise ImageRequestError(f'properties.{key} and option {key[:-3]} both set '
                                        f'the {key}: give only the {key[:-3]} option.')
            properties[key] = value
    attributes = {name: params.get(option) for name, option in
                  (('name', 'name'), ('disk_format', 'disk_format'),
                   ('container_format', 'container_format'), ('min_disk', 'min_disk'),
                   ('min_ram', 'min_ram'), ('visibility', 'visibility'),
                   ('protected', 'protected'), ('os_hidden', 'hidden'))}
    attributes['owner'] = owner_id
    return DesiredImage(attributes=attributes, properties=properties, tags=params.get('tags'),
                        purge_properties=params.get('purge_properties', False),
                        purge_tags=params.get('purge_tags', False))


OPTION_FOR_FIELD = {'name': 'name', 'disk_format': 'disk_format',
                    'container_format': 'container_format', 'min_disk': 'min_disk',
                    'min_ram': 'min_ram', 'visibility': 'visibility', 'protected': 'protected',
                    'os_hidden': 'hidden', 'owner': 'owner', 'tags': 'tags', 'id': 'id',
                    'checksum': 'checksum'}
