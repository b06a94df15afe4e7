"""The Glance layer over a recorded HTTP adapter: literal filters, paging, one lookup,
errors with Glance's own message, conflicts, ranged downloads."""

from __future__ import annotations

import pytest
from glance_double import Adapter, Response

from ansible_collections.imagegov.openstack.plugins.module_utils._glance import (
    AmbiguousImage,
    Glance,
    GlanceConflict,
    GlanceError,
    literal_filters,
)

IMAGE_ID = '6f1c1c5e-7d0f-5b8a-9a4e-2f9e0d3c6b71'


def glance(*responses):
    conn = type('Conn', (), {})()
    conn.image = Adapter(*responses)
    return Glance(conn)


def test_filters_glance_parses_as_operators_are_sent_literally():
    assert literal_filters([('name', 'in:web'), ('owner', 'p'), ('status', 'active'), ('tag', None)]) == [
        ('name', 'eq:in:web'),
        ('owner', 'p'),
        ('status', 'eq:active'),
    ]


def test_listing_follows_the_next_link_page_after_page():
    api = glance(
        Response(200, {'images': [{'id': 'a'}], 'next': '/v2/images?marker=a&limit=1000&name=eq%3Aweb'}),
        Response(200, {'images': [{'id': 'b'}]}),
    )
    assert [image['id'] for image in api.iter_images({'name': 'web'})] == ['a', 'b']
    calls = api.api.calls
    assert calls[0][2]['params'] == [('name', 'eq:web'), ('limit', 1000)]
    assert ('marker', 'a') in calls[1][2]['params']
    assert api.request_count == 2


def test_all_images_lists_both_hidden_passes_once_each_image():
    api = glance(
        Response(200, {'images': [{'id': 'a', 'status': 'active'}, {'id': 'k', 'status': 'killed'}]}),
        Response(200, {'images': [{'id': 'a', 'status': 'active'}, {'id': 'h', 'status': 'active'}]}),
    )
    assert [image['id'] for image in api.all_images({'owner': 'p'}, live=True)] == ['a', 'h']
    assert [call[2]['params'][-2] for call in api.api.calls] == [('os_hidden', 'false'), ('os_hidden', 'true')]


def test_find_by_id_then_by_literal_name_and_several_are_an_error():
    api = glance(
        Response(404, text='not found'),
        Response(200, {'images': [{'id': 'x1', 'status': 'active'}]}),
        Response(200, {'images': [{'id': 'x2', 'status': 'active', 'owner': 'o'}]}),
    )
    with pytest.raises(AmbiguousImage, match=r"Option image: 2 images named '6f1c.*x1 .*x2 .*Give its id"):
        api.find(IMAGE_ID, 'Option image')


def test_a_live_image_is_not_one_being_deleted():
    api = glance(Response(200, {'id': IMAGE_ID, 'status': 'pending_delete'}))
    assert api.live_image(IMAGE_ID) is None


def test_errors_carry_glances_message_whatever_its_shape():
    html = Response(
        403,
        text='<html><body><h1>403 Forbidden</h1>You may not</body></html>',
        headers={'x-openstack-request-id': 'req-1'},
    )
    with pytest.raises(GlanceError) as raised:
        glance(html).deactivate(IMAGE_ID)
    assert str(raised.value) == f'Deactivating image {IMAGE_ID} failed: HTTP 403: 403 Forbidden You may not'
    assert raised.value.request_id == 'req-1'
    nested = Response(400, {'badRequest': {'message': 'bad sort key'}})
    with pytest.raises(GlanceError, match='bad sort key'):
        glance(nested).reactivate(IMAGE_ID)


def test_an_id_that_is_taken_is_a_conflict():
    with pytest.raises(GlanceConflict):
        glance(Response(409, text='Image ID exists')).create_image({'id': IMAGE_ID, 'name': 'x'})


def test_a_member_a_concurrent_run_added_first_is_taken_as_it_is():
    api = glance(Response(409, text='exists'), Response(200, {'member_id': 'p', 'status': 'pending'}))
    assert api.add_member(IMAGE_ID, 'p') == {'member_id': 'p', 'status': 'pending'}


def test_a_ranged_download_reports_the_whole_length_and_stops_at_the_range():
    response = Response(206, headers={'Content-Range': 'bytes 0-3/100'}, chunks=[b'abcdefgh'])
    api = glance(response)
    length, chunks = api.download(IMAGE_ID, first_bytes=4)
    assert length == 100 and b''.join(chunks) == b'abcd'
    assert api.api.calls[0][2]['headers'] == {'Range': 'bytes=0-3'}
    whole = glance(Response(200, headers={'Content-Length': '8'}, chunks=[b'abcd', b'efgh']))
    length, chunks = whole.download(IMAGE_ID)
    assert length == 8 and b''.join(chunks) == b'abcdefgh'


def test_a_download_from_an_offset_asks_for_the_rest_and_reads_past_a_whole_answer():
    api = glance(Response(206, headers={'Content-Range': 'bytes 5-9/10'}, chunks=[b'fghij']))
    length, chunks = api.download(IMAGE_ID, offset=5)
    assert length == 10 and b''.join(chunks) == b'fghij'
    assert api.api.calls[0][2]['headers'] == {'Range': 'bytes=5-'}
    # A server that ignores Range answers 200 with everything: the first bytes are skipped.
    ignoring = glance(Response(200, headers={'Content-Length': '10'}, chunks=[b'abc', b'defg', b'hij']))
    length, chunks = ignoring.download(IMAGE_ID, offset=5)
    assert length == 10 and b''.join(chunks) == b'fghij'


def test_member_and_import_calls():
    api = glance(
        Response(200, {'members': [{'member_id': 'p', 'status': 'accepted'}]}),
        Response(204),
        Response(200, {'member_id': 'p', 'status': 'rejected'}),
        Response(202),
        Response(204),
        Response(204),
    )
    assert api.list_members(IMAGE_ID) == [{'member_id': 'p', 'status': 'accepted'}]
    api.remove_member(IMAGE_ID, 'p')
    assert api.update_member(IMAGE_ID, 'p', 'rejected')['status'] == 'rejected'
    api.start_import(IMAGE_ID, 'web-download', 'http://x/y')
    api.stage(IMAGE_ID, b'data')
    api.delete_image(IMAGE_ID)
    assert api.api.calls[3][2]['json'] == {'method': {'name': 'web-download', 'uri': 'http://x/y'}}
    assert [call[0] for call in api.api.calls] == ['GET', 'DELETE', 'PUT', 'POST', 'PUT', 'DELETE']


def test_transfer_calls_import_options_stores_and_tasks():
    api = glance(
        Response(200, {'import-methods': {'value': ['glance-direct', 'glance-download']}}),
        Response(200, {'stores': [{'id': 'fs', 'default': 'true'}, {'id': 'ceph'}]}),
        Response(404, text='no multi-store'),
        Response(200, {'tasks': [{'status': 'failure', 'message': 'no'}]}),
        Response(202),
        Response(204),
    )
    assert api.import_methods() == ['glance-direct', 'glance-download']
    assert api.store_ids() == ['fs', 'ceph']
    assert api.store_ids() is None
    assert api.image_tasks(IMAGE_ID) == [{'status': 'failure', 'message': 'no'}]
    api.start_import(
        IMAGE_ID, 'glance-download', method_fields={'glance_image_id': 'x'}, extra={'stores': ['fs', 'ceph']}
    )
    api.upload(IMAGE_ID, b'data', store='ceph')
    calls = api.api.calls
    assert calls[4][2]['json'] == {
        'method': {'name': 'glance-download', 'glance_image_id': 'x'},
        'stores': ['fs', 'ceph'],
    }
    assert calls[5][2]['headers']['X-Image-Meta-Store'] == 'ceph'
