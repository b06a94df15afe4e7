"""Who uses an image: servers (Nova), images naming it as kernel or ramdisk (Glance), volumes
created from it (Cinder), and what could not be checked - never taken as unused."""

from __future__ import annotations

import json
from types import SimpleNamespace

from glance_double import Adapter, Response

from ansible_collections.imagegov.openstack.plugins.module_utils._state import SHARED_SINCE_PROPERTY
from ansible_collections.imagegov.openstack.plugins.module_utils._usage import UsageLookup, blocking_usage

IMAGE = {'id': 'img-1', 'name': 'base', 'visibility': 'private', 'owner': 'p-alpha'}
NO_IMAGES = [Response(200, {'images': []}) for _page in range(4)]


def connection(roles, glance_responses, nova_responses=(), services=('compute', 'image'), cinder_responses=()):
    access = SimpleNamespace(username='alice', project_name='alpha', project_id='p-alpha', role_names=roles)
    session = SimpleNamespace(auth=SimpleNamespace(get_access=lambda session: access))
    nova = Adapter(*nova_responses)
    cinder = Adapter(*cinder_responses)
    return SimpleNamespace(
        session=session,
        image=Adapter(*glance_responses),
        compute=SimpleNamespace(get=lambda url, params=None: nova.request(url, 'GET', params=params), calls=nova.calls),
        block_storage=SimpleNamespace(
            get=lambda url, params=None, headers=None: cinder.request(url, 'GET', params=params, headers=headers),
            calls=cinder.calls,
        ),
        has_service=lambda name: name in services,
    )


def volumes(*items, next_link=None):
    links = [{'rel': 'next', 'href': next_link}] if next_link else []
    return Response(200, {'volumes': list(items), 'volumes_links': links})


def volume(volume_id, image_id='img-1', project=None, status='available', server=None):
    body = {'id': volume_id, 'name': f'vol-{volume_id}', 'status': status, 'attachments': []}
    if image_id:
        body['volume_image_metadata'] = {'image_id': image_id, 'image_name': 'base'}
    if project:
        body['os-vol-tenant-attr:tenant_id'] = project
    if server:
        body['attachments'] = [{'server_id': server, 'attachment_id': 'a1'}]
    return body


WITH_CINDER = ('compute', 'image', 'block-storage')


def servers(*items, next_link=None):
    links = [{'rel': 'next', 'href': next_link}] if next_link else []
    return Response(200, {'servers': list(items), 'servers_links': links})


def test_a_private_image_never_shared_is_checked_completely_by_its_owner():
    conn = connection(['member'], NO_IMAGES, [servers({'id': 's1', 'name': 'web', 'tenant_id': 'p-alpha'})])
    usage = UsageLookup(conn)(IMAGE)
    assert usage['servers'] == [{'id': 's1', 'name': 'web', 'project_id': 'p-alpha', 'status': None}]
    assert usage['not_checked'] == []
    assert usage['volumes'] == []  # no block-storage endpoint: no volumes can exist
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


def test_an_admin_finds_volumes_by_cinders_image_filter_in_one_request_whatever_their_number():
    many = [volume(f'v{n}', project='p-beta') for n in range(50)]
    for found in ([volume('v0', project='p-beta')], many):
        conn = connection(['admin'], NO_IMAGES, [servers()], WITH_CINDER, [volumes(*found)])
        lookup = UsageLookup(conn)
        usage = lookup(IMAGE)
        assert len(usage['volumes']) == len(found)
        assert len(conn.block_storage.calls) == 1
        method, url, kwargs = conn.block_storage.calls[0]
        assert (method, url) == ('GET', '/volumes/detail')
        assert kwargs['headers'] == {'OpenStack-API-Version': 'volume 3.33'}
        assert kwargs['params']['all_tenants'] == 1 and kwargs['params']['limit'] == 1000
        assert json.loads(kwargs['params']['glance_metadata']) == {'image_id': 'img-1'}
        assert lookup.volumes_lookup == 'filtered'
    assert usage['volumes'][0] == {
        'id': 'v0',
        'name': 'vol-v0',
        'project_id': 'p-beta',
        'status': 'available',
        'attached_to': [],
    }


def test_a_detached_volume_blocks_and_is_named_with_project_and_status():
    conn = connection(['admin'], NO_IMAGES, [servers()], WITH_CINDER, [volumes(volume('v1', project='p-beta'))])
    usage = UsageLookup(conn)(IMAGE)
    assert blocking_usage(usage) == ['volume vol-v1 (v1, project p-beta, status available)']


def test_a_volume_backed_server_is_found_through_its_root_volume():
    # Nova lists a server booted from a volume with no image: its volume names the image.
    root = volume('v1', project='p-alpha', status='in-use', server='s9')
    conn = connection(['admin'], NO_IMAGES, [servers()], WITH_CINDER, [volumes(root)])
    usage = UsageLookup(conn)(IMAGE)
    assert usage['servers'] == []
    assert blocking_usage(usage) == ['volume vol-v1 (v1, project p-alpha, status in-use, attached to server s9)']


def test_a_refused_filter_falls_back_to_listing_the_callers_volumes_and_matching_them_here():
    refused = Response(400, {'badRequest': {'message': 'Invalid filters glance_metadata are found in query options.'}})
    pages = [
        volumes(
            volume('v1'),
            volume('v2', image_id='other'),
            volume('v3', image_id=None),
            next_link='/volumes/detail?marker=v3',
        ),
        volumes(volume('v4')),
    ]
    conn = connection(['member'], NO_IMAGES, [servers()], WITH_CINDER, [refused, *pages])
    lookup = UsageLookup(conn)
    usage = lookup(IMAGE)
    assert [v['id'] for v in usage['volumes']] == ['v1', 'v4']
    assert usage['volumes'][0]['project_id'] == 'p-alpha'  # the caller's own project
    assert lookup.volumes_lookup == 'listed'
    calls = conn.block_storage.calls
    assert len(calls) == 3
    assert calls[1][2]['params'] == {'limit': 1000} and calls[1][2]['headers'] == {}
    assert calls[2][1] == '/volumes/detail?marker=v3' and calls[2][2]['params'] is None
    assert usage['not_checked'] == []


def test_a_cinder_that_ignores_the_filter_reports_only_the_images_volumes():
    conn = connection(
        ['admin'], NO_IMAGES, [servers()], WITH_CINDER, [volumes(volume('v1'), volume('v2', image_id='other'))]
    )
    assert [v['id'] for v in UsageLookup(conn)(IMAGE)['volumes']] == ['v1']


def test_a_member_cannot_rule_out_other_projects_volumes_of_a_shared_image():
    glance_responses = [Response(200, {'members': [{'member_id': 'p-beta'}]}), *NO_IMAGES]
    conn = connection(['member'], glance_responses, [servers()], WITH_CINDER, [volumes()])
    usage = UsageLookup(conn)(dict(IMAGE, visibility='shared'))
    assert usage['volumes'] == []
    unchecked = {entry['resource']: entry['reason'] for entry in usage['not_checked']}
    assert 'volumes of other projects are only visible to an admin' in unchecked['volumes']
    assert any(line.startswith('volumes not checked: ') for line in blocking_usage(usage))


def test_a_failed_volume_listing_is_not_checked_never_unused():
    for status in (403, 500):
        conn = connection(['admin'], NO_IMAGES, [servers()], WITH_CINDER, [Response(status, {})])
        usage = UsageLookup(conn)(IMAGE)
        assert 'volumes' not in usage
        assert {'resource': 'volumes', 'reason': f'Cinder answered HTTP {status} to the volume listing'} in usage[
            'not_checked'
        ]
        assert blocking_usage(usage)
    # The fallback listing failing too is reported with its own status.
    conn = connection(['member'], NO_IMAGES, [servers()], WITH_CINDER, [Response(400, {}), Response(503, {})])
    usage = UsageLookup(conn)(IMAGE)
    assert any('HTTP 503' in entry['reason'] for entry in usage['not_checked'])


def test_a_volume_cinders_filter_matched_counts_when_its_image_metadata_is_not_shown():
    # Cinder leaves volume_image_metadata out of a volume's view when its policy
    # (volume_extension:volume_image_metadata:show) refuses the caller or reading it fails,
    # while its glance_metadata filter still matched the volume: the volume uses the image.
    hidden = volume('v1', image_id=None, project='p-beta', status='in-use', server='s9')
    conn = connection(['admin'], NO_IMAGES, [servers()], WITH_CINDER, [volumes(hidden, volume('v2', image_id='other'))])
    usage = UsageLookup(conn)(IMAGE)
    assert [v['id'] for v in usage['volumes']] == ['v1']
    assert blocking_usage(usage) == ['volume vol-v1 (v1, project p-beta, status in-use, attached to server s9)']
