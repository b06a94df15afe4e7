"""Where catalog entries go (`targets`) and what differs per target (`overrides`)."""

from __future__ import annotations

import pytest

from ansible_collections.imagegov.openstack.plugins.module_utils import catalog
from ansible_collections.imagegov.openstack.plugins.module_utils.catalog import Target

SHA = 'ab' * 32
TEXT = f"""
version: 1
defaults:
  disk_format: qcow2
images:
  - name: everywhere
    source: {{url: http://images.example/a.qcow2}}
    sha256: {SHA}
    properties: {{os_distro: debian, hw_disk_bus: virtio}}
    overrides:
      - where: {{regions: [ceph-1]}}
        convert_to: raw
        properties: {{hw_disk_bus: scsi}}
        tags: [ceph]
      - where: {{groups: [stage_candidate]}}
        visibility: shared
        members: [beta]
  - name: only-prod
    source: {{url: http://images.example/b.qcow2}}
    sha256: {SHA}
    targets: {{clouds: [prod]}}
  - series: noble
    name: noble-{{version}}
    keep: 1
    targets: {{regions: [ceph-1, eu-1], groups: [stage_candidate]}}
    overrides:
      - where: {{groups: [stage_candidate]}}
        keep: 2
    versions:
      - {{version: '2', source: {{url: http://images.example/n2.qcow2}}, sha256: {SHA}}}
      - {{version: '1', source: {{url: http://images.example/n1.qcow2}}, sha256: {SHA}}}
"""


def _load(target: Target | None) -> catalog.Catalog:
    return catalog.load_catalog_texts([('catalog.yml', TEXT)], check_files=False, target=target)


def test_without_a_target_every_entry_is_loaded_as_written():
    loaded = _load(None)
    assert loaded.names == ['everywhere', 'only-prod', 'noble-2', 'noble-1']
    everywhere = loaded.image('everywhere')
    assert (everywhere.convert_to, everywhere.properties['hw_disk_bus'], everywhere.visibility) == (
        None,
        'virtio',
        'private',
    )


def test_entries_go_only_to_the_targets_they_select():
    assert _load(Target('prod', 'eu-2', ())).names == ['everywhere', 'only-prod']
    assert _load(Target('lab', 'eu-1', ())).names == ['everywhere', 'noble-2', 'noble-1']
    assert _load(Target('lab', 'eu-9', ('stage_candidate',))).names == ['everywhere', 'noble-2', 'noble-1']
    assert _load(Target('lab', 'eu-9', ())).names == ['everywhere']


@pytest.mark.parametrize(
    ('target', 'fields'),
    [
        (Target('prod', 'eu-2'), ['overrides[1].where.groups', 'targets.groups', 'overrides[0].where.groups']),
        (Target(None, 'eu-2', ()), ['targets.clouds']),
        (Target('prod', None, ()), ['overrides[0].where.regions', 'targets.regions']),
    ],
)
def test_selecting_by_what_the_run_does_not_know_is_an_error_not_a_prune(target: Target, fields: list[str]):
    with pytest.raises(catalog.CatalogError) as raised:
        _load(target)
    assert [problem.field for problem in raised.value.problems] == fields
    assert 'but this run does not know its target' in raised.value.problems[0].message


def test_overrides_apply_to_the_targets_they_select():
    ceph = _load(Target('prod', 'ceph-1', ())).image('everywhere')
    assert ceph.conversion_for('prod') == 'raw'
    assert ceph.properties == {'os_distro': 'debian', 'hw_disk_bus': 'scsi'}
    assert ceph.tags == ['ceph'] and ceph.visibility == 'private'
    candidate = _load(Target('lab', 'eu-1', ('stage_candidate', 'cloud_lab'))).image('everywhere')
    assert (candidate.visibility, candidate.members, candidate.convert_to) == ('shared', ['beta'], None)


def test_a_series_keep_can_differ_per_target():
    stable = _load(Target('lab', 'eu-1', ()))
    candidate = _load(Target('lab', 'eu-1', ('stage_candidate',)))
    assert stable.get_series('noble').keep == 1 and stable.image('noble-1').desired_state == 'hidden'
    assert candidate.get_series('noble').keep == 2 and candidate.image('noble-1').desired_state == 'active'


@pytest.mark.parametrize(
    ('entry', 'field', 'message'),
    [
        ('targets: {}', 'targets', 'must name at least one of clouds, regions, groups'),
        ('targets: {zones: [a]}', 'targets.zones', 'unknown field'),
        ('overrides: [{visibility: public}]', 'overrides[0].where', 'required field'),
        ('overrides: [{where: {clouds: [a]}, disk_format: raw}]', 'overrides[0].disk_format', 'unknown field'),
        ('overrides: [{where: {clouds: [a]}, keep: 2}]', 'overrides[0].keep', 'unknown field'),
        ('overrides: [{where: {clouds: [a]}, visibility: everyone}]', 'overrides[0].visibility', 'unallowed value'),
    ],
)
def test_bad_targets_and_overrides_name_file_line_and_field(entry: str, field: str, message: str):
    text = f"""version: 1
images:
  - name: x
    disk_format: qcow2
    source: {{url: http://images.example/x.qcow2}}
    sha256: {SHA}
    {entry}
"""
    with pytest.raises(catalog.CatalogError) as raised:
        catalog.load_catalog_texts([('catalog.yml', text)], check_files=False, target=Target('a', 'r', ()))
    [problem] = raised.value.problems
    assert (problem.source, problem.line, problem.field) == ('catalog.yml', 3, field)
    assert message in problem.message


def test_the_documented_fleet_example_loads():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / 'docs' / 'catalog.md').read_text(encoding='utf-8')
    example = text.split('# catalog/fleet.yml', 1)[1].split('\n', 1)[1].split('```', 1)[0]

    def load(target: Target) -> catalog.Catalog:
        return catalog.load_catalog_texts([('catalog/fleet.yml', example)], check_files=False, target=target)

    ceph = load(Target('prod', 'eu-1', ('storage_ceph',)))
    assert ceph.names == ['debian-12', 'windows-2022'] and ceph.image('debian-12').convert_to == 'raw'
    candidate = load(Target('sovereign', 'eu-test-1', ())).image('debian-12')
    assert (candidate.visibility, candidate.members, candidate.properties['imagegov_stage']) == (
        'shared',
        ['qa'],
        'candidate',
    )
    assert load(Target('sovereign', 'eu-1', ())).names == ['debian-12']
