# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses an image: Nova servers, and images naming it as kernel or ramdisk.

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
"""

from __future__ import annotations

from typing import Any

from ._glance import Glance
from ._state import SHARED_SINCE_PROPERTY

USAGE_CLOUD_ARGSPEC: dict[str, Any] = dict(usage_cloud=dict(type='raw'))


def blocking_usage(usage: dict[str, Any]) -> list[str]:
    """Servers and images that use the image, and what about them could not be checked:
    empty only when the image is known to be unused by either."""
    found = [f'server {s.get("name")} ({s["id"]}, project {s.get("project_id")})' for s in usage.get('servers', [])]
    found += [f'image {i.get("name")} ({i["id"]}, as {i.get("as")})' for i in usage.get('images', [])]
    found += [
        f'{n.get("resource")} not checked: {n.get("reason")}'
        for n in usage.get('not_checked', [])
        if isinstance(n, dict) and n.get('resource') in ('servers', 'images')
    ]
    return found


class UsageLookup:
    """Callable as the policy engine's usage provider: image dict in, usage facts out."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.glance = Glance(conn)
        access = conn.session.auth.get_access(conn.session)
        self.is_admin = 'admin' in (access.role_names or [])
        self.asked_as = {'user': access.username, 'project': access.project_name, 'admin': self.is_admin}
        self.compute_requests = 0
        self._cache: dict[str, dict[str, Any]] = {}

    @property
    def request_count(self) -> int:
        return self.compute_requests + self.glance.request_count

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
            if exposure:
                usage['not_checked'].append(
                    {
                        'resource': 'servers',
                        'reason': (
                            f'{exposure}, and servers of other projects are only visible to an admin '
                            '(see option usage_cloud)'
                        ),
                    }
                )
        usage['images'] = [
            {'id': other['id'], 'name': other.get('name'), 'as': key, 'owner': other.get('owner')}
            for key in ('kernel_id', 'ramdisk_id')
            for other in self.glance.all_images({key: image['id'], 'visibility': 'all'})
        ]
        if exposure:
            usage['not_checked'].append(
                {
                    'resource': 'images',
                    'reason': (
                        f'{exposure}, and images of other projects are only visible to an admin '
                        '(see option usage_cloud)'
                    ),
                }
            )
        usage['not_checked'].append(
            {
                'resource': 'volumes',
                'reason': (
                    'volumes are not looked up'
                    if self.conn.has_service('block-storage')
                    else 'no block-storage endpoint in the catalog'
                ),
            }
        )
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
