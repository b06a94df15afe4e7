# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses an image: Nova servers, images naming it as kernel or ramdisk, and Cinder volumes
created from it (attached or not: a volume-backed server's root volume is one of them).

What cannot be looked at completely — no compute endpoint, servers of projects this token
may not list — is reported under ``not_checked``, never as unused. Who *may* use an image
today is not who uses it: a server booted while the image was shared keeps using it after
the image became private. So without an account that sees every project's servers, an
image that is or ever was shared with a project, community or public counts as possibly
used by other projects; "ever" is what Glance still shows (visibility, members) and what
this collection recorded when it shared or published it (``imagegov_shared_since``). The cost is bounded
whatever the number of servers or projects: one server listing filtered by the image
(pages of 1000), two image listings per hidden pass, and one member listing for a shared
image seen without the admin role.

Volumes: Cinder records the image a volume was created from in the volume's
``volume_image_metadata`` and filters on it (``glance_metadata``, microversion 3.4; from 3.33
a filter the cloud does not allow is refused with HTTP 400 instead of silently dropped). An
admin may always use it; other accounts only where the cloud's ``resource_filters.json``
lists it for volumes, which Cinder's default does not. So: one filtered listing (pages of
1000) when allowed, whatever the number of volumes; otherwise the caller's volumes are
listed in pages of 1000 and matched here, and the answer says so (``volumes_lookup``). A
cloud without a block-storage endpoint has no volumes: an empty list, not "not checked".
"""

from __future__ import annotations

import json
from typing import Any

from ._glance import Glance
from ._state import SHARED_SINCE_PROPERTY

USAGE_CLOUD_ARGSPEC: dict[str, Any] = dict(usage_cloud=dict(type='raw'))


VOLUME_FILTER_MICROVERSION = '3.33'
PAGE = 1000


def describe_volume(volume: dict[str, Any]) -> str:
    attached = ', attached to server ' + ', '.join(volume['attached_to']) if volume.get('attached_to') else ''
    return (
        f'volume {volume.get("name") or "(no name)"} ({volume["id"]}, project {volume.get("project_id")}, '
        f'status {volume.get("status")}{attached})'
    )


def blocking_usage(usage: dict[str, Any]) -> list[str]:
    """Servers, images and volumes that use the image, and what about them could not be
    checked: empty only when the image is known to be unused by any of them."""
    found = [f'server {s.get("name")} ({s["id"]}, project {s.get("project_id")})' for s in usage.get('servers', [])]
    found += [f'image {i.get("name")} ({i["id"]}, as {i.get("as")})' for i in usage.get('images', [])]
    found += [describe_volume(v) for v in usage.get('volumes', [])]
    found += [
        f'{n.get("resource")} not checked: {n.get("reason")}'
        for n in usage.get('not_checked', [])
        if isinstance(n, dict) and n.get('resource') in ('servers', 'images', 'volumes')
    ]
    return found


def volume_user(volume: dict[str, Any], default_project: str | None) -> dict[str, Any]:
    return {
        'id': volume['id'],
        'name': volume.get('name'),
        # The owner field is shown to admins only; a non-admin lists its own project's.
        'project_id': volume.get('os-vol-tenant-attr:tenant_id') or default_project,
        'status': volume.get('status'),
        'attached_to': [a.get('server_id') for a in volume.get('attachments') or () if a.get('server_id')],
    }


def _others_unseen(usage: dict[str, Any], resource: str, exposure: str | None) -> None:
    """Without the admin role, other projects' resources cannot be seen: when the image is or
    was exposed to them, that part is not checked."""
    if exposure:
        usage['not_checked'].append(
            {
                'resource': resource,
                'reason': (
                    f'{exposure}, and {resource} of other projects are only visible to an admin '
                    '(see option usage_cloud)'
                ),
            }
        )


class UsageLookup:
    """Callable as the policy engine's usage provider: image dict in, usage facts out."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.glance = Glance(conn)
        access = conn.session.auth.get_access(conn.session)
        self.is_admin = 'admin' in (access.role_names or [])
        self.asked_as = {'user': access.username, 'project': access.project_name, 'admin': self.is_admin}
        self.project_id = getattr(access, 'project_id', None)
        self.compute_requests = 0
        self.volume_requests = 0
        # How volumes were looked up: 'filtered' by Cinder, or 'listed' and matched here.
        self.volumes_lookup: str | None = None
        self._cache: dict[str, dict[str, Any]] = {}

    @property
    def request_count(self) -> int:
        return self.compute_requests + self.volume_requests + self.glance.request_count

    def __call__(self, image: dict[str, Any]) -> dict[str, Any]:
        if image['id'] not in self._cache:
            self._cache[image['id']] = self._lookup(image)
        return self._cache[image['id']]

    def _lookup(self, image: dict[str, Any]) -> dict[str, Any]:
        usage: dict[str, Any] = {'not_checked': []}
        exposure = None if self.is_admin else self._exposure(image)
        servers = self._servers(image['id'], usage)
        if servers is not None:
            usage['servers'] = servers
            _others_unseen(usage, 'servers', exposure)
        usage['images'] = [
            {'id': other['id'], 'name': other.get('name'), 'as': key, 'owner': other.get('owner')}
            for key in ('kernel_id', 'ramdisk_id')
            for other in self.glance.all_images({key: image['id'], 'visibility': 'all'})
        ]
        _others_unseen(usage, 'images', exposure)
        volumes = self._volumes(image['id'], usage)
        if volumes is not None:
            usage['volumes'] = volumes
            _others_unseen(usage, 'volumes', exposure)
        return usage

    def _exposure(self, image: dict[str, Any]) -> str | None:
        """Why other projects may use the image, or None when only its owner ever could."""
        visibility = image.get('visibility')
        if visibility in ('public', 'community'):
            return f'the image is {visibility}'
        if visibility == 'shared' and self.glance.list_members(image['id']):
            return 'the image is shared with other projects'
        since = image.get(SHARED_SINCE_PROPERTY)
        if since:
            return f'the image was shared or published before ({SHARED_SINCE_PROPERTY} {str(since)[:40]!r})'
        return None

    def _servers(self, image_id: str, usage: dict[str, Any]) -> list[dict[str, Any]] | None:
        if not self.conn.has_service('compute'):
            usage['not_checked'].append({'resource': 'servers', 'reason': 'no compute endpoint in the catalog'})
            return None
        params: dict[str, Any] = {'image': image_id, 'limit': 1000}
        if self.is_admin:
            params['all_tenants'] = 1
        servers: list[dict[str, Any]] = []
        url: str | None = '/servers/detail'
        while url:
            self.compute_requests += 1
            response = self.conn.compute.get(url, params=params)
            if response.status_code != 200:
                usage['not_checked'].append(
                    {
                        'resource': 'servers',
                        'reason': (f'Nova answered HTTP {response.status_code} to the server listing'),
                    }
                )
                return None
            body = response.json()
            servers.extend(
                {'id': s['id'], 'name': s.get('name'), 'project_id': s.get('tenant_id'), 'status': s.get('status')}
                for s in body.get('servers', [])
            )
            url = next((link['href'] for link in body.get('servers_links', []) if link.get('rel') == 'next'), None)
            params = {}
        return servers

    def _volumes(self, image_id: str, usage: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Volumes whose ``volume_image_metadata`` names the image, detached ones included."""
        if not self.conn.has_service('block-storage'):
            return []
        base: dict[str, Any] = {'limit': PAGE}
        if self.is_admin:
            base['all_tenants'] = 1
        # Cinder parses the value as a literal dict; JSON is one.
        filtered = dict(base, glance_metadata=json.dumps({'image_id': image_id}))
        found, status = self._volume_pages(filtered, image_id, VOLUME_FILTER_MICROVERSION)
        if found is not None:
            self.volumes_lookup = 'filtered'
            return found
        if status not in (400, 404, 406):
            return self._volumes_not_checked(usage, status)
        # Filter not allowed for this account (400), or a Cinder older than 3.33 (404/406).
        found, status = self._volume_pages(base, image_id, None)
        if found is None:
            return self._volumes_not_checked(usage, status)
        self.volumes_lookup = 'listed'
        return found

    def _volumes_not_checked(self, usage: dict[str, Any], status: int) -> None:
        usage['not_checked'].append(
            {'resource': 'volumes', 'reason': f'Cinder answered HTTP {status} to the volume listing'}
        )
        return None

    def _volume_pages(
        self, params: dict[str, Any], image_id: str, microversion: str | None
    ) -> tuple[list[dict[str, Any]] | None, int]:
        headers = {'OpenStack-API-Version': f'volume {microversion}'} if microversion else {}
        filtered = 'glance_metadata' in params
        volumes: list[dict[str, Any]] = []
        url: str | None = '/volumes/detail'
        query: dict[str, Any] | None = params
        while url:
            self.volume_requests += 1
            response = self.conn.block_storage.get(url, params=query, headers=headers)
            if response.status_code != 200:
                return None, response.status_code
            body = response.json()
            # Matched here too: a volume naming another image (a Cinder or proxy that ignored
            # the filter) is left out. One the filter matched whose image metadata Cinder does
            # not show (its volume_image_metadata:show policy, a failed read) counts: an image
            # is never unused for lack of a field.
            volumes.extend(
                volume_user(v, self.project_id)
                for v in body.get('volumes', [])
                if (v.get('volume_image_metadata') or {}).get('image_id') == image_id
                or (filtered and 'volume_image_metadata' not in v)
            )
            url = next((link['href'] for link in body.get('volumes_links', []) if link.get('rel') == 'next'), None)
            query = None
        return volumes, 200
