from __future__ import annotations

from ansible_collections.imagegov.openstack.plugins.module_utils.policy import (
    glance_settings, load_default_policy, load_policy_text)


def test_default_policy_becomes_glance_settings():
    settings = glance_settings(load_default_policy())
    assert settings['policy_rules'] == {'publicize_image': 'role:admin', 'communitize_image': 'role:admin'}
    assert settings['api_options'] == {
        'DEFAULT': {'image_size_cap': str(25 * 1024 ** 3)},
        'image_format': {'disk_formats': 'qcow2,raw,iso', 'container_formats': 'bare,ami,aki,ari,ova',
                         'require_image_format_match': 'true'},
    }
    assert '"publicize_image": "role:admin"' in settings['policy_yaml'].splitlines()
    assert '[image_format]' in settings['glance_api_conf'].splitlines()
    assert sorted(note.split(':')[0] for note in settings['not_exported']) == [
        'format-integrity', 'max-image-size', 'no-delete-in-use', 'public-image-metadata']


def test_only_global_enforce_rules_are_exported():
    policy = load_policy_text('''
version: 1
rules:
  - {id: scoped, type: max_size, params: {max_gib: 1}, match: {projects: [alpha]}}
  - {id: warned, type: allowed_formats, mode: warn, params: {disk_formats: [raw]}}
  - {id: names, type: name_pattern, params: {pattern: '^[a-z]'}}
exceptions:
  - {id: lab, rules: [scoped], reason: lab, owner: ops, expires: '2999-01-01'}
''')
    settings = glance_settings(policy)
    assert settings['policy_rules'] == {} and settings['api_options'] == {}
    assert [note.split(':')[0] for note in settings['not_exported']] == ['scoped', 'warned', 'names', 'exception lab']


def test_overlapping_rules_keep_the_strictest_settings():
    policy = load_policy_text('''
version: 1
rules:
  - {id: a, type: max_size, params: {max_gib: 10, which: [size]}}
  - {id: b, type: max_size, params: {max_gib: 5, which: [size]}}
  - {id: c, type: allowed_formats, params: {disk_formats: [qcow2, raw]}}
  - {id: d, type: allowed_formats, params: {disk_formats: [raw, iso]}}
  - {id: e, type: restricted_visibility, params: {visibilities: [public], roles: [admin]}}
  - {id: f, type: restricted_visibility, params: {visibilities: [public], roles: [publisher]}}
''')
    settings = glance_settings(policy)
    assert settings['api_options']['DEFAULT']['image_size_cap'] == str(5 * 1024 ** 3)
    assert settings['api_options']['image_format']['disk_formats'] == 'raw'
    assert settings['policy_rules'] == {'publicize_image': '(role:admin) and (role:publisher)'}
