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
from typing import Any, Iterable, Iterator, Union
from urllib.parse import parse_qsl, urlparse

from ._errors import ImagegovError

JSON_PATCH = 'application/openstack-images-v2.1-json-patch'
PAGE_SIZE = 1000  # Glance's default api_limit_max: the fewest pages it will serve


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class GlanceError(ImagegovError):
    """A refused or failed Glance request, with Glance's own message."""

    def __init__(self, action: str, status_code: int | None, message: str,
                 request_id: str | None = None) -> None:
        super().__init__(action, status_code, message)
        self.action = action
        self.status_code = status_code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        status = f'HTTP {self.status_code}: ' if self.status_code else ''
        return f'{self.action} failed: {status}{self.message}'


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

    def _call(self, method: str, path: str, action: str, expect: Iterable[int] = (200,),
              **kwargs: Any) -> Any:
        self.request_count += 1
        response = self.api.request(path, method, **kwargs)
        if response.status_code not in expect:
            raise GlanceError(action, response.status_code, _error_message(response),
                              response.headers.get('x-openstack-request-id'))
        return response

    def iter_images(self, filters: Union[dict[str, Any], Iterable[tuple[str, Any]]] = ()
                    ) -> Iterator[dict[str, Any]]:
        """Every image matching Glance's own filters, in pages of PAGE_SIZE.

        ``filters`` may repeat a key (``tag``), hence pairs rather than only a dict.
        """
        pairs = filters.items() if isinstance(filters, dict) else filters
        params: list[tuple[str, Any]] = [(k, v) for k, v in pairs if v is not None]
        params.append(('limit', PAGE_SIZE))
        while True:
            body = self._call('GET', '/images', 'Listing images', params=params).json()
            yield from body.get('images', [])
            next_link = body.get('next')
            if not next_link or not body.get('images'):
                return
            params = parse_qsl(urlparse(next_link).query)

    def get_image(self, image_id: str) -> dict[str, Any] | None:
        response = self._call('GET', f'/images/{image_id}', f'Reading image {image_id}',
                              expect=(200, 404))
        return response.json() if response.status_code == 200 else None

    def create_image(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call('POST', '/images', f"Creating image {fields.get('name')!r}",
                          expect=(201,), json=fields).json()

    def patch_image(self, image_id: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
        return self._call('PATCH', f'/images/{image_id}', f'Updating image {image_id}',
                          json=operations, headers={'Content-Type': JSON_PATCH}).json()

    def upload(self, image_id: str, chunks: Any) -> None:
        self._call('PUT', f'/images/{image_id}/file', f'Uploading data to image {image_id}',
                   expect=(204,), data=chunks,
                   headers={'Content-Type': 'application/octet-stream'})

    def stage(self, image_id: str, chunks: Any) -> None:
        self._call('PUT', f'/images/{image_id}/stage', f'Staging data of image {image_id}',
                   expect=(204,), data=chunks,
                   headers={'Content-Type': 'application/octet-stream'})

    def start_import(self, image_id: str, method: str, uri: str | None = None) -> None:
        body: dict[str, Any] = {'method': {'name': method}}
        if uri:
            body['method']['uri'] = uri
        self._call('POST', f'/images/{image_id}/import', f'Importing image {image_id} by {method}',
                   expect=(202,), json=body)

    def deactivate(self, image_id: str) -> None:
        self._call('POST', f'/images/{image_id}/actions/deactivate',
                   f'Deactivating image {image_id}', expect=(204,))

    def reactivate(self, image_id: str) -> None:
        self._call('POST', f'/images/{image_id}/actions/reactivate',
                   f'Reactivating image {image_id}', expect=(204,))

    def list_members(self, image_id: str) -> list[dict[str, Any]]:
        return self._call('GET', f'/images/{image_id}/members',
                          f'Listing members of image {image_id}').json().get('members', [])

    def add_member(self, image_id: str, member_id: str) -> dict[str, Any]:
        return self._call('POST', f'/images/{image_id}/members',
                          f'Adding project {member_id} as a member of image {image_id}',
                          json={'member': member_id}).json()

    def remove_member(self, image_id: str, member_id: str) -> None:
        self._call('DELETE', f'/images/{image_id}/members/{member_id}',
                   f'Removing project {member_id} from the members of image {image_id}',
                   expect=(204, 404))

    def update_member(self, image_id: str, member_id: str, status: str) -> dict[str, Any]:
        return self._call('PUT', f'/images/{image_id}/members/{member_id}',
                          f'Setting the membership of project {member_id} in image {image_id} to {status}',
                          json={'status': status}).json()

    def delete_image(self, image_id: str) -> None:
        self._call('DELETE', f'/images/{image_id}', f'Deleting image {image_id}',
                   expect=(204, 404))
