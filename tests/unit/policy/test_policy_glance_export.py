from __future__ import annotations

from ansible_collections.imagegov.openstack.plugins.module_utils.policy import (
    glance_settings,
    load_default_policy,
    load_policy_text,
)


def test_default_policy_becomes_glance_settings():
    settings = glance_settings(load_default_policy())
    assert settings['policy_rules'] == {'publicize_image': 'role:admin', 'communitize_image': 'role:admin'}
    assert settings['api_options'] == {
        'DEFAULT': {'image_size_cap': str(25 * 1024**3)},
        'image_format': {
            'disk_formats': 'qcow2,raw,iso,aki,ari,ami',
            'container_formats': 'bare,ami,aki,ari,ova',
            'require_image_format_match': 'true',
        },
    }
    assert '"publicize_image": "role:admin"' in settings['policy_yaml'].splitlines()
    assert '[image_format]' in settings['glance_api_conf'].splitlines()
    assert sorted(note.split(':')[0] for note in settings['not_exported']) == [
        'capture-own-servers',
        'format-integrity',
        'max-image-size',
        'narrow-in-use-admin',
        'no-delete-in-use',
        'no-narrow-in-use',
        'public-image-metadata',
    ]


def test_only_global_enforce_rules_are_exported():
    policy = load_policy_text("""
version: 1
rules:
  - {id: scoped, type: max_size, params: {max_gib: 1}, match: {projects: [alpha]}}
  - {id: warned, type: allowed_formats, mode: warn, params: {disk_formats: [raw]}}
  - {id: names, type: name_pattern, params: {pattern: '^[a-z]'}}
exceptions:
  - {id: lab, rules: [scoped], reason: lab, owner: ops, expires: '2999-01-01'}
""")
    settings = glance_settings(policy)
    assert settings['policy_rules'] == {} and settings['api_options'] == {}
    assert [note.split(':')[0] for note in settings['not_exported']] == ['scoped', 'warned', 'names', 'exception lab']


def test_overlapping_rules_keep_the_strictest_settings():
    policy = load_policy_text("""
version: 1
rules:
  - {id: a, type: max_size, params: {max_gib: 10, which: [size]}}
  - {id: b, type: max_size, params: {max_gib: 5, which: [size]}}
  - {id: c, type: allowed_formats, params: {disk_formats: [qcow2, raw]}}
  - {id: d, type: allowed_formats, params: {disk_formats: [raw, iso]}}
  - {id: e, type: restricted_visibility, params: {visibilities: [public], roles: [admin]}}
  - {id: f, type: restricted_visibility, params: {visibilities: [public], roles: [publisher]}}
""")
    settings = glance_settings(policy)
    assert settings['api_options']['DEFAULT']['image_size_cap'] == str(5 * 1024**3)
    assert settings['api_options']['image_format']['disk_formats'] == 'raw'
    assert settings['policy_rules'] == {'publicize_image': '(role:admin) and (role:publisher)'}


def test_allowed_sources_become_web_download_filters():
    policy = load_policy_text("""
version: 1
rules:
  - id: gold
    type: allowed_sources
    params:
      url_prefixes: ['https://Images.Example.org/gold/', 'https://images.example.org:443/silver/',
                     'http://mirror.example.net:8080/']
      files: deny
""")
    settings = glance_settings(policy)
    assert settings['api_options'] == {
        'import_filtering_opts': {
            'allowed_schemes': 'https,http',
            'allowed_hosts': 'images.example.org,mirror.example.net',
            'allowed_ports': '443,8080',
        }
    }
    assert settings['glance_api_conf'].splitlines()[1:] == [
        '[import_filtering_opts]',
        'allowed_hosts = images.example.org,mirror.example.net',
        'allowed_ports = 443,8080',
        'allowed_schemes = https,http',
    ]
    assert settings['not_exported'] == [
        'gold: Glance filters web-download URLs by scheme, host and port only; the path prefixes '
        '(https://Images.Example.org/gold/, https://images.example.org:443/silver/) stay with the collection',
        'gold: Glance checks scheme, host and port each on its own, so it also allows combinations no prefix names',
        'gold: Glance cannot refuse image data uploaded from local files',
    ]


def test_allowed_sources_of_one_host_root_export_exactly():
    policy = load_policy_text("""
version: 1
rules:
  - {id: tls, type: allowed_sources, params: {schemes: [https]}}
  - {id: host, type: allowed_sources, params: {url_prefixes: ['https://images.example.org']}}
""")
    settings = glance_settings(policy)
    assert settings['api_options'] == {
        'import_filtering_opts': {
            'allowed_schemes': 'https',
            'allowed_hosts': 'images.example.org',
            'allowed_ports': '443',
        }
    }
    assert settings['not_exported'] == []


def test_allowed_sources_rules_intersect_and_never_export_an_empty_allowlist():
    policy = load_policy_text("""
version: 1
rules:
  - {id: a, type: allowed_sources, params: {url_prefixes: ['https://a.example/', 'https://b.example/']}}
  - {id: b, type: allowed_sources, params: {url_prefixes: ['https://b.example/']}}
  - {id: c, type: allowed_sources, params: {url_prefixes: ['https://c.example:8443/']}}
  - {id: scoped, type: allowed_sources, match: {projects: [lab]}, params: {url_prefixes: ['https://lab.example/']}}
  - {id: warned, type: allowed_sources, mode: warn, params: {files: deny}}
""")
    settings = glance_settings(policy)
    assert settings['api_options'] == {
        'import_filtering_opts': {'allowed_schemes': 'https', 'allowed_hosts': 'b.example', 'allowed_ports': '443'}
    }
    assert settings['not_exported'] == [
        'c: no hosts remain in common with the rules before it; Glance reads an empty allowed_hosts as no filter, '
        'so it keeps b.example',
        'c: no ports remain in common with the rules before it; Glance reads an empty allowed_ports as no filter, '
        'so it keeps 443',
        'scoped: applies to some images only (match:), Glance settings apply to all',
        'warned: mode warn: only enforce-mode rules become Glance settings',
    ]
