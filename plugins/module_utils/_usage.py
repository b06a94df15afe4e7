# PRIVATE to the collection: not a public API.
# Copyright: imagegov.openstack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses an image: Nova servers and images naming it as kernel or ramdisk.

What cannot be looked at completely — no compute endpoint, servers of projects the caller
may not list — is reported under ``not_checked``, never as unused. The cost is bounded:
one server listing filtered by image, and two image listings per hidden pass.
"""

from __future__ import annotations

from typing import Any

from ._glance import Glance



class UsageLookup:
    def __init__(self, conn: Any, glance: Glance, caller: dict[str, Any]) -> None:
        self.conn = conn
        self.glance = glance
        self.is_admin = 'admin' in caller.get('roles', [])
        self.request_count = 0

    def __call__(self, image: dict[str, Any]) -> dict[str, Any]:
        usage: dict[str, Any] = {'not_checked': []}
        complete = self.is_admin or self._only_owner_can_use(image)
        servers = self._servers(image['id'], usage)
        if servers is not None:
            usage['servers'] = servers
            if not complete:
                usage['not_checked'].append({'resource': 'servers', 'reason': (
                    f"image is {image.get('visibility')}: servers of other projects are only "
                    'visible to an admin')})
        usage['images'] = [
            {'id': other['id'], 'name': other.get('name'), 'as': key}
            for key in ('kernel_id', 'ramdisk_id')
            for hidden in ('false', 'true')
            for other in self.glance.iter_images({key: image['id'], 'visibility': 'all', 'os_hidden': hidden})]
        if not complete:
            usage['not_checked'].append({'resource': 'images', 'reason': (
                'images of other projects are only visible to an admin')})
        usage['not_checked'].append({'resource': 'volumes', 'reason': 'volumes are not looked up'})
        return usage

    def _only_owner_can_use(self, image: dict[str, Any]) -> bool:
        if image.get('visibility') == 'private':
            return True
        if image.get('visibility') == 'shared':
            return not self.glance.list_members(image['id'])
        return False

    def _servers(self, image_id: str, usage: dict[str, Any]) -> list[dict[str, Any]] | None:
        if not self.conn.has_service('compute'):
            usage['not_checked'].append({'resource': 'servers', 'reason': 'no compute endpoint in the catalog'})
            return None
        params: dict[str, Any] = {'image': image_id, 'limit': 1000}
        if self.is_admin:
            params['all_tenants'] = 1
        servers: list[dict[str, Any]] = []
        url = '/servers/detail'
        while url:
            self.request_count += 1
            response = self.conn.compute.get(url, params=params)
            if response.status_code != 200:
                usage['not_checked'].append({'resource': 'servers', 'reason': (
                    f'Nova answered HTTP {response.status_code} to the server listing')})
                return None
            body = response.json()
            servers.extend({'id': s['id'], 'name': s.get('name'), 'project_id': s.get('tenant_id'),
                            'status': s.get('status')} for s in body.get('servers', []))
            url = next((link['href'] for link in body.get('servers_links', [])
                        if link.get('rel') == 'next'), None)
            params = {}
        return servers
