"""Who uses an image: servers (Nova), images naming it as kernel or ramdisk (Glance), and
what could not be checked - never taken as unused."""

from __future__ import annotations

from types import SimpleNamespace

from glance_double import Adapter, Response

from ansible_collections.imagegov.openstack.plugins.module_utils._state import SHARED_SINCE_PROPERTY
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import UsageLookup, blocking_usage

IMAGE = {'id': 'img-1', 'name': 'base', 'visibility': 'private', 'owner': 'p-alpha'}
NO_IMAGES = [Response(200, {'images': []}) for _page in range(4)]


def connection(roles, glance_responses, nova_responses=(), services=('compute', 'image')):
    access = SimpleNamespace(username='alice', project_name='alpha', role_names=roles)
    session = SimpleNamespace(auth=SimpleNamespace(get_access=lambda session: access))
    nova = Adapter(*nova_responses)
    return SimpleNamespace(
        session=session,
        image=Adapter(*glance_responses),
        compute=SimpleNamespace(get=lambda url, params=None: nova.request(url, 'GET', params=params), calls=nova.calls),
        has_service=lambda name: name in services,
    )


def servers(*items, next_link=None):
    links = [{'rel': 'next', 'href': next_link}] if next_link else []
    return Response(200, {'servers': list(items), 'servers_links': links})


def test_a_private_image_never_shared_is_checked_completely_by_its_owner():
    conn = connection(['member'], NO_IMAGES, [servers({'id': 's1', 'name': 'web', 'tenant_id': 'p-alpha'})])
    usage = UsageLookup(conn)(IMAGE)
    assert usage['servers'] == [{'id': 's1', 'name': 'web', 'project_id': 'p-alpha', 'status': None}]
    assert [entry['resource'] for entry in usage['not_checked']] == ['volumes']
    assert blocking_usage(usage) == ['server web (s1, project p-alpha)']


def test_an_image_shared_before_counts_as_possibly_used_by_other_projects():
    conn = connection(['member'], NO_IMAGES, [servers()])
    usage = UsageLookup(conn)(dict(IMAGE, **{SHARED_SINCE_PROPERTY: '2026-01-01T00:00:00Z'}))
    unchecked = {entry['resource']: entry['reason'] for entry in usage['not_checked']}
    assert 'shared or published before' in unchecked['servers']
    assert 'images of other projects' in unchecked['images']
    assert blocking_usage(usage)  # unknown is never unused


def test_a_shared_image_with_members_is_not_fully_checkable_by_a_member():
    glance_responses = [Response(200, {'members': [{'member_id': 'p-beta'}]}), *NO_IMAGES]
    conn = connection(['member'], glance_responses, [servers()])
    usage = UsageLookup(conn)(dict(IMAGE, visibility='shared'))
    assert any('shared with other projects' in entry['reason'] for entry in usage['not_checked'])


def test_an_admin_lists_every_project_in_pages_with_a_bounded_number_of_requests():
    conn = connection(
        ['admin'],
        NO_IMAGES,
        [servers({'id': 's1', 'tenant_id': 'p-beta'}, next_link='/servers/detail?marker=s1'), servers({'id': 's2'})],
    )
    lookup = UsageLookup(conn)
    usage = lookup(dict(IMAGE, visibility='public'))
    assert [server['id'] for server in usage['servers']] == ['s1', 's2']
    assert conn.compute.calls[0][2]['params'] == {'image': 'img-1', 'limit': 1000, 'all_tenants': 1}
    assert lookup.request_count == 2 + 4
    assert lookup(dict(IMAGE, visibility='public')) is usage  # once per image per run


def test_images_using_it_as_kernel_are_found_with_their_owner():
    glance_responses = [
        Response(200, {'images': [{'id': 'k1', 'name': 'uses', 'owner': 'p-beta'}]}),
        *NO_IMAGES[:3],
    ]
    usage = UsageLookup(connection(['admin'], glance_responses, [servers()]))(IMAGE)
    assert usage['images'] == [{'id': 'k1', 'name': 'uses', 'as': 'kernel_id', 'owner': 'p-beta'}]


def test_no_compute_endpoint_or_a_refused_listing_is_not_checked():
    usage = UsageLookup(connection(['admin'], NO_IMAGES, services=('image',)))(IMAGE)
    assert 'servers' not in usage
    assert {'resource': 'servers', 'reason': 'no compute endpoint in the catalog'} in usage['not_checked']
    refused = UsageLookup(connection(['admin'], NO_IMAGES, [Response(403, {})]))(IMAGE)
    assert any('HTTP 403' in entry['reason'] for entry in refused['not_checked'])
    assert blocking_usage(refused)
