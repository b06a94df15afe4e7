"""Bad catalogs: each fixture reports exactly the problems listed in fixtures/bad/expected.yml."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.imagegov.openstack.plugins.module_utils import catalog

BAD = Path(__file__).resolve().parent / 'fixtures' / 'bad'
EXPECTED = yaml.safe_load((BAD / 'expected.yml').read_text(encoding='utf-8'))


def test_every_bad_fixture_has_expectations():
    fixtures = sorted(name for name in os.listdir(BAD) if name != 'expected.yml')
    assert fixtures == sorted(EXPECTED)
    assert len(fixtures) >= 15


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_bad_catalog_reports_exactly_its_problems(name, monkeypatch):
    monkeypatch.chdir(BAD)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog(name)
    assert raised.value.messages == EXPECTED[name]


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_each_problem_names_file_and_line(name):
    for message in EXPECTED[name]:
        assert message.startswith(name)
        if name != '26_not_a_mapping.yml':
            assert re.match(r'^[^:]+:[0-9]+: ', message), message


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_bad_fixture_is_bad_in_one_place_unless_it_says_many(name):
    if 'many' not in name:
        assert len(EXPECTED[name]) == 1


def test_problem_parts(monkeypatch):
    monkeypatch.chdir(BAD)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog('02_bad_sha256.yml')
    (problem,) = raised.value.problems
    assert isinstance(problem, catalog.CatalogProblem)
    assert problem.as_dict() == {
        'file': '02_bad_sha256.yml',
        'line': 14,
        'item': "series 'ubuntu-24.04' (images[1])",
        'field': 'versions[1].sha256',
        'message': "must be 64 hexadecimal characters (a sha256), got 'abc'",
        'text': EXPECTED['02_bad_sha256.yml'][0],
    }


def test_summary_lists_every_problem(monkeypatch):
    monkeypatch.chdir(BAD)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog('29_many_problems.yml')
    text = str(raised.value)
    assert text.startswith('12 problems in catalog:\n  - 29_many_problems.yml:2: ')
    assert text.split('\n  - ')[1:] == EXPECTED['29_many_problems.yml']


def test_problems_of_several_files_and_paths_are_all_reported(monkeypatch, tmp_path):
    monkeypatch.chdir(BAD)
    (tmp_path / 'notes.txt').write_text('no catalog here')
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog(
            ['01_missing_sha256.yml', 'no-such-dir', str(tmp_path), '16_yaml_syntax.yml.txt', '10_keep_zero.yml']
        )
    assert raised.value.messages == [
        'no-such-dir: no such catalog file or directory',
        f'{tmp_path}: no *.yml or *.yaml catalog files in this directory',
        EXPECTED['16_yaml_syntax.yml.txt'][0],  # files that cannot be read or parsed come first
        EXPECTED['01_missing_sha256.yml'][0],
        EXPECTED['10_keep_zero.yml'][0],
    ]


def test_same_name_in_two_files_names_both(monkeypatch):
    monkeypatch.chdir(BAD)
    (message,) = EXPECTED['07_duplicate_name_across_files']
    assert message.startswith('07_duplicate_name_across_files/b.yml:8: ')
    assert message.endswith('at 07_duplicate_name_across_files/a.yml:3')
    with pytest.raises(catalog.CatalogError) as raised:  # the other order blames the other file
        catalog.load_catalog(['07_duplicate_name_across_files/b.yml', '07_duplicate_name_across_files/a.yml'])
    assert raised.value.messages == [
        "07_duplicate_name_across_files/a.yml:3: image 'cirros' (images[0]): field 'name': duplicate image name "
        "'cirros'; already defined by image 'cirros' (images[1]) at 07_duplicate_name_across_files/b.yml:8"
    ]


def test_missing_source_file_is_accepted_without_check_files(monkeypatch):
    monkeypatch.chdir(BAD)
    loaded = catalog.load_catalog('15_missing_source_file.yml', check_files=False)
    assert loaded.images[0].source == {'file': str(BAD / 'images' / 'no-such.qcow2')}


def test_missing_libraries_are_named(monkeypatch):
    from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import loader

    monkeypatch.setattr(loader, 'cerberus', None)
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog_texts([('c.yml', 'version: 1\n')])
    assert raised.value.messages == [
        '<catalog>: needs the Python libraries cerberus on the host that loads the catalog: pip install cerberus '
        '(see requirements.txt)'
    ]


@pytest.mark.parametrize(
    'text, expected',
    [
        ('', ['c.yml: must be a mapping with version and images, got an empty document']),
        ('images:\n  - name: x\n', ["c.yml: field 'version': required field is missing"]),
        ('version: true\nimages: [{}]\n', ["c.yml:1: field 'version': unsupported catalog version true; expected 1"]),
        (
            'version: 1\ndefaults: []\nimages: [{}]\n',
            [
                "c.yml:2: field 'defaults': must be of dict type, got []",
                "c.yml:3: images[0]: field 'name': required field is missing",
                "c.yml:3: images[0]: field 'source': required field is missing (a file, url or cloud; only an unmanaged entry may omit it)",
                "c.yml:3: images[0]: field 'sha256': a checksum is required: give one of sha256, checksum (sha256:<hex> or sha512:<hex>) or checksum_url",
            ],
        ),
        (
            'version: 1\ndefaults: {visibility: shared, members: [a, a]}\nimages:\n'
            '  - {name: x, source: {url: "http://h/x"}, sha256: %s, disk_format: raw, visibility: public}\n'
            % ('a' * 64),
            [
                "c.yml:2: field 'defaults.members[1]': duplicate member 'a'",
                "c.yml:4: image 'x' (images[0]): field 'members': only allowed with visibility 'shared', "
                "got visibility 'public' (members come from the defaults)",
            ],
        ),
        (
            'version: 1\nimages:\n  - {name: "x {version}", source: {url: "https://h/x"}, sha256: %s, disk_format: raw,'
            ' properties: {owner_specified.openstack.sha256: x, os_glance_importing_to_stores: y, "": z, k: null}}\n'
            % ('a' * 64),
            [
                "c.yml:3: image 'x {version}' (images[0]): field 'name': contains {version} but this is a single image; "
                'a series needs series: and versions:',
                "c.yml:3: image 'x {version}' (images[0]): field 'properties.''': must not be empty",
                "c.yml:3: image 'x {version}' (images[0]): field 'properties.os_glance_importing_to_stores': reserved property "
                "name 'os_glance_importing_to_stores' (Glance's own os_glance namespace)",
                "c.yml:3: image 'x {version}' (images[0]): field 'properties.owner_specified.openstack.sha256': reserved "
                "property name 'owner_specified.openstack.sha256' (set by the collection from sha256)",
                "c.yml:3: image 'x {version}' (images[0]): field 'properties.k': must be a string, number or boolean "
                '(stored as text), got null',
            ],
        ),
        (
            'version: 1\nimages:\n  - {{series: s, name: "n-{{version}}", disk_format: raw, versions: [{{version: "1", '
            'source: {{url: "https://h/1"}}, sha256: {}}}]}}\n  - {{series: s, name: "m-{{version}}", disk_format: raw, '
            'versions: [{{version: "1", source: {{url: "https://h/1"}}, sha256: {}}}]}}\n'.format('a' * 64, 'a' * 64),
            [
                "c.yml:4: series 's' (images[1]): field 'series': duplicate series 's'; already defined by series 's' "
                '(images[0]) at c.yml:3'
            ],
        ),
    ],
)
def test_more_bad_texts(text, expected):
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog_texts([('c.yml', text)])
    assert raised.value.messages == expected
