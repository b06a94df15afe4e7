# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A server captured as an image, judged by the policy before and after, visible only once it passed.

Before any request that changes something, the policy is asked (action ``capture``) with
the server as Nova reports it and the image as it is meant to be. The capture is made
under a temporary name, marked with the server id and hidden; what Glance stored is then
judged (action ``upload``: Glance's own size, virtual size and hash, and the format read
from the stored data's header, never a property a member could have set) and only an
image that passes gets its name, visibility and properties. Anything this run made is
removed when a later step fails, is refused or times out.

A volume-backed server is captured through Cinder: its root volume (a clone of a fresh
snapshot when the volume is in use) is uploaded to Glance, so the image holds the bytes
instead of being Nova's zero-byte image that points at volume snapshots.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ._content import PRESCAN_BYTES, prescan_head
from ._errors import ImagegovError
from ._glance import GONE_STATUSES, Glance, is_uuid
from ._image import property_value, retired_name
from ._operations import Kind, OperationLog
from ._state import BASE_FIELDS, BOOKKEEPING_PREFIX
from ._undo import UndoLog

# The server an image was captured from; set when the capture is made, kept afterwards.
CAPTURED_FROM_PROPERTY = 'imagegov_captured_from'
# Set while a capture waits for its verdict (hidden, private, temporary name), with the name
# it is to get: a later run finds and finishes it.
PENDING_PROPERTY = 'imagegov_capture_pending'
PENDING_NAME_PROPERTY = 'imagegov_capture_name'
# Properties a capture inherits from the server's image (Nova and Cinder copy them) that
# would describe other bytes: openstacksdk's checksums of the uploaded file.
INHERITED_CHECKSUMS = ('owner_specified.openstack.sha256', 'owner_specified.openstack.md5')
COMPUTE_MICROVERSION = '2.45'  # createImage answers with the image id
VOLUME_MICROVERSION = '3.1'  # os-volume_upload_image takes visibility
POLL_SECONDS = 0.5
VOLUME_CLEANUP_SECONDS = 120
SUMMARY_FIELDS = (
    'id',
    'name',
    'status',
    'visibility',
    'os_hidden',
    'owner',
    'disk_format',
    'container_format',
    'size',
    'virtual_size',
    'os_hash_algo',
    'os_hash_value',
    CAPTURED_FROM_PROPERTY,
)


class CaptureError(ImagegovError):
    """The capture cannot be made or did not succeed; the message says what was left."""


class CaptureStillRunning(CaptureError):
    """A pending capture this run adopted was still being made when the timeout passed."""


# Nova's task states while it snapshots a server into an image.
_SNAPSHOT_TASKS = ('image_snapshot', 'image_snapshot_pending', 'image_pending_upload', 'image_uploading')


def _in_progress(image: dict[str, Any] | None, server: dict[str, Any]) -> bool:
    """Whether a pending capture is being made: Nova snapshotting the server, or Cinder
    uploading into the image (saving). A pending image nobody makes (a dead run's, or one a
    member planted with the marks) is not, and is removed at the timeout as before."""
    return server.get('OS-EXT-STS:task_state') in _SNAPSHOT_TASKS or (image or {}).get('status') == 'saving'


class CloudCallError(CaptureError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ' '.join(re.sub(r'<[^>]+>', ' ', response.text).split())[:300] or str(response.reason)
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get('message'):
                return str(value['message'])
        if body.get('message'):
            return str(body['message'])
    return str(body)[:300]


class _Api:
    """Plain JSON calls through one of the SDK's authenticated adapters, counted."""

    def __init__(self, adapter: Any, service: str, microversion: str) -> None:
        self.adapter = adapter
        self.service = service
        self.microversion = microversion
        self.request_count = 0

    def call(self, method: str, path: str, action: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        self.request_count += 1
        response = self.adapter.request(path, method, microversion=self.microversion, **kwargs)
        if response.status_code not in expect:
            raise CloudCallError(
                f'{action} failed: {self.service} answered HTTP {response.status_code}: {_error_text(response)}',
                response.status_code,
            )
        return response


class Nova(_Api):
    def __init__(self, conn: Any) -> None:
        super().__init__(conn.compute, 'Nova', COMPUTE_MICROVERSION)

    def server(self, server_id: str) -> dict[str, Any] | None:
        response = self.call('GET', f'/servers/{server_id}', f'Reading server {server_id}', expect=(200, 404))
        return response.json()['server'] if response.status_code == 200 else None

    def find_server(self, name_or_id: str) -> dict[str, Any]:
        """One server of the caller's project by id, else by exact name (Nova reads the name
        filter as a regular expression: escaped and anchored here, then compared)."""
        if is_uuid(name_or_id):
            server = self.server(name_or_id)
            if server is not None:
                return server
        body = self.call(
            'GET', '/servers/detail', f'Looking up server {name_or_id!r}', params={'name': f'^{re.escape(name_or_id)}$'}
        ).json()
        found = [server for server in body.get('servers', []) if server.get('name') == name_or_id]
        if not found:
            raise CaptureError(
                f'No server {name_or_id!r} (by id, or by name in project of this account) is visible. '
                'Check the name or give its id.'
            )
        if len(found) > 1:
            ids = ', '.join(server['id'] for server in found)
            raise CaptureError(f'{len(found)} servers are named {name_or_id!r} ({ids}): give the id of one.')
        return found[0]

    def create_image(self, server_id: str, name: str, metadata: dict[str, str]) -> str:
        response = self.call(
            'POST',
            f'/servers/{server_id}/action',
            f'Nova createImage of server {server_id}',
            expect=(202,),
            json={'createImage': {'name': name, 'metadata': metadata}},
        )
        return response.json()['image_id']

    def last_failure(self, server_id: str) -> str:
        """What Nova recorded about the server's last createImage, for an error message."""
        try:
            actions = self.call('GET', f'/servers/{server_id}/os-instance-actions', 'Listing instance actions').json()
        except CloudCallError:
            return ''
        for action in actions.get('instanceActions', []):
            if action.get('action') == 'createImage':
                message = f': {action["message"]}' if action.get('message') else ''
                return f" (Nova's record of the createImage request: {action.get('request_id')}{message})"
        return ''


class Cinder(_Api):
    def __init__(self, conn: Any) -> None:
        super().__init__(conn.block_storage, 'Cinder', VOLUME_MICROVERSION)

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        response = self.call('GET', f'/volumes/{volume_id}', f'Reading volume {volume_id}', expect=(200, 404))
        return response.json()['volume'] if response.status_code == 200 else None

    def snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        response = self.call('GET', f'/snapshots/{snapshot_id}', f'Reading snapshot {snapshot_id}', expect=(200, 404))
        return response.json()['snapshot'] if response.status_code == 200 else None

    def create_snapshot(self, volume_id: str, name: str) -> dict[str, Any]:
        return self.call(
            'POST',
            '/snapshots',
            f'Snapshotting volume {volume_id}',
            expect=(202,),
            json={'snapshot': {'volume_id': volume_id, 'name': name, 'force': True}},
        ).json()['snapshot']

    def create_volume(self, snapshot_id: str, size: int, name: str) -> dict[str, Any]:
        return self.call(
            'POST',
            '/volumes',
            f'Creating a volume from snapshot {snapshot_id}',
            expect=(202,),
            json={'volume': {'snapshot_id': snapshot_id, 'size': size, 'name': name}},
        ).json()['volume']

    def upload_to_image(self, volume_id: str, name: str, disk_format: str) -> str:
        body = {
            'os-volume_upload_image': {
                'image_name': name,
                'disk_format': disk_format,
                'container_format': 'bare',
                'visibility': 'private',
                'force': False,
            }
        }
        response = self.call(
            'POST',
            f'/volumes/{volume_id}/action',
            f'Uploading volume {volume_id} to an image',
            expect=(202,),
            json=body,
        )
        return response.json()['os-volume_upload_image']['image_id']

    def volumes_named(self, name: str) -> list[dict[str, Any]]:
        """Volumes of the caller's project with exactly this name."""
        body = self.call('GET', '/volumes/detail', f'Looking up volume {name!r}', params={'name': name}).json()
        return [volume for volume in body.get('volumes', []) if volume.get('name') == name]

    def snapshots_named(self, name: str) -> list[dict[str, Any]]:
        """Snapshots of the caller's project with exactly this name."""
        body = self.call('GET', '/snapshots/detail', f'Looking up snapshot {name!r}', params={'name': name}).json()
        return [snapshot for snapshot in body.get('snapshots', []) if snapshot.get('name') == name]

    def delete_volume(self, volume_id: str) -> None:
        self.call('DELETE', f'/volumes/{volume_id}', f'Deleting volume {volume_id}', expect=(202, 404))

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.call('DELETE', f'/snapshots/{snapshot_id}', f'Deleting snapshot {snapshot_id}', expect=(202, 404))


def server_facts(server: dict[str, Any]) -> dict[str, Any]:
    """The server as the policy sees it: Nova's own record, nothing the caller states."""
    image = server.get('image')
    image_id = image.get('id') if isinstance(image, dict) else None
    return {
        'id': server['id'],
        'name': server.get('name'),
        'status': server.get('status'),
        'task_state': server.get('OS-EXT-STS:task_state'),
        'project_id': server.get('tenant_id'),
        'user_id': server.get('user_id'),
        'image_id': image_id,
        'volume_backed': not image_id,
        'volumes': [volume['id'] for volume in server.get('os-extended-volumes:volumes_attached') or []],
    }


def image_summary(image: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if image is None else {key: image.get(key) for key in SUMMARY_FIELDS if key in image}


def user_properties(properties: dict[str, Any] | None) -> dict[str, str]:
    found = {}
    for key, value in (properties or {}).items():
        if key in BASE_FIELDS or str(key).startswith(BOOKKEEPING_PREFIX):
            raise CaptureError(
                f'properties.{key}: {key!r} is not a free-form property '
                f'({"bookkeeping of this collection" if key not in BASE_FIELDS else "an image field"}); remove it.'
            )
        found[key] = property_value(key, value)
    return found


@dataclass
class CaptureRequest:
    server: str
    name: str
    visibility: str
    properties: dict[str, str]
    force: bool = False


@dataclass
class CaptureOutcome:
    changed: bool = False
    image: dict[str, Any] | None = None
    server: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    operations: OperationLog = field(default_factory=OperationLog)
    pending: bool = False


class Capture:
    def __init__(
        self,
        glance: Glance,
        nova: Nova,
        cinder_factory: Callable[[], Cinder],
        gate: Any,
        caller: dict[str, Any],
        check_mode: bool,
        wait: bool,
        timeout: int,
    ) -> None:
        self.glance = glance
        self.nova = nova
        self._cinder_factory = cinder_factory
        self._cinder: Cinder | None = None
        self.gate = gate
        self.caller = caller
        self.check_mode = check_mode
        self.wait = wait
        self.timeout = timeout
        self.outcome = CaptureOutcome()
        self._undo = UndoLog(self.outcome.operations)
        # Cinder's snapshot and clone of a volume-backed server's root volume: removed
        # whatever the outcome, once the upload let go of them.
        self._scratch = UndoLog(self.outcome.operations)
        self._deadline = 0.0

    @property
    def cinder_requests(self) -> int:
        return 0 if self._cinder is None else self._cinder.request_count

    @property
    def cinder(self) -> Cinder:
        if self._cinder is None:
            self._cinder = self._cinder_factory()
        return self._cinder

    # -- the run --------------------------------------------------------------------
    def run(self, request: CaptureRequest) -> CaptureOutcome:
        self._deadline = time.monotonic() + self.timeout
        self._joined = False  # waiting for another run's capture (Nova refused a second one)
        server = self.nova.find_server(request.server)
        facts = server_facts(server)
        self.outcome.server = facts
        finished, pending = self._captures_of(facts['id'], request.name)
        if finished and not request.force:
            self.outcome.image = finished[-1]
            self.outcome.operations.add(
                Kind.NOTE,
                f'{finished[-1]["id"]} was captured from server {facts["id"]} already (force: true captures anew)',
            )
            return self.outcome
        desired = self._desired(request, facts)
        self.gate.check('capture', desired, None, server=facts)
        if facts['status'] == 'ERROR':
            raise CaptureError(
                f'Server {facts["name"]} ({facts["id"]}) is in status ERROR: Nova cannot capture it. Nothing was made.'
            )
        self.outcome.changed = True
        if self.check_mode:
            self.outcome.image = dict(desired, status='active')
            self.outcome.operations.add(Kind.CREATE, f'capture server {facts["id"]} as {request.name!r}')
            return self.outcome
        try:
            image = pending[0] if pending else self._start(request, facts)
            if pending:
                self.outcome.operations.add(Kind.NOTE, f'finishing the pending capture {image["id"]}')
                self._undo.add(f'delete {image["id"]}', lambda: self.glance.delete_image(image['id']))
                if facts['volume_backed']:
                    self._adopt_scratch(image, facts)
            if not self.wait:
                self.outcome.pending = True
                self.outcome.image = image
                return self.outcome
            stored = self._await_image(image['id'], facts, adopted=bool(pending))
            self._judge(stored, request, facts)
            self._check_name_free(stored, request, facts, finished)
            for old in finished:
                self._retire(old, stored)
            self.outcome.image = self._publish(stored, request)
        except CaptureStillRunning:
            # Another run's capture (or one a wait=false run left), still being made when this
            # run's timeout passed: left pending, with its scratch, for the run that finishes
            # it; deleting it would fail that run's capture under it.
            self._undo.forget(f'delete {image["id"]}')
            self._scratch.forget()
            self._undo.rollback()
            raise
        except BaseException:
            self._undo.rollback()
            raise
        finally:
            self._scratch.rollback()
        return self.outcome

    def _desired(self, request: CaptureRequest, facts: dict[str, Any]) -> dict[str, Any]:
        return dict(
            request.properties,
            name=request.name,
            visibility=request.visibility,
            os_hidden=False,
            owner=self.caller['project_id'],
            **{CAPTURED_FROM_PROPERTY: facts['id']},
        )

    def _captures_of(self, server_id: str, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(finished captures of the server under this name, pending ones), oldest first; an
        image of this name that was not captured from this server is an error."""
        owner = self.caller['project_id']
        # Glance filters on the property; compared here again all the same.
        listed = self.glance.all_images(
            {'owner': owner, 'visibility': 'all', CAPTURED_FROM_PROPERTY: server_id}, live=True
        )
        marked = sorted(
            (image for image in listed if image.get(CAPTURED_FROM_PROPERTY) == server_id),
            key=lambda image: (str(image.get('created_at')), image['id']),
        )
        finished = [i for i in marked if i.get(PENDING_PROPERTY) != 'true' and i.get('name') == name]
        pending = [i for i in marked if i.get(PENDING_PROPERTY) == 'true' and i.get(PENDING_NAME_PROPERTY) == name]
        others = [
            image
            for image in self.glance.images_named(name, owner=owner)
            if image.get(CAPTURED_FROM_PROPERTY) != server_id
        ]
        if others:
            raise CaptureError(
                f'An image named {name!r} that was not captured from server {server_id} exists in this project '
                f'({", ".join(image["id"] for image in others)}). Choose another name. Nothing was made.'
            )
        return finished, pending

    # -- making the capture ---------------------------------------------------------
    def _start(self, request: CaptureRequest, facts: dict[str, Any]) -> dict[str, Any]:
        temporary = retired_name(request.name, time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()), 'capturing')
        marks = {CAPTURED_FROM_PROPERTY: facts['id'], PENDING_PROPERTY: 'true', PENDING_NAME_PROPERTY: request.name}
        if facts['volume_backed']:
            image_id = self._upload_root_volume(facts, temporary)
        else:
            try:
                image_id = self.nova.create_image(facts['id'], temporary, marks)
            except CloudCallError as exc:
                if exc.status_code == 409:
                    return self._concurrent(facts, request, exc)
                raise
        self._undo.add(f'delete {image_id}', lambda: self.glance.delete_image(image_id))
        self.outcome.operations.add(Kind.CREATE, f'capture server {facts["id"]} as image {image_id} ({temporary!r})')
        # Nova and Cinder make the image private already; hide it from listings until it passed.
        ops = [
            {'op': 'replace', 'path': '/os_hidden', 'value': True},
            {'op': 'replace', 'path': '/visibility', 'value': 'private'},
        ]
        if facts['volume_backed']:  # Cinder cannot set properties at creation
            ops += [{'op': 'add', 'path': f'/{key}', 'value': value} for key, value in marks.items()]
        image = self.glance.patch_image(image_id, ops)
        self.outcome.operations.add(Kind.NOTE, f'hid {image_id} until the policy judged it')
        return image

    def _concurrent(self, facts: dict[str, Any], request: CaptureRequest, exc: CloudCallError) -> dict[str, Any]:
        """Nova refuses a second createImage while one runs (409): when it is another run's
        capture under the same name, wait for that one instead."""
        until = min(self._deadline, time.monotonic() + 30)
        while time.monotonic() < until:
            _finished, pending = self._captures_of(facts['id'], request.name)
            if pending:
                self.outcome.operations.add(Kind.NOTE, f'another run is capturing: waiting for {pending[0]["id"]}')
                self._joined = True
                return pending[0]
            time.sleep(POLL_SECONDS)
        raise CaptureError(f'{exc} (the server is busy; run again when its task is done). Nothing was made.')

    def _await_image(self, image_id: str, facts: dict[str, Any], adopted: bool = False) -> dict[str, Any]:
        """Wait until the image is active and the server's task is done; any error state or
        the timeout removes the image (by the caller's rollback), except a pending capture this
        run adopted and is still being made at the timeout (CaptureStillRunning)."""
        while True:
            image = self.glance.get_image(image_id)
            status = image.get('status') if image else 'deleted'
            server = self.nova.server(facts['id'])
            if server is None:
                raise CaptureError(f'Server {facts["id"]} was deleted during the capture. {self._left(image_id)}')
            if server.get('status') == 'ERROR':
                fault = (server.get('fault') or {}).get('message') or 'no fault recorded'
                raise CaptureError(
                    f'Server {facts["name"]} ({facts["id"]}) went to status ERROR during the capture ({fault}). '
                    f'{self._left(image_id)}'
                )
            if status in GONE_STATUSES or status == 'deactivated':
                raise CaptureError(
                    f'The capture of server {facts["name"]} ({facts["id"]}) failed: image {image_id} went {status}'
                    f'{self.nova.last_failure(facts["id"]) if not facts["volume_backed"] else ""}. Nothing was kept.'
                )
            busy = server.get('OS-EXT-STS:task_state') is not None
            if status == 'active' and not busy:
                return image
            if time.monotonic() > self._deadline and (self._joined or (adopted and _in_progress(image, server))):
                raise CaptureStillRunning(
                    f'The pending capture {image_id} of server {facts["name"]} ({facts["id"]}) was not done after '
                    f'{self.timeout} s (option timeout; image {status}, server task '
                    f'{server.get("OS-EXT-STS:task_state")}). It was left pending, hidden and private: the run that '
                    'started it, or a later run, finishes it; raise timeout to wait for it longer.'
                )
            if time.monotonic() > self._deadline:
                raise CaptureError(
                    f'The capture of server {facts["name"]} ({facts["id"]}) was not done after {self.timeout} s '
                    f'(option timeout; image {image_id} {status}, server task {server.get("OS-EXT-STS:task_state")}). '
                    f'Image {image_id} was removed; raise timeout and run again.'
                )
            time.sleep(POLL_SECONDS)

    def _left(self, image_id: str) -> str:
        """What a failure does to the capture: removed, unless it is another run's that this run
        only waited for (Nova refused a second one), which that run removes."""
        if self._joined:
            return f'Image {image_id} is the capture another run started: that run removes it.'
        return f'Image {image_id} was removed.'

    # -- judging and publishing -----------------------------------------------------
    def stored_facts(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Facts of what Glance stored: its own size, virtual size and hash, and the format and
        safety read from the stored data's header (a Range request, at most PRESCAN_BYTES)."""
        total, chunks = self.glance.download(stored['id'], PRESCAN_BYTES)
        facts = prescan_head(chunks, total)
        sizes = [size for size in (stored.get('virtual_size'), facts.get('virtual_size')) if size is not None]
        facts.update(
            size=stored.get('size'),
            virtual_size=max(sizes) if sizes else None,
            os_hash_algo=stored.get('os_hash_algo'),
            os_hash_value=stored.get('os_hash_value'),
        )
        return facts

    def _judge(self, stored: dict[str, Any], request: CaptureRequest, facts: dict[str, Any]) -> None:
        if not stored.get('size') or not stored.get('os_hash_value'):
            raise CaptureError(
                f'The capture of server {facts["id"]} holds no data (image {stored["id"]}, size {stored.get("size")}): '
                f'nothing to judge or keep. {self._left(stored["id"])}'
            )
        content = self.stored_facts(stored)
        self.outcome.content = content
        # Judged as it will be published: without what publishing removes (the policy reads a
        # field the image lacks from the current one, so neither has them).
        dropped = {PENDING_PROPERTY, PENDING_NAME_PROPERTY, *self._inherited(stored, request)}
        current = {key: value for key, value in stored.items() if key not in dropped}
        final = dict(current, **self._desired(request, facts))
        self.gate.check('upload', final, current, content, data_source={'kind': 'glance'}, server=facts)

    def _check_name_free(
        self, stored: dict[str, Any], request: CaptureRequest, facts: dict[str, Any], finished: list[dict[str, Any]]
    ) -> None:
        """The name checked before the capture may have been taken while it ran (another
        image, another server's capture under the same name): publishing would make two."""
        known = {stored['id'], *(image['id'] for image in finished)}
        taken = [
            image
            for image in self.glance.images_named(request.name, owner=self.caller['project_id'])
            if image['id'] not in known and image.get(CAPTURED_FROM_PROPERTY) != facts['id']
        ]
        if taken:
            raise CaptureError(
                f'An image named {request.name!r} that was not captured from server {facts["id"]} appeared while '
                f'the capture ran ({", ".join(image["id"] for image in taken)}). The capture {stored["id"]} was '
                'removed; choose another name, or remove that image, and run again.'
            )

    def _publish(self, stored: dict[str, Any], request: CaptureRequest) -> dict[str, Any]:
        """One patch: the requested name, visibility and properties, shown in listings, the
        pending marks and inherited checksums of other bytes removed."""
        ops: list[dict[str, Any]] = [
            {'op': 'replace', 'path': '/name', 'value': request.name},
            {'op': 'replace', 'path': '/visibility', 'value': request.visibility},
            {'op': 'replace', 'path': '/os_hidden', 'value': False},
        ]
        for key, value in request.properties.items():
            ops.append({'op': 'replace' if key in stored else 'add', 'path': f'/{key}', 'value': value})
        ops += [{'op': 'remove', 'path': f'/{key}'} for key in self._inherited(stored, request)]
        image = self.glance.patch_image(stored['id'], ops)
        self._undo = UndoLog(self.outcome.operations)  # published: nothing to roll back any more
        self.outcome.operations.add(
            Kind.UPDATE,
            f'published {image["id"]} as {request.name!r} ({request.visibility}) after the policy passed it',
        )
        return image

    @staticmethod
    def _inherited(stored: dict[str, Any], request: CaptureRequest) -> list[str]:
        """Properties inherited from the server's image (or written on the hidden capture)
        that would describe other bytes or another image's history (this collection's
        bookkeeping): removed when published, so never counted by the verdict either. Only
        the capture's own mark stays."""
        return sorted(
            key
            for key in stored
            if (
                key in INHERITED_CHECKSUMS
                or (str(key).startswith(BOOKKEEPING_PREFIX) and key != CAPTURED_FROM_PROPERTY)
            )
            and key not in request.properties
        )

    def _retire(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """An earlier capture under the same name (force): renamed and hidden, never deleted."""
        name = retired_name(old['name'], time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()), 'replaced')
        after = dict(old, name=name, os_hidden=True)
        self.gate.check('retire', after, old)
        self.glance.patch_image(
            old['id'],
            [{'op': 'replace', 'path': '/name', 'value': name}, {'op': 'replace', 'path': '/os_hidden', 'value': True}],
        )
        self.outcome.operations.add(
            Kind.RETIRE, f'retire {old["id"]} (renamed {name!r}, hidden), replaced by {new["id"]}'
        )

    # -- volume-backed servers ------------------------------------------------------
    def root_volume(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The server's boot volume: the attached volume Cinder marks bootable on the first
        device name (vda before vdb)."""
        candidates = []
        for volume_id in facts['volumes']:
            volume = self.cinder.volume(volume_id)
            if volume is None:
                continue
            devices = [
                a.get('device') or '' for a in volume.get('attachments') or [] if a.get('server_id') == facts['id']
            ]
            candidates.append((str(volume.get('bootable')).lower() != 'true', min(devices or ['~']), volume))
        if not candidates:
            raise CaptureError(
                f'Server {facts["id"]} has no image and no visible root volume: nothing to capture. Nothing was made.'
            )
        return sorted(candidates, key=lambda c: (c[0], c[1]))[0][2]

    def _upload_root_volume(self, facts: dict[str, Any], temporary: str) -> str:
        """The root volume's bytes as a new image: uploaded directly when the volume is not in
        use, else from a volume cloned from a fresh snapshot. The snapshot and the clone are
        removed when the upload is done or anything fails."""
        root = self.root_volume(facts)
        self.outcome.server['root_volume'] = root['id']
        # qcow2 (Cinder converts, sparse) unless the volume was made from a raw image.
        disk_format = 'raw' if (root.get('volume_image_metadata') or {}).get('disk_format') == 'raw' else 'qcow2'
        source = root
        if root.get('status') != 'available':
            snapshot = self.cinder.create_snapshot(root['id'], f'{temporary}.snapshot')
            self._scratch.add(f'delete snapshot {snapshot["id"]}', lambda: self._remove_snapshot(snapshot['id']))
            self.outcome.operations.add(Kind.NOTE, f'snapshot {snapshot["id"]} of root volume {root["id"]}')
            self._await_resource(self.cinder.snapshot, snapshot['id'], 'snapshot', 'available')
            clone = self.cinder.create_volume(snapshot['id'], root['size'], f'{temporary}.volume')
            self._scratch.add(f'delete volume {clone["id"]}', lambda: self._remove_volume(clone['id']))
            self.outcome.operations.add(Kind.NOTE, f'volume {clone["id"]} cloned from snapshot {snapshot["id"]}')
            source = self._await_resource(self.cinder.volume, clone['id'], 'volume', 'available')
        return self.cinder.upload_to_image(source['id'], temporary, disk_format)

    def _adopt_scratch(self, image: dict[str, Any], facts: dict[str, Any]) -> None:
        """The snapshot and clone a run with wait=false made for this pending capture, still in
        Cinder's hands when that run ended: removed by the run that finishes the capture. Found
        by the names that run gave them, in the caller's project only, and taken only when they
        are what it made: a snapshot of one of the server's volumes, and a detached volume cloned
        from that snapshot or from one since deleted (that run deletes the snapshot it can)."""
        temporary = str(image.get('name') or '')
        if not re.fullmatch(r'.+\.capturing-\d{8}T\d{6}Z', temporary):
            return
        snapshots = [
            snapshot
            for snapshot in self.cinder.snapshots_named(f'{temporary}.snapshot')
            if snapshot.get('volume_id') in facts['volumes']
        ]
        taken = {snapshot['id'] for snapshot in snapshots}
        clones = [
            volume
            for volume in self.cinder.volumes_named(f'{temporary}.volume')
            if volume.get('snapshot_id')
            and not volume.get('attachments')
            and (volume['snapshot_id'] in taken or self.cinder.snapshot(volume['snapshot_id']) is None)
        ]
        for snapshot in snapshots:
            self._scratch.add(f'delete snapshot {snapshot["id"]}', partial(self._remove_snapshot, snapshot['id']))
        for clone in clones:
            self._scratch.add(f'delete volume {clone["id"]}', partial(self._remove_volume, clone['id']))
        if snapshots or clones:
            found = ', '.join([f'snapshot {s["id"]}' for s in snapshots] + [f'volume {v["id"]}' for v in clones])
            self.outcome.operations.add(Kind.NOTE, f'{found} of the pending capture to be removed once it is done')

    def _await_resource(self, read: Callable[[str], Any], rid: str, what: str, wanted: str) -> dict[str, Any]:
        while True:
            found = read(rid)
            status = found.get('status') if found else 'deleted'
            if status == wanted:
                return found
            if status in ('error', 'deleted', 'error_deleting'):
                raise CaptureError(
                    f'Cinder {what} {rid} went {status} during the capture. What this run made was removed.'
                )
            if time.monotonic() > self._deadline:
                raise CaptureError(
                    f'Cinder {what} {rid} was still {status} after {self.timeout} s (option timeout). '
                    'What this run made was removed; raise timeout and run again.'
                )
            time.sleep(POLL_SECONDS)

    def _remove_volume(self, volume_id: str) -> None:
        """Delete a temporary volume once Cinder lets go of it (uploading, creating), and
        wait until it is gone: its snapshot cannot be deleted before."""
        deadline = time.monotonic() + VOLUME_CLEANUP_SECONDS
        while True:
            volume = self.cinder.volume(volume_id)
            if volume is None:
                return
            if volume.get('status') in ('available', 'error', 'error_restoring', 'error_extending'):
                self.cinder.delete_volume(volume_id)
            elif volume.get('status') == 'error_deleting':
                raise CaptureError(f'Cinder could not delete temporary volume {volume_id} (error_deleting).')
            if time.monotonic() > deadline:
                raise CaptureError(
                    f'temporary volume {volume_id} still {volume.get("status")} after {VOLUME_CLEANUP_SECONDS} s'
                )
            time.sleep(POLL_SECONDS)

    def _remove_snapshot(self, snapshot_id: str) -> None:
        deadline = time.monotonic() + VOLUME_CLEANUP_SECONDS
        while True:
            snapshot = self.cinder.snapshot(snapshot_id)
            if snapshot is None:
                return
            if snapshot.get('status') in ('available', 'error'):
                self.cinder.delete_snapshot(snapshot_id)
            if time.monotonic() > deadline:
                raise CaptureError(
                    f'temporary snapshot {snapshot_id} still {snapshot.get("status")} after {VOLUME_CLEANUP_SECONDS} s'
                )
            time.sleep(POLL_SECONDS)
