"""Seed Keystone with the devcloud's projects, users, roles and catalog.

Idempotent: every object is looked up first and only created (or corrected)
when missing or different, so it can run again after a port change or when
the Nova tier is added to an existing cloud.

Talks plain HTTP with urllib on purpose: importing openstacksdk costs more
than the ~30 calls this makes.

Environment:
  DC_KEYSTONE_URL   e.g. http://127.0.0.1:5000
  DC_PASSWORDS      path of the KEY=VALUE passwords file
  DC_GLANCE_URL, and with DC_WITH_NOVA=1 also DC_NOVA_URL, DC_PLACEMENT_URL,
  DC_NEUTRON_URL, DC_CINDER_URL
  DC_REGIONS        instead of the above: "REGION=GLANCE_URL ..." registers more regions,
                    each with its own image endpoints and the one identity endpoint
"""

import json
import os
import sys
import urllib.error
import urllib.request

REGION = 'RegionOne'
DOMAIN = 'default'
INTERFACES = ('public', 'internal', 'admin')


def read_passwords(path):
    out = {}
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#'):
                key, _sep, value = line.partition('=')
                out[key] = value
    return out


class Keystone:
    def __init__(self, url, password):
        self.url = url.rstrip('/') + '/v3'
        self.token = None
        body = {
            'auth': {
                'identity': {
                    'methods': ['password'],
                    'password': {
                        'user': {
                            'name': 'admin',
                            'domain': {'id': DOMAIN},
                            'password': password,
                        }
                    },
                },
                'scope': {'project': {'name': 'admin', 'domain': {'id': DOMAIN}}},
            }
        }
        headers = self.call('POST', '/auth/tokens', body, want_headers=True)[1]
        self.token = headers['X-Subject-Token']

    def call(self, method, path, body=None, want_headers=False, quiet=False):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header('Content-Type', 'application/json')
        req.add_header('Accept', 'application/json')
        if self.token:
            req.add_header('X-Auth-Token', self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                result = json.loads(raw) if raw else None
                return (result, resp.headers) if want_headers else result
        except urllib.error.HTTPError as exc:
            if quiet:
                raise
            body = exc.read()[:500].decode(errors='replace')
            sys.exit(f'seed: {method} {path} -> HTTP {exc.code}: {body}')

    def find(self, collection, **filters):
        query = '&'.join('{}={}'.format(*kv) for kv in filters.items())
        items = self.call('GET', f'/{collection}?{query}')[collection]
        return items[0] if items else None

    def ensure_role(self, name):
        role = self.find('roles', name=name)
        if role is None:
            role = self.call('POST', '/roles', {'role': {'name': name}})['role']
        return role['id']

    def ensure_project(self, name, description):
        project = self.find('projects', name=name, domain_id=DOMAIN)
        if project is None:
            project = self.call(
                'POST',
                '/projects',
                {'project': {'name': name, 'domain_id': DOMAIN, 'description': description, 'enabled': True}},
            )['project']
        return project['id']

    def ensure_user(self, name, password, project_id):
        user = self.find('users', name=name, domain_id=DOMAIN)
        if user is None:
            user = self.call(
                'POST',
                '/users',
                {
                    'user': {
                        'name': name,
                        'domain_id': DOMAIN,
                        'password': password,
                        'default_project_id': project_id,
                        'enabled': True,
                    }
                },
            )['user']
        else:
            # Keeps the password in step with the state's passwords file.
            self.call('PATCH', '/users/{}'.format(user['id']), {'user': {'password': password, 'enabled': True}})
        return user['id']

    def grant(self, project_id, user_id, role_id):
        self.call('PUT', f'/projects/{project_id}/users/{user_id}/roles/{role_id}')

    def ensure_region(self, region):
        try:
            self.call('GET', f'/regions/{region}', quiet=True)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            self.call('POST', '/regions', {'region': {'id': region, 'description': 'devcloud region'}})

    def ensure_service(self, type_, name, url, region=REGION):
        service = self.find('services', type=type_)
        if service is None:
            service = self.call('POST', '/services', {'service': {'type': type_, 'name': name, 'enabled': True}})[
                'service'
            ]
        existing = self.call('GET', '/endpoints?service_id={}'.format(service['id']))['endpoints']
        by_interface = {e['interface']: e for e in existing if e.get('region_id') == region}
        for interface in INTERFACES:
            endpoint = by_interface.get(interface)
            if endpoint is None:
                self.call(
                    'POST',
                    '/endpoints',
                    {
                        'endpoint': {
                            'service_id': service['id'],
                            'interface': interface,
                            'url': url,
                            'region_id': region,
                            'enabled': True,
                        }
                    },
                )
            elif endpoint['url'] != url:
                self.call('PATCH', '/endpoints/{}'.format(endpoint['id']), {'endpoint': {'url': url}})


def main():
    env = os.environ
    pw = read_passwords(env['DC_PASSWORDS'])
    with_nova = env.get('DC_WITH_NOVA') == '1'
    ks = Keystone(env['DC_KEYSTONE_URL'], pw['ADMIN_PASSWORD'])
    if env.get('DC_REGIONS'):
        for pair in env['DC_REGIONS'].split():
            region, _sep, glance_url = pair.partition('=')
            ks.ensure_region(region)
            ks.ensure_service('identity', 'keystone', env['DC_KEYSTONE_URL'] + '/v3', region)
            ks.ensure_service('image', 'glance', glance_url, region)
        return

    roles = {name: ks.ensure_role(name) for name in ('admin', 'member', 'reader', 'service')}
    projects = {
        'service': ks.ensure_project('service', 'devcloud service users'),
        'alpha': ks.ensure_project('alpha', 'devcloud test project alpha'),
        'beta': ks.ensure_project('beta', 'devcloud test project beta'),
    }

    people = [
        ('alpha-member', 'ALPHA_MEMBER_PASSWORD', 'alpha', 'member'),
        ('beta-member', 'BETA_MEMBER_PASSWORD', 'beta', 'member'),
        ('reader', 'READER_PASSWORD', 'alpha', 'reader'),
    ]
    for name, pw_key, project, role in people:
        uid = ks.ensure_user(name, pw[pw_key], projects[project])
        ks.grant(projects[project], uid, roles[role])

    service_users = ['glance']
    if with_nova:
        service_users += ['nova', 'placement', 'neutron', 'cinder']
    for name in service_users:
        uid = ks.ensure_user(name, pw[name.upper() + '_PASSWORD'], projects['service'])
        # admin + service is what the services' default policies expect of
        # each other (e.g. nova -> placement, service tokens).
        ks.grant(projects['service'], uid, roles['admin'])
        ks.grant(projects['service'], uid, roles['service'])

    ks.ensure_service('identity', 'keystone', env['DC_KEYSTONE_URL'] + '/v3')
    ks.ensure_service('image', 'glance', env['DC_GLANCE_URL'])
    if with_nova:
        ks.ensure_service('compute', 'nova', env['DC_NOVA_URL'] + '/v2.1')
        ks.ensure_service('placement', 'placement', env['DC_PLACEMENT_URL'])
        ks.ensure_service('network', 'neutron', env['DC_NEUTRON_URL'])
        # Cinder's own type and the older alias Nova's [cinder] catalog_info and many
        # clients still look for; no project id in the URL (Cinder >= 3.67 routes).
        ks.ensure_service('block-storage', 'cinder', env['DC_CINDER_URL'] + '/v3')
        ks.ensure_service('volumev3', 'cinderv3', env['DC_CINDER_URL'] + '/v3')


if __name__ == '__main__':
    main()
