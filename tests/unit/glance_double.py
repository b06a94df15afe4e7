"""An in-memory Glance for unit tests of the reconcilers (integration tests use the real one).

It keeps Glance's rules that the reconcilers rely on: ids are never reused (not even after a
delete), creating an existing id is a 409, a JSON-patch `remove` of a missing property is a
409, data is hashed with sha512 as Glance does, and member listings only exist for shared
images. Every call is recorded; ``fail_on(call)`` makes the next such call fail, and
``rewrite`` lets a test play Glance's import plugins.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.imagegov.openstack.plugins.module_utils._glance import Glance, GlanceConflict, GlanceError

_CLOCK = itertools.count(1)


def _now() -> str:
    return f'2026-11-25T12:{next(_CLOCK) % 60:02d}:00Z'


class GlanceDouble(Glance):
    """Glance's HTTP calls over dicts; the lookups built on them (live_image, images_named,
    find) are the real ones."""

    def __init__(self, owner: str = 'p-alpha') -> None:  # pylint: disable=super-init-not-called
        self.owner = owner
        self.images: dict[str, dict[str, Any]] = {}
        self.data: dict[str, bytes] = {}
        self.staged: dict[str, bytes] = {}
        self.members: dict[str, dict[str, str]] = {}
        self.used_ids: set[str] = set()
        self.web: dict[str, bytes] = {}
        self.calls: list[tuple] = []
        self.request_count = 0
        self.rewrite: Callable[[bytes], bytes] | None = None
        self.corrupt_upload = False
        self.remote: GlanceDouble | None = None  # the other region glance-download reads from
        self.methods = ['glance-direct', 'web-download', 'copy-image']
        self.stores: list[str] | None = None
        self.tasks: dict[str, list[dict]] = {}
        # image id -> statuses the next reads see, one each: another run uploading into it.
        self.status_script: dict[str, list[str]] = {}
        self._failures: dict[str, int] = {}

    # -- test helpers ---------------------------------------------------------------
    def fail_on(self, call: str, times: int = 1) -> None:
        self._failures[call] = times

    def add(self, name: str, data: bytes | None = None, image_id: str | None = None, **fields: Any) -> dict:
        """An image as if another tool (or an earlier run) made it."""
        image_id = image_id or str(uuid.uuid4())
        image = {
            'id': image_id,
            'name': name,
            'owner': fields.pop('owner', self.owner),
            'status': 'queued',
            'visibility': 'shared',
            'protected': False,
            'os_hidden': False,
            'tags': [],
            'disk_format': 'raw',
            'container_format': 'bare',
            'created_at': _now(),
            'size': None,
            'virtual_size': None,
            'os_hash_algo': None,
            'os_hash_value': None,
        }
        status = fields.pop('status', None)
        image.update(fields)
        self.images[image_id] = image
        self.used_ids.add(image_id)
        if data is not None:
            self._store(image_id, data)
        if status:
            image['status'] = status
        return copy.deepcopy(image)

    def mutations(self) -> list[tuple]:
        return [call for call in self.calls if call[0] not in ('get', 'list', 'list_members', 'download')]

    def _log(self, *call: Any) -> None:
        self.calls.append(call)
        self.request_count += 1
        left = self._failures.get(call[0], 0)
        if left:
            self._failures[call[0]] = left - 1
            raise GlanceError(call[0], 500, f'{call[0]} failed (test)')

    def _store(self, image_id: str, data: bytes) -> None:
        image = self.images[image_id]
        self.data[image_id] = data
        image.update(
            status='active',
            size=len(data),
            virtual_size=len(data),
            os_hash_algo='sha512',
            os_hash_value=hashlib.sha512(data).hexdigest(),
            checksum=hashlib.md5(data).hexdigest(),
        )

    # -- the Glance interface ----------------------------------------------------------
    def iter_images(self, filters: Any = ()) -> Iterable[dict]:
        pairs = dict(filters.items() if isinstance(filters, dict) else filters)
        self._log('list', tuple(sorted(pairs.items())))
        hidden = pairs.get('os_hidden')
        for image in list(self.images.values()):
            if image['status'] in ('deleted',):
                continue
            if hidden is not None and str(bool(image.get('os_hidden'))).lower() != hidden:
                continue
            if any(
                pairs.get(key) is not None and image.get(key) != pairs[key]
                for key in ('name', 'owner', 'id', 'kernel_id', 'ramdisk_id')
            ):
                continue
            yield copy.deepcopy(image)

    def get_image(self, image_id: str) -> dict | None:
        self._log('get', image_id)
        image = self.images.get(image_id)
        if image is not None and self.status_script.get(image_id):
            image['status'] = self.status_script[image_id].pop(0)
        return None if image is None or image['status'] == 'deleted' else copy.deepcopy(image)

    def create_image(self, fields: dict[str, Any]) -> dict:
        self._log('create', fields.get('name'), fields.get('id'))
        image_id = fields.get('id') or str(uuid.uuid4())
        if image_id in self.used_ids:
            raise GlanceConflict('create', 409, f'Image ID {image_id} already exists!')
        fields = {key: value for key, value in fields.items() if key != 'id'}
        owner = fields.pop('owner', self.owner)
        return self.add(fields.pop('name'), image_id=image_id, owner=owner, **fields)

    def patch_image(self, image_id: str, operations: list[dict]) -> dict:
        self._log('patch', image_id, tuple(op['path'] for op in operations))
        image = copy.deepcopy(self.images[image_id])
        for operation in operations:
            key = operation['path'][1:]
            if operation['op'] == 'remove':
                if key not in image:
                    raise GlanceConflict('patch', 409, f'Property {key} does not exist.')
                del image[key]
            else:
                image[key] = copy.deepcopy(operation['value'])
        self.images[image_id] = image
        return copy.deepcopy(image)

    def upload(self, image_id: str, chunks: Any, store: str | None = None) -> None:
        self._log('upload', image_id, *([store] if store else []))
        data = b''.join(_chunks(chunks))
        self._store(image_id, data + (b'!' if self.corrupt_upload else b''))

    def stage(self, image_id: str, chunks: Any) -> None:
        self._log('stage', image_id)
        self.staged[image_id] = b''.join(_chunks(chunks))
        self.images[image_id]['status'] = 'uploading'

    def start_import(self, image_id: str, method: str, uri: str | None = None, method_fields=None, extra=None) -> None:
        self._log('import', image_id, method, *([extra] if extra else []))
        if method == 'glance-download':  # another region's Glance: ``remote``
            if self.remote is None:  # Glance cannot reach it: the task fails, the image stays queued
                self.tasks[image_id] = [{'status': 'failure', 'message': 'URI does not pass filtering'}]
                return
            data = self.remote.data[(method_fields or {})['glance_image_id']]
        else:
            data = self.staged.pop(image_id) if method == 'glance-direct' else self.web[uri]
        self._store(image_id, self.rewrite(data) if self.rewrite else data)

    def import_methods(self) -> list[str]:
        self._log('get', 'info/import')
        return list(self.methods)

    def image_tasks(self, image_id: str) -> list[dict]:
        self._log('get', f'tasks/{image_id}')
        return list(self.tasks.get(image_id, []))

    def store_ids(self) -> list[str] | None:
        self._log('get', 'info/stores')
        return self.stores

    def download(self, image_id: str, first_bytes: int | None = None, offset: int = 0):
        self._log('download', image_id, *([offset] if offset else []))
        data = self.data[image_id]
        return len(data), iter([data[:first_bytes] if first_bytes else data[offset:]])

    def deactivate(self, image_id: str) -> None:
        self._log('deactivate', image_id)
        self.images[image_id]['status'] = 'deactivated'

    def reactivate(self, image_id: str) -> None:
        self._log('reactivate', image_id)
        self.images[image_id]['status'] = 'active'

    def list_members(self, image_id: str) -> list[dict]:
        self._log('list_members', image_id)
        return [
            {'member_id': member, 'status': status} for member, status in sorted(self.members.get(image_id, {}).items())
        ]

    def add_member(self, image_id: str, member_id: str) -> dict:
        self._log('add_member', image_id, member_id)
        self.members.setdefault(image_id, {}).setdefault(member_id, 'pending')
        return {'member_id': member_id, 'status': self.members[image_id][member_id]}

    def remove_member(self, image_id: str, member_id: str) -> None:
        self._log('remove_member', image_id, member_id)
        self.members.get(image_id, {}).pop(member_id, None)

    def update_member(self, image_id: str, member_id: str, status: str) -> dict:
        self._log('update_member', image_id, member_id, status)
        self.members[image_id][member_id] = status
        return {'member_id': member_id, 'status': status}

    def delete_image(self, image_id: str) -> None:
        self._log('delete', image_id)
        if image_id in self.images:
            self.images[image_id]['status'] = 'deleted'


def _chunks(body: Any) -> Iterable[bytes]:
    if hasattr(body, 'read'):
        while True:
            chunk = body.read(1 << 20)
            if not chunk:
                return
            yield chunk
    else:
        yield from body


# -- HTTP level, for the Glance layer itself and for Nova ------------------------------------
class Response:
    def __init__(self, status: int, body=None, headers=None, text=None, chunks=()):
        self.status_code = status
        self._body = body
        self.headers = headers or {}
        self.text = text if text is not None else json.dumps(body) if body is not None else ''
        self.reason = 'reason'
        self._chunks = list(chunks)
        self.closed = False

    def json(self):
        if self._body is None:
            raise ValueError('no json')
        return self._body

    def iter_content(self, size):
        yield from self._chunks

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True


class Adapter:
    """conn.image as the SDK gives it: request(path, method, **kwargs) -> response."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.calls = []

    def request(self, path, method, **kwargs):
        self.calls.append((method, path, kwargs))
        return self.responses.pop(0)
