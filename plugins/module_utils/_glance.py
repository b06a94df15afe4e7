# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glance v2 calls as plain dicts, exactly as Glance returns them.

The SDK's Image resource renames fields and cannot remove a property in a patch; the
product needs Glance's own field names (the policy engine reads them) and one JSON-patch
request per update, so the calls go through the SDK's authenticated adapter directly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlparse

from ._errors import ImagegovError

JSON_PATCH = 'application/openstack-images-v2.1-json-patch'
PAGE_SIZE = 1000  # Glance's default api_limit_max: the fewest pages it will serve
# Statuses of images that are gone or going: never "the" image of a name.
GONE_STATUSES = ('killed', 'deleted', 'pending_delete')
# Glance parses these list filters as `op:value` (`name=in:a,b`), so a name such as
# `in:web` or `ubuntu:24.04` would be read as an operator: `eq:` makes every value literal.
OPERATOR_FILTERS = frozenset({'name', 'id', 'status', 'disk_format', 'container_format'})
DOWNLOAD_CHUNK = 4 * 1024 * 1024
# os_hidden values to list for each choice of hidden images.
HIDDEN_PASSES = {'false': ('false',), 'true': ('true',), 'all': ('false', 'true')}


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class GlanceError(ImagegovError):
    """A refused or failed Glance request, with Glance's own message."""

    def __init__(self, action: str, status_code: int | None, message: str, request_id: str | None = None) -> None:
        super().__init__(action, status_code, message)
        self.action = action
        self.status_code = status_code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        status = f'HTTP {self.status_code}: ' if self.status_code else ''
        return f'{self.action} failed: {status}{self.message}'


class GlanceConflict(GlanceError):
    """HTTP 409: the id is taken, or the image changed under a concurrent request."""


class AmbiguousImage(ImagegovError):
    """More than one image answers to a name where exactly one is needed."""

    def __init__(self, what: str, name: str, images: list[dict[str, Any]], hint: str) -> None:
        listing = ', '.join(
            f'{i["id"]} (owner {i.get("owner")}, status {i.get("status")}, created {i.get("created_at")})'
            for i in images
        )
        super().__init__(f'{what}: {len(images)} images named {name!r} are visible: {listing}. {hint}')
        self.images = images


def literal_filters(pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Query parameters in which every value means itself, never a filter operator."""
    return [(key, f'eq:{value}' if key in OPERATOR_FILTERS else value) for key, value in pairs if value is not None]


def _error_message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        # Glance's HTML error pages: keep the words, drop the markup.
        text = ' '.join(re.sub(r'<[^>]+>', ' ', response.text).split())
        return text[:500] or response.reason or 'no details'
    if isinstance(body, dict):
        for key in ('message', 'detail', 'title'):
            if isinstance(body.get(key), str):
                return body[key]
        for value in body.values():
            if isinstance(value, dict) and value.get('message'):
                return str(value['message'])
    return str(body)[:500]


class Glance:
    def __init__(self, conn: Any) -> None:
        self.api = conn.image
        self.request_count = 0

    def _call(self, method: str, path: str, action: str, expect: Iterable[int] = (200,), **kwargs: Any) -> Any:
        self.request_count += 1
        response = self.api.request(path, method, **kwargs)
        if response.status_code not in expect:
            error = GlanceConflict if response.status_code == 409 else GlanceError
            raise error(
                action, response.status_code, _error_message(response), response.headers.get('x-openstack-request-id')
            )
        return response

    def iter_images(self, filters: dict[str, Any] | Iterable[tuple[str, Any]] = ()) -> Iterator[dict[str, Any]]:
        """Every image matching Glance's own filters, in pages of PAGE_SIZE.

        ``filters`` may repeat a key (``tag``), hence pairs rather than only a dict. Every
        value is matched literally (see OPERATOR_FILTERS).
        """
        pairs = filters.items() if isinstance(filters, dict) else filters
        params = literal_filters(pairs)
        params.append(('limit', PAGE_SIZE))
        while True:
            body = self._call('GET', '/images', 'Listing images', params=params).json()
            yield from body.get('images', [])
            next_link = body.get('next')
            if not next_link or not body.get('images'):
                return
            params = parse_qsl(urlparse(next_link).query)

    def get_image(self, image_id: str) -> dict[str, Any] | None:
        response = self._call('GET', f'/images/{image_id}', f'Reading image {image_id}', expect=(200, 404))
        return response.json() if response.status_code == 200 else None

    def live_image(self, image_id: str) -> dict[str, Any] | None:
        """The image with this id, unless it is gone or going."""
        image = self.get_image(image_id)
        return None if image is None or image.get('status') in GONE_STATUSES else image

    def all_images(
        self, filters: dict[str, Any] | Iterable[tuple[str, Any]] = (), hidden: str = 'all', live: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Every image ``filters`` select, hidden ones too (Glance lists hidden images only when
        asked: one paged listing per pass); ``hidden`` 'false' or 'true' keeps to one pass,
        ``live`` leaves out images that are gone or going."""
        pairs = list(filters.items() if isinstance(filters, dict) else filters)
        seen: set[str] = set()
        for flag in HIDDEN_PASSES[hidden]:
            for image in self.iter_images(pairs + [('os_hidden', flag)]):
                if image['id'] not in seen and not (live and image.get('status') in GONE_STATUSES):
                    seen.add(image['id'])
                    yield image

    def images_named(self, name: str, **filters: Any) -> list[dict[str, Any]]:
        """Every live image with exactly this name among those ``filters`` select (default
        every visibility), hidden ones included."""
        filters.setdefault('visibility', 'all')
        return list(self.all_images(dict(filters, name=name), live=True))

    def find(
        self, name_or_id: str, what: str, hint: str = 'Give its id instead.', **filters: Any
    ) -> dict[str, Any] | None:
        """One image by id (when the value is one and such an image lives), else by literal
        name among those ``filters`` select; several with that name are an error."""
        if is_uuid(name_or_id):
            image = self.live_image(name_or_id)
            if image is not None:
                return image
        found = self.images_named(name_or_id, **filters)
        if len(found) > 1:
            raise AmbiguousImage(what, name_or_id, found, hint)
        return found[0] if found else None

    def create_image(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            'POST', '/images', f'Creating image {fields.get("name")!r}', expect=(201,), json=fields
        ).json()

    def patch_image(self, image_id: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call(
            'PATCH',
            f'/images/{image_id}',
            f'Updating image {image_id}',
            json=operations,
            headers={'Content-Type': JSON_PATCH},
        ).json()

    def upload(self, image_id: str, chunks: Any, store: str | None = None) -> None:
        headers = {'Content-Type': 'application/octet-stream'}
        if store:
            headers['X-Image-Meta-Store'] = store  # multi-store Glance: this store, not the default
        self._call(
            'PUT',
            f'/images/{image_id}/file',
            f'Uploading data to image {image_id}',
            expect=(204,),
            data=chunks,
            headers=headers,
        )

    def stage(self, image_id: str, chunks: Any) -> None:
        self._call(
            'PUT',
            f'/images/{image_id}/stage',
            f'Staging data of image {image_id}',
            expect=(204,),
            data=chunks,
            headers={'Content-Type': 'application/octet-stream'},
        )

    def start_import(
        self,
        image_id: str,
        method: str,
        uri: str | None = None,
        method_fields: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """``method_fields`` go into the method (glance-download's glance_image_id...),
        ``extra`` beside it (multi-store Glance's stores, all_stores...)."""
        body: dict[str, Any] = {'method': {'name': method, **(method_fields or {})}}
        if uri:
            body['method']['uri'] = uri
        body.update(extra or {})
        self._call(
            'POST', f'/images/{image_id}/import', f'Importing image {image_id} by {method}', expect=(202,), json=body
        )

    def import_methods(self) -> list[str]:
        """The interoperable import methods this Glance offers (/v2/info/import)."""
        body = self._call('GET', '/info/import', 'Reading the import methods').json()
        return list((body.get('import-methods') or {}).get('value') or [])

    def image_tasks(self, image_id: str) -> list[dict[str, Any]]:
        """The import tasks of an image (/v2/images/{id}/tasks), newest first."""
        response = self._call('GET', f'/images/{image_id}/tasks', f'Reading the tasks of image {image_id}')
        return response.json().get('tasks', [])

    def store_ids(self) -> list[str] | None:
        """The stores of a multi-store Glance (/v2/info/stores); None when it has none."""
        response = self._call('GET', '/info/stores', 'Reading the stores', expect=(200, 404, 410))
        if response.status_code != 200:
            return None
        return [store['id'] for store in response.json().get('stores', []) if store.get('id')]

    def download(
        self, image_id: str, first_bytes: int | None = None, offset: int = 0
    ) -> tuple[int | None, Iterator[bytes]]:
        """The stored data of an image, streamed: its whole length and its chunks. With
        ``first_bytes``, only that many bytes from the start; with ``offset``, the bytes from
        there on (both HTTP Range requests; a server that ignores Range is read past)."""
        headers = {}
        if first_bytes:
            headers['Range'] = f'bytes=0-{first_bytes - 1}'
        elif offset:
            headers['Range'] = f'bytes={offset}-'
        response = self._call(
            'GET',
            f'/images/{image_id}/file',
            f'Reading the data of image {image_id}',
            expect=(200, 206),
            stream=True,
            headers=headers,
        )
        # The whole image's length: Content-Range's total for a range, else Content-Length.
        total = (
            response.headers.get('Content-Range', '').rpartition('/')[2]
            if response.status_code == 206
            else response.headers.get('Content-Length', '')
        )
        skip = offset if offset and response.status_code == 200 else 0
        return (int(total) if total.isdigit() else None), _chunks(response, first_bytes, skip)

    def deactivate(self, image_id: str) -> None:
        self._call('POST', f'/images/{image_id}/actions/deactivate', f'Deactivating image {image_id}', expect=(204,))

    def reactivate(self, image_id: str) -> None:
        self._call('POST', f'/images/{image_id}/actions/reactivate', f'Reactivating image {image_id}', expect=(204,))

    def list_members(self, image_id: str) -> list[dict[str, Any]]:
        return (
            self._call('GET', f'/images/{image_id}/members', f'Listing members of image {image_id}')
            .json()
            .get('members', [])
        )

    def add_member(self, image_id: str, member_id: str) -> dict[str, Any]:
        """Adds the member; one that a concurrent run added first is taken as it is."""
        try:
            return self._call(
                'POST',
                f'/images/{image_id}/members',
                f'Adding project {member_id} as a member of image {image_id}',
                json={'member': member_id},
            ).json()
        except GlanceConflict:
            return self._call(
                'GET',
                f'/images/{image_id}/members/{member_id}',
                f'Reading the membership of project {member_id} in image {image_id}',
            ).json()

    def remove_member(self, image_id: str, member_id: str) -> None:
        self._call(
            'DELETE',
            f'/images/{image_id}/members/{member_id}',
            f'Removing project {member_id} from the members of image {image_id}',
            expect=(204, 404),
        )

    def update_member(self, image_id: str, member_id: str, status: str) -> dict[str, Any]:
        return self._call(
            'PUT',
            f'/images/{image_id}/members/{member_id}',
            f'Setting the membership of project {member_id} in image {image_id} to {status}',
            json={'status': status},
        ).json()

    def delete_image(self, image_id: str) -> None:
        self._call('DELETE', f'/images/{image_id}', f'Deleting image {image_id}', expect=(204, 404))


def _chunks(response: Any, limit: int | None, skip: int = 0) -> Iterator[bytes]:
    """A streamed response's bytes; at most ``limit`` of them even if the server ignored Range,
    and without the first ``skip`` (the start of a whole answer to a Range from an offset)."""
    sent = 0
    with response:
        for chunk in response.iter_content(DOWNLOAD_CHUNK):
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
            if limit is not None and sent + len(chunk) >= limit:
                yield chunk[: limit - sent]
                return
            sent += len(chunk)
            yield chunk
