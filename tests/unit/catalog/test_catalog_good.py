"""Good catalogs load into exactly the expected model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import catalog

GOOD = Path(__file__).resolve().parent / 'fixtures' / 'good'
PACKAGE = Path(__file__).resolve().parents[3] / 'plugins' / 'module_utils' / 'catalog'
SHA = {
    1: '0cf457e24a479f02fd4d34540389f720f0807dcff92a7562108165b2637ea82f',
    2: '5a0717cb6596468ea1dffa86011f9b0f497348d80421835b51799f9aeb455642',
    3: 'd9f313aef2d97e58def0511fdc17512d53e6b30d578860ae04b5288c6a239010',
    4: 'cd9642ec4090bd48559965f15bacc913b5420818d39d0cc7e1b59f4a9257c920',
    5: '32d86efbce5098c8a227b0581016904fc508cd2f8770f26d750c35aeb53d48e4',
    6: 'ab8a2ec1f732c35036207d3843583dff1869301e574c15badd23f80cd05ad19a',
    7: '85b78513b6710b7086fb09fc9d8296d422cfb650b92b7a555ef570144cd34e0f',
    8: '7bbdc68b22c5789b4d43254b1b59fc1346ac64699dc061947e05113195d99c4b',
}


def image(name, source, sha256, origin, **fields):
    """A full as_dict() of a CatalogImage: the format's defaults, then `fields`."""
    result = {
        'name': name,
        'source': source,
        'sha256': sha256,
        'disk_format': 'qcow2',
        'container_format': 'bare',
        'min_disk': 0,
        'min_ram': 0,
        'properties': {},
        'tags': [],
        'visibility': 'private',
        'protected': False,
        'hidden': False,
        'members': [],
        'origin': {'file': origin[0], 'line': origin[1]},
        'series': None,
        'version': None,
        'released': None,
        'rank': None,
        'desired_state': 'active',
        'deactivate_after_seconds': None,
        'delete_after_seconds': None,
        'expected': {'sha256': sha256},
        'checksum_url': None,
        'id': None,
        'state': 'present',
        'alias': None,
        'update_published': True,
        'version_values': {},
        'remembered': False,
        'convert_to': None,
    }
    if fields.get('series'):
        result['update_published'] = False
    assert set(fields) <= set(result)
    result.update(fields)
    return result


@pytest.fixture(autouse=True)
def in_good(monkeypatch):
    monkeypatch.chdir(GOOD)


def test_single_file():
    loaded = catalog.load_catalog('single.yml')
    assert loaded.as_dict() == {
        'images': [
            image(
                'cirros-0.6.2',
                {'file': str(GOOD / 'images' / 'cirros.qcow2')},
                SHA[1],
                ('single.yml', 3),
                min_disk=1,
                min_ram=128,
                properties={
                    'architecture': 'x86_64',
                    'hw_cpu_cores': '2',
                    'hw_rng_rate_bytes': '1.5',
                    'hw_vif_multiqueue_enabled': 'false',
                    'os_distro': 'cirros',
                    'os_require_quiesce': 'true',
                },
                tags=['gold', 'small'],
                visibility='shared',
                protected=True,
                members=['beta', 'alpha'],
            )
        ],
        'series': [],
        'sources': ['single.yml'],
    }
    assert isinstance(loaded.images[0], catalog.CatalogImage)
    assert str(loaded.images[0].origin) == 'single.yml:3'
    json.dumps(loaded.as_dict())


def test_directory_of_files_with_defaults():
    loaded = catalog.load_catalog('directory')
    base, rescue = 'directory/10-base.yml', 'directory/20-rescue.yaml'
    assert loaded.sources == [base, rescue]
    assert [item.as_dict() for item in loaded.images] == [
        image(
            'alpine-3.20',
            {'file': str(GOOD / 'directory' / 'images' / 'alpine.qcow2')},
            SHA[2],
            (base, 9),
            properties={'architecture': 'aarch64', 'hw_qemu_guest_agent': 'yes', 'os_distro': 'alpine'},
            tags=['gold', 'small'],
            visibility='public',
        ),
        image(
            'windows-2022',
            {'url': 'https://images.example.org/windows-2022.vhdx'},
            SHA[3],
            (base, 14),
            disk_format='vhdx',
            min_ram=4096,
            properties={'architecture': 'x86_64', 'hw_qemu_guest_agent': 'yes'},
            tags=['gold'],
            visibility='shared',
            members=['windows-licensed'],
        ),
        image(
            'rescue',
            {'url': 'http://images.example.org/rescue.iso'},
            SHA[4],
            (rescue, 3),
            disk_format='iso',
            hidden=True,
        ),
    ]
    assert loaded.series == []


def test_series_with_keep_and_retire():
    loaded = catalog.load_catalog('series.yml')
    noble = {
        'properties': {'os_distro': 'ubuntu', 'os_version': '24.04'},
        'tags': ['gold'],
        'visibility': 'public',
        'series': 'ubuntu-24.04',
    }
    debian = {'disk_format': 'raw', 'tags': ['gold'], 'visibility': 'public', 'series': 'debian-12'}
    assert [item.as_dict() for item in loaded.images] == [
        image(
            'Ubuntu 24.04 20261101',
            {'url': 'https://example.org/noble-20261101.img'},
            SHA[6],
            ('series.yml', 19),
            version='20261101',
            rank=0,
            **noble,
        ),
        image(
            'Ubuntu 24.04 20261015',
            {'file': str(GOOD / 'images' / 'noble-20261015.qcow2')},
            SHA[5],
            ('series.yml', 16),
            version='20261015',
            rank=1,
            **noble,
        ),
        image(
            'Ubuntu 24.04 20260901',
            {'url': 'https://example.org/noble-20260901.img'},
            SHA[7],
            ('series.yml', 22),
            version='20260901',
            rank=2,
            desired_state='hidden',
            hidden=True,
            deactivate_after_seconds=30 * 86400,
            delete_after_seconds=13 * 7 * 86400,
            **noble,
        ),
        # released dates order this series: as text, '12.9' would sort above '12.10'
        image(
            'debian-12-12.10',
            {'url': 'https://example.org/debian-12.10.raw'},
            SHA[1],
            ('series.yml', 34),
            version='12.10',
            released='2025-03-15',
            rank=0,
            **debian,
        ),
        image(
            'debian-12-12.9',
            {'url': 'https://example.org/debian-12.9.raw'},
            SHA[8],
            ('series.yml', 30),
            version='12.9',
            released='2025-01-11',
            rank=1,
            desired_state='retired',
            deactivate_after_seconds=12 * 3600,
            **debian,
        ),
    ]
    assert [item.as_dict() for item in loaded.series] == [
        {
            'series': 'ubuntu-24.04',
            'name': 'Ubuntu 24.04 {version}',
            'keep': 2,
            'hide': True,
            'deactivate_after': '30d',
            'deactivate_after_seconds': 2592000,
            'delete_after': '13w',
            'delete_after_seconds': 7862400,
            'order': 'version',
            'versions': ['20261101', '20261015', '20260901'],
            'images': ['Ubuntu 24.04 20261101', 'Ubuntu 24.04 20261015', 'Ubuntu 24.04 20260901'],
            'origin': {'file': 'series.yml', 'line': 6},
            'alias': None,
            'keep_last': None,
            'update_published': False,
            'state': 'present',
            'active': ['Ubuntu 24.04 20261101', 'Ubuntu 24.04 20261015'],
            'retired': ['Ubuntu 24.04 20260901'],
        },
        {
            'series': 'debian-12',
            'name': 'debian-12-{version}',
            'keep': 1,
            'hide': False,
            'deactivate_after': '12h',
            'deactivate_after_seconds': 43200,
            'delete_after': None,
            'delete_after_seconds': None,
            'order': 'released',
            'versions': ['12.10', '12.9'],
            'images': ['debian-12-12.10', 'debian-12-12.9'],
            'origin': {'file': 'series.yml', 'line': 25},
            'alias': None,
            'keep_last': None,
            'update_published': False,
            'state': 'present',
            'active': ['debian-12-12.10'],
            'retired': ['debian-12-12.9'],
        },
    ]
    assert loaded.get_series('debian-12').active == ['debian-12-12.10']
    assert loaded.image('Ubuntu 24.04 20260901').desired_state == catalog.STATE_HIDDEN
    assert loaded.image('nothing') is None and loaded.get_series('nothing') is None


def test_several_paths_merge_in_order_and_a_file_loads_once():
    loaded = catalog.load_catalog(['single.yml', 'directory', 'directory/20-rescue.yaml', 'series.yml'])
    assert loaded.sources == ['single.yml', 'directory/10-base.yml', 'directory/20-rescue.yaml', 'series.yml']
    assert loaded.names == [
        'cirros-0.6.2',
        'alpine-3.20',
        'windows-2022',
        'rescue',
        'Ubuntu 24.04 20261101',
        'Ubuntu 24.04 20261015',
        'Ubuntu 24.04 20260901',
        'debian-12-12.10',
        'debian-12-12.9',
    ]
    assert catalog.catalog_files(['directory', 'single.yml']) == [
        'directory/10-base.yml',
        'directory/20-rescue.yaml',
        'single.yml',
    ]


def test_texts_keep_lines_and_resolve_files_against_their_name():
    text = (GOOD / 'single.yml').read_text(encoding='utf-8')
    loaded = catalog.load_catalog_texts([(str(GOOD / 'single.yml'), text)])
    assert loaded.images[0].origin == catalog.Origin(str(GOOD / 'single.yml'), 3)
    assert loaded.images[0].source == {'file': str(GOOD / 'images' / 'cirros.qcow2')}


def test_documents_have_no_lines():
    document = {
        'version': 1,
        'images': [{'name': 'x', 'source': {'url': 'https://h/x'}, 'sha256': SHA[1], 'disk_format': 'raw'}],
    }
    loaded = catalog.load_catalog_documents([('x.yml', document)])
    assert loaded.images[0].origin.as_dict() == {'file': 'x.yml', 'line': None}
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog_documents([('x.yml', dict(document, version=3))])
    assert raised.value.messages == ["x.yml: field 'version': unsupported catalog version 3; expected 1"]


@pytest.mark.parametrize(
    'text, seconds',
    [
        ('12h', 43200),
        ('30d', 2592000),
        ('2w', 1209600),
        ('1d', 86400),
        ('0d', None),
        ('30', None),
        ('30 d', None),
        ('1.5d', None),
        (30, None),
        ('30D', None),
        ('01d', None),
    ],
)
def test_parse_duration(text, seconds):
    assert catalog.parse_duration(text) == seconds


@pytest.mark.parametrize('value, text', [(True, 'true'), (False, 'false'), (2, '2'), (1.5, '1.5'), ('yes', 'yes')])
def test_property_text(value, text):
    assert catalog.property_text(value) == text


def test_package_is_private_and_ansible_free():
    for path in sorted(PACKAGE.glob('*.py')):
        text = path.read_text(encoding='utf-8')
        assert text.startswith('# PRIVATE to the collection: not a public API.\n'), path
        assert 'import ansible' not in text and 'from ansible' not in text, path


def test_the_documented_example_loads():
    text = (PACKAGE.parents[2] / 'docs' / 'catalog.md').read_text(encoding='utf-8')
    example = text.split('```yaml\n', 1)[1].split('```', 1)[0]
    loaded = catalog.load_catalog_texts([('catalog/base.yml', example)], check_files=False)
    assert loaded.names == [
        'cirros-0.6.2',
        'windows-2022',
        'Ubuntu 24.04 20261101',
        'Ubuntu 24.04 20261015',
        'debian-12-12.10',
        'debian-12-12.9',
    ]
    assert [item.desired_state for item in loaded.images] == [
        'active',
        'active',
        'active',
        'active',
        'active',
        'retired',
    ]


def test_the_documented_mirror_example_loads():
    text = (PACKAGE.parents[2] / 'docs' / 'catalog.md').read_text(encoding='utf-8')
    example = text.split('# catalog/mirror.yml', 1)[1].split('\n', 1)[1].split('```', 1)[0]
    loaded = catalog.load_catalog_texts([('catalog/mirror.yml', example)], check_files=False)
    (image,) = loaded.images
    assert image.source == {'cloud': 'region-one', 'image': 'ubuntu-24.04-gold'}
    assert image.expected == {}
    assert image.sha256 is None
