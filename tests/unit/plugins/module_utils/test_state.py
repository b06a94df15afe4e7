from __future__ import annotations

from ansible_collections.imagegov.openstack.plugins.module_utils._state import (
    SHA256_PROPERTY,
    DesiredImage,
    apply_patch,
    content_bound_changes,
    make_diff,
    plan_patch,
)

CURRENT = {
    'id': 'i-1',
    'name': 'ubuntu',
    'status': 'active',
    'disk_format': 'qcow2',
    'container_format': 'bare',
    'visibility': 'shared',
    'protected': False,
    'os_hidden': False,
    'min_disk': 0,
    'min_ram': 0,
    'owner': 'p-1',
    'tags': ['b', 'a'],
    'size': 10,
    'os_distro': 'ubuntu',
    'hw_disk_bus': 'virtio',
    'os_glance_importing_to_stores': '',
    SHA256_PROPERTY: 'abc',
    'updated_at': 'then',
    'locations': [],
    'file': '/v2/images/i-1/file',
}


def test_in_step_is_an_empty_patch():
    desired = DesiredImage(
        attributes={'name': 'ubuntu', 'min_disk': 0, 'visibility': 'shared'},
        properties={'os_distro': 'ubuntu'},
        tags=['a', 'b'],
    )
    assert plan_patch(CURRENT, desired) == []


def test_unset_options_leave_fields_alone():
    assert plan_patch(CURRENT, DesiredImage(attributes={'visibility': None})) == []


def test_minimal_patch_for_attributes_properties_and_tags():
    desired = DesiredImage(
        attributes={'min_disk': 10, 'protected': True},
        properties={'os_distro': 'debian', 'architecture': 'x86_64'},
        tags=['c'],
    )
    assert plan_patch(CURRENT, desired) == [
        {'op': 'replace', 'path': '/min_disk', 'value': 10},
        {'op': 'replace', 'path': '/protected', 'value': True},
        {'op': 'add', 'path': '/architecture', 'value': 'x86_64'},
        {'op': 'replace', 'path': '/os_distro', 'value': 'debian'},
        {'op': 'replace', 'path': '/tags', 'value': ['a', 'b', 'c']},
    ]


def test_purge_removes_unlisted_properties_but_keeps_glance_and_identity_ones():
    desired = DesiredImage(properties={'os_distro': 'ubuntu'}, purge_properties=True)
    assert plan_patch(CURRENT, desired) == [{'op': 'remove', 'path': '/hw_disk_bus'}]


def test_removed_properties_go_without_a_purge_and_only_when_there():
    desired = DesiredImage(removed_properties=('hw_disk_bus', 'ramdisk_id'))
    assert plan_patch(CURRENT, desired) == [{'op': 'remove', 'path': '/hw_disk_bus'}]
    assert plan_patch(apply_patch(CURRENT, plan_patch(CURRENT, desired)), desired) == []


def test_purge_tags_to_nothing_clears_all_tags():
    desired = DesiredImage(tags=[], purge_tags=True)
    assert plan_patch(CURRENT, desired) == [{'op': 'replace', 'path': '/tags', 'value': []}]


def test_tags_without_purge_only_add():
    assert plan_patch(CURRENT, DesiredImage(tags=['a'])) == []


def test_simulation_matches_the_patch():
    desired = DesiredImage(
        attributes={'min_ram': 512}, properties={'x': '1'}, tags=[], purge_tags=True, purge_properties=True
    )
    after = apply_patch(CURRENT, plan_patch(CURRENT, desired))
    assert after['min_ram'] == 512 and after['x'] == '1' and after['tags'] == []
    assert 'os_distro' not in after and SHA256_PROPERTY in after
    assert plan_patch(after, desired) == []


def test_diff_drops_volatile_fields_and_sorts_tags():
    diff = make_diff(CURRENT, None)
    assert 'updated_at' not in diff['before'] and 'locations' not in diff['before']
    assert diff['before']['tags'] == ['a', 'b'] and diff['after'] == {}


def test_formats_are_bound_to_uploaded_data_only():
    desired = DesiredImage(attributes={'disk_format': 'raw'})
    assert content_bound_changes(CURRENT, desired) == ['disk_format']
    assert content_bound_changes(dict(CURRENT, status='queued'), desired) == []
